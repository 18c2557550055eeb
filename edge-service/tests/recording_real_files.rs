//! The real recordings in `shared/data/comtrade` (see `shared/data/README.md`), each checked
//! against facts read off the files by hand: the cfg text, and raw dat values decoded
//! independently (a Python struct dump) and scaled with the cfg's a, b.

use chrono::{DateTime, Utc};
use kare::recording::{self, DataFormat, Recording, Revision, SampleRate, Scaling};
use std::path::Path;

macro_rules! data {
    ($file:literal) => {
        Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/data/comtrade/",
            $file
        ))
    };
}

fn read(path: &Path) -> Recording {
    recording::read(path).unwrap_or_else(|e| panic!("{e}"))
}

fn utc(s: &str) -> Option<DateTime<Utc>> {
    Some(s.parse().unwrap())
}

#[track_caller]
fn close(got: f64, want: f64) {
    assert!(
        (got - want).abs() <= 1e-9 * want.abs().max(1.0),
        "got {got}, want {want}"
    );
}

/// Every channel holds one value per sample.
#[track_caller]
fn consistent(r: &Recording) {
    let n = r.sample_count();
    assert!(r.analog.iter().all(|c| c.values.len() == n));
    assert!(r.digital.iter().all(|c| c.values.len() == n));
    assert_eq!(r.time_s.first(), Some(&0.0));
    assert!(r.time_s.windows(2).all(|w| w[1] > w[0]));
}

#[test]
fn wisp_sample_ascii_2013_with_time_code() {
    let r = read(data!("wisp-set1/sample_ascii.cfg"));
    consistent(&r);
    assert_eq!(
        (r.station.as_str(), r.device.as_str()),
        ("SMARTSTATION", "IED123")
    );
    assert_eq!(r.revision, Revision::Y2013);
    assert_eq!(r.data_format, DataFormat::Ascii);
    assert_eq!(r.line_frequency_hz, Some(60.0));
    assert_eq!(
        (r.analog.len(), r.digital.len(), r.sample_count()),
        (4, 4, 40)
    );
    assert_eq!(
        r.rates,
        vec![SampleRate {
            rate_hz: 1200.0,
            last_sample: 40
        }]
    );
    assert_eq!(r.uniform_rate_hz(), Some(1200.0));
    close(r.time_s[39], 39.0 / 1200.0);
    // 12/01/2011 is dd/mm; local 05:55:30.75011 at time code -5h30 is 11:25:30.75011 UTC.
    assert_eq!(r.start, utc("2011-01-12T11:25:30.75011Z"));
    assert_eq!(r.trigger, utc("2011-01-12T11:25:30.78261Z"));
    // `IA ` and ` A` in the cfg are trimmed; lower-case `s` is secondary.
    let ia = r.analog("IA").unwrap();
    assert_eq!(
        (ia.unit.as_str(), ia.circuit.as_str(), ia.scaling),
        ("A", "Line123", Scaling::Secondary)
    );
    let (a, b) = (0.1138916015625, 0.05694580078125);
    close(ia.values[0], -83.0 * a + b);
    close(ia.values[39], -169.0 * a + b);
    close(r.analog("3i0").unwrap().values[13], 202.0 * a + b);
    // 51N is set from sample 11 to the end.
    let n = &r.digital[3];
    assert_eq!(n.name, "51N");
    assert_eq!(n.values.iter().filter(|&&v| v == 1).count(), 30);
    assert_eq!((n.values[9], n.values[10]), (0, 1));
}

#[test]
fn wisp_sample_cff_is_the_same_recording_as_the_cfg_dat_pair() {
    let cff = read(data!("wisp-set1/sample_ascii.cff"));
    let pair = read(data!("wisp-set1/sample_ascii.cfg"));
    assert_eq!(cff, pair);
}

#[test]
fn wisp_sample_binary_1999() {
    let r = read(data!("wisp-set1/sample_bin.cfg"));
    consistent(&r);
    assert_eq!(r.revision, Revision::Y1999);
    assert_eq!(r.data_format, DataFormat::Binary);
    assert_eq!(
        (r.analog.len(), r.digital.len(), r.sample_count()),
        (4, 16, 5)
    );
    assert_eq!(r.uniform_rate_hz(), Some(15360.0));
    close(r.time_s[4], 4.0 / 15360.0);
    // 07/01/2017 in a 1999 file is 7 January.
    assert_eq!(r.start, utc("2017-01-07T15:35:41.958268Z"));
    // Raw i16 of sample 1: -24979, -3905, 27726, 12313; of sample 5: VA -22790.
    close(r.analog[0].values[0], -24979.0 * 0.000361849);
    close(r.analog[1].values[0], -3905.0 * 0.000365758);
    close(r.analog[2].values[0], 27726.0 * 0.000371569);
    close(r.analog[3].values[0], 12313.0 * 0.000016493);
    close(r.analog("VA").unwrap().values[4], -22790.0 * 0.000361849);
    assert!(r.digital.iter().all(|d| d.values.iter().all(|&v| v == 0)));
}

#[test]
fn wisp_1_variable_rate_blank_lines_cp1251() {
    let r = read(data!("wisp-set2/1.cfg"));
    consistent(&r);
    // Revision field "2000" is no revision: read as 1999.
    assert_eq!(r.revision, Revision::Y1999);
    assert_eq!(r.station, "11");
    assert_eq!(r.device, "терминал версия 101110");
    assert_eq!(r.digital[0].name, "ЗМН-1 пуск");
    assert_eq!(r.digital[14].name, "Ош. F*");
    assert_eq!((r.analog.len(), r.digital.len()), (4, 15));
    // 5316 samples, each followed by a blank line in the dat.
    assert_eq!(r.sample_count(), 5316);
    assert_eq!(r.rates.len(), 83);
    assert_eq!(
        r.rates[0],
        SampleRate {
            rate_hz: 2401.509521,
            last_sample: 708
        }
    );
    assert_eq!(
        r.rates[82],
        SampleRate {
            rate_hz: 2401.646729,
            last_sample: 5316
        }
    );
    // Times from the 83 segments (summed by hand in Python).
    close(r.time_s[708], 0.29481469036888425);
    close(r.time_s[5315], 2.211419876047375);
    // The segments are a frequency-tracking recorder's 48 samples per cycle: 2394.9 to
    // 2410.7 Hz, within 1 % of each other, so the recording counts as uniform.
    let rate = r.uniform_rate_hz().unwrap();
    assert!((rate - 5315.0 / 2.211419876047375).abs() < 1e-6, "{rate}");
    let ua = r.analog("UA").unwrap();
    assert_eq!(ua.scaling, Scaling::Secondary);
    close(ua.values[0], -3188.0 * 0.016552);
    close(ua.values[5315], 4751.0 * 0.016552);
    close(r.analog("3U0").unwrap().values[2999], -1675.0 * 0.016552);
    assert_eq!(r.start, utc("2017-05-25T08:13:16.587Z"));
    assert_eq!(r.trigger, utc("2017-05-25T08:13:16.677Z"));
}

#[test]
fn wisp_2_cp1251_binary_numbered_from_zero() {
    let t = std::time::Instant::now();
    let r = read(data!("wisp-set2/2.cfg"));
    eprintln!("2.cfg read in {:?}", t.elapsed());
    consistent(&r);
    assert_eq!(r.station, "Неизвестный регистратор");
    assert_eq!(r.device, "576");
    assert_eq!(r.data_format, DataFormat::Binary);
    assert_eq!((r.analog.len(), r.digital.len()), (55, 112));
    // The dat numbers its 19680 records 0..19679 and the cfg's endsamp is 19679: all are read.
    assert_eq!(
        r.rates,
        vec![SampleRate {
            rate_hz: 1200.0,
            last_sample: 19679
        }]
    );
    assert_eq!(r.sample_count(), 19680);
    close(r.time_s[19679], 19679.0 / 1200.0);
    assert_eq!(r.uniform_rate_hz(), Some(1200.0));
    assert_eq!(r.line_frequency_hz, Some(50.0));
    assert_eq!(r.start, utc("2016-08-22T16:04:22Z"));
    assert_eq!(r.trigger, utc("2016-08-22T16:04:23.553Z"));

    let ua = &r.analog[0];
    assert_eq!(ua.name, "Ua_1СШ-110_ТН_110кВ");
    assert_eq!(
        (ua.phase.as_str(), ua.circuit.as_str(), ua.unit.as_str()),
        ("A", "1СШ-110_ТН_110кВ", "kV")
    );
    assert_eq!(
        (ua.primary, ua.secondary, ua.scaling),
        (1100.0, 1.0, Scaling::Primary)
    );
    assert_eq!(r.analog[1].skew_s, 13e-6);
    // Channel numbers skip 12: position 12 is channel 13.
    assert_eq!(
        (r.analog[11].index, r.analog[11].name.as_str()),
        (13, "Ia_2СШ-110_ВЛ_ВЛ1")
    );
    // Record 10000 (the 10001st): raw A1 -1288, A5 -1283, channel 13: 69.
    close(ua.values[0], 1228.0 * 0.06160031);
    close(ua.values[10000], -1288.0 * 0.06160031);
    close(
        r.analog("Ua_2СШ-110_ТН_110кВ").unwrap().values[10000],
        -1283.0 * 0.06160031,
    );
    close(r.analog[11].values[10000], 69.0 * 5.06938994);
    // Its first digital word is 0x4002: channels 2 and 15 set.
    let states: Vec<u8> = r.digital[..16].iter().map(|d| d.values[10000]).collect();
    assert_eq!(states, [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
    assert_eq!(r.digital[1].name, "РПВ_1СШ-110_ВЛ_ВЛ5");
    // Lines 105..112 have four fields (`105,Резерв1,0,Резервные`): state 0, circuit after it.
    let spare = &r.digital[104];
    assert_eq!(
        (
            spare.index,
            spare.name.as_str(),
            spare.circuit.as_str(),
            spare.normal_state
        ),
        (105, "Резерв1", "Резервные", 0)
    );
}

#[test]
fn wisp_4_upper_case_names_revision_1997_extra_record() {
    let r = read(data!("wisp-set2/4.CFG"));
    consistent(&r);
    assert_eq!(r.station, "OPG_141204_070148813.CFG");
    assert_eq!(r.device, "S40/02.11 - sepam 21BBE24");
    assert_eq!(r.revision, Revision::Y1999);
    assert_eq!((r.analog.len(), r.digital.len()), (6, 16));
    // 4.DAT holds 2400 records of 22 bytes, numbered 1..2400; the cfg's endsamp is 2399.
    assert_eq!(r.sample_count(), 2399);
    assert_eq!(r.uniform_rate_hz(), Some(600.0));
    close(r.time_s[2398], 2398.0 / 600.0);
    // 04/12/2014 is 4 December (the station name says 141204).
    assert_eq!(r.start, utc("2014-12-04T07:01:48.813Z"));
    assert_eq!(r.trigger, utc("2014-12-04T07:01:49.533Z"));
    let i1 = r.analog("I1").unwrap();
    close(i1.values[0], 43.0 * 2.836798 - 102.1247);
    let u21 = r.analog("U21").unwrap();
    assert_eq!(
        (u21.unit.as_str(), u21.primary, u21.secondary),
        ("V", 3000.0, 100.0)
    );
    close(u21.values[2398], -148.0 * 0.3629015 - 13.06445);
    close(
        r.analog("U32").unwrap().values[2398],
        -2277.0 * 0.3627678 + 13.05964,
    );
    // Digital word of the last sample read is 3201 = 0b1100_1000_0001: I11, I24, O1, O2 set.
    let word: u32 = r
        .digital
        .iter()
        .enumerate()
        .map(|(k, d)| u32::from(d.values[2398]) << k)
        .sum();
    assert_eq!(word, 3201);
}

#[test]
fn wisp_5_binary32_dead_channels() {
    let r = read(data!("wisp-set2/5.cfg"));
    consistent(&r);
    assert_eq!(r.revision, Revision::Y2013);
    assert_eq!(r.data_format, DataFormat::Binary32);
    assert_eq!(
        (r.station.as_str(), r.device.as_str()),
        ("STATION_NAME", "RITM_VC4")
    );
    assert_eq!((r.analog.len(), r.digital.len()), (37, 300));
    // Records numbered 0..201, endsamp 202: all 202 read.
    assert_eq!(r.sample_count(), 202);
    assert_eq!(r.uniform_rate_hz(), Some(2000.0));
    close(r.time_s[201], 0.1005);
    // Time code 0: the stamps are UTC. The trigger is written as the epoch, and kept as written.
    assert_eq!(r.start, utc("2010-02-22T21:41:29.659551Z"));
    assert_eq!(r.trigger, utc("1970-01-01T00:00:00Z"));
    for dead in ["Ia", "Ib", "Ic", "Ua"] {
        assert!(
            r.analog(dead).unwrap().values.iter().all(|&v| v == 0.0),
            "{dead}"
        );
    }
    // Sample 2: Id raw -1625, Un -23626, Man_Close_Cmd 29 (a = 0.001).
    close(r.analog("Id").unwrap().values[1], -1625e-6);
    close(r.analog("Un").unwrap().values[1], -23626e-6);
    close(r.analog("Man_Close_Cmd").unwrap().values[1], 0.029);
    assert_eq!(r.analog("Ua").unwrap().scaling, Scaling::Secondary);
    // Digital channels are numbered on from the analog ones.
    assert_eq!(
        (r.digital[0].index, r.digital[0].name.as_str()),
        (38, "Power_Failure")
    );
    assert_eq!(r.digital[299].name, "DIN27.Zemly_DI.stVal");
}

#[test]
fn ge850_time_from_stamps_spaces_after_commas() {
    let r = read(data!("ge850/real_1999_bin.cfg"));
    consistent(&r);
    assert_eq!(
        (r.station.as_str(), r.device.as_str()),
        ("Relay 1", "850-EP5NNS5HNNANNGASFB3ACNBN")
    );
    assert_eq!(
        (r.analog.len(), r.digital.len(), r.sample_count()),
        (24, 64, 8000)
    );
    // nrates 0 and `0, 8000`: time from the µs stamps (624/625 µs apart).
    assert!(r.rates.is_empty());
    close(r.time_s[1], 624e-6);
    close(r.time_s[3999], 2_497_295e-6);
    close(r.time_s[7999], 4.995215);
    let rate = r.uniform_rate_hz().unwrap();
    assert!((rate - 7999.0 / 4.995215).abs() < 1e-6, "{rate}");
    assert_eq!(r.start, utc("2021-02-17T22:27:49.159106Z"));
    assert_eq!(r.trigger, utc("2021-02-17T22:27:50.657858Z"));
    let ia = r.analog("J1 -IA").unwrap();
    assert_eq!(
        (ia.unit.as_str(), ia.primary, ia.secondary, ia.scaling),
        ("A", 125.0, 5.0, Scaling::Secondary)
    );
    close(ia.values[0], 207.0 * 0.009766);
    close(r.analog("J2 -VA").unwrap().values[3999], -12421.0 * 0.013);
    let angle = r.analog("J1 Ia Angle").unwrap();
    assert_eq!(angle.unit, "°");
    close(angle.values[3999], -32548.0 * 7.748649e-3);
    assert_eq!(r.digital[63].name, "Off");
}

#[test]
fn oita_float32_nanosecond_stamps() {
    let r = read(data!("oita/Comtrade1.cfg"));
    consistent(&r);
    assert_eq!(r.station, "Nippon Steel Oita");
    assert_eq!(r.data_format, DataFormat::Float32);
    assert_eq!(r.line_frequency_hz, Some(60.0));
    assert_eq!(
        (r.analog.len(), r.digital.len(), r.sample_count()),
        (23, 140, 7200)
    );
    assert_eq!(r.uniform_rate_hz(), Some(1200.0));
    // From the rate (the u32 nanosecond stamps wrap after 4.29 s; they are not used).
    close(r.time_s[7199], 7199.0 / 1200.0);
    // Local JST (+9), nanoseconds kept.
    assert_eq!(r.start, utc("2023-07-27T00:19:53.156666511Z"));
    assert_eq!(r.trigger, utc("2023-07-27T00:19:54.156602167Z"));
    // Sample 3601: f32 5.87000036239624 and 183469.796875 (a = 1, b = 0).
    assert_eq!(r.analog("HV IR").unwrap().values[3600], 5.87000036239624);
    assert_eq!(r.analog("HV Bus VR").unwrap().values[3600], 183469.796875);
    assert_eq!(r.analog("HV IR").unwrap().values[0], 233.04701232910156);
    assert_eq!(r.digital[1].name, "QA1 Open");
}

#[test]
fn comtrade_io_1991_gb18030() {
    let r = read(data!("comtrade-io/ascii_1991.cfg"));
    consistent(&r);
    assert_eq!(r.revision, Revision::Y1991);
    assert_eq!(
        (r.station.as_str(), r.device.as_str()),
        ("UNREAL SUBSTATION", "DEMOTEST")
    );
    assert_eq!(
        (r.analog.len(), r.digital.len(), r.sample_count()),
        (24, 37, 2131)
    );
    assert_eq!(r.analog[9].name, "Ua对侧");
    assert_eq!(r.analog[15].name, "Ua同步");
    assert_eq!(
        (r.digital[0].index, r.digital[0].name.as_str()),
        (25, "纵联差动保护")
    );
    assert_eq!(r.digital[1].name, "光纤通道一");
    // 1991 dates are mm/dd/yy.
    assert_eq!(r.start, utc("2015-09-17T10:52:52.987545Z"));
    assert_eq!(r.trigger, utc("2015-09-17T10:52:53.065045Z"));
    // Eight segments, all 1200 Hz: timed by the rate (the dat stamps jump between segments).
    assert_eq!(r.rates.len(), 8);
    assert_eq!(r.uniform_rate_hz(), Some(1200.0));
    close(r.time_s[2130], 2130.0 / 1200.0);
    // 1991 analog lines have no primary/secondary: defaults.
    let ua = r.analog("Ua1").unwrap();
    assert_eq!(
        (ua.primary, ua.secondary, ua.scaling),
        (1.0, 1.0, Scaling::Primary)
    );
    close(ua.values[0], 0.025);
    close(ua.values[1000], -0.005);
    close(r.analog("Ux").unwrap().values[1000], -0.017);
    close(r.analog("Ua对侧").unwrap().values[1000], 0.025);
    assert!(r.digital[..4].iter().all(|d| d.values[1000] == 1));
}

#[test]
fn ascii_1991_name_is_found_case_insensitively() {
    let r = read(data!("comtrade-io/ascii_1991.cfg"));
    assert_eq!(r.analog("ua对侧").unwrap().index, 10);
    assert_eq!(r.analog(" UA1 ").unwrap().name, "Ua1");
    assert!(r.analog("nope").is_none());
}
