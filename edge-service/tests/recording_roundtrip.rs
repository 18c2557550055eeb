//! Write then read: the same channels, units, rates, start time and values within one
//! quantisation step.

use kare::recording::comtrade::{self, WriteFormat};
use kare::recording::{
    self, AnalogChannel, DataFormat, DigitalChannel, Recording, Revision, SampleRate, Scaling,
};
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

/// Write `rec` in `format`, read it back.
fn round_trip(rec: &Recording, format: WriteFormat, name: &str) -> Recording {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join(name);
    comtrade::write(rec, &cfg, format).unwrap();
    recording::read(&cfg).unwrap_or_else(|e| panic!("{e}"))
}

#[track_caller]
fn same(orig: &Recording, back: &Recording, format: WriteFormat) {
    assert_eq!(back.revision, Revision::Y1999);
    assert_eq!(
        back.data_format,
        match format {
            WriteFormat::Ascii => DataFormat::Ascii,
            WriteFormat::Binary => DataFormat::Binary,
        }
    );
    assert_eq!((&back.station, &back.device), (&orig.station, &orig.device));
    assert_eq!(back.line_frequency_hz, orig.line_frequency_hz);
    assert_eq!(back.sample_count(), orig.sample_count());
    for (o, b) in [(orig.start, back.start), (orig.trigger, back.trigger)] {
        match (o, b) {
            (Some(o), Some(b)) => assert!(
                (o - b).num_nanoseconds().unwrap().abs() < 1000,
                "{o} vs {b}"
            ),
            (o, b) => assert_eq!(o, b),
        }
    }
    for (o, b) in orig.time_s.iter().zip(&back.time_s) {
        // 1999 time stamps count whole microseconds.
        assert!((o - b).abs() <= 0.5e-6 + 1e-12, "time {o} vs {b}");
    }
    assert_eq!(back.analog.len(), orig.analog.len());
    for (o, b) in orig.analog.iter().zip(&back.analog) {
        assert_eq!(
            (&b.name, &b.unit, &b.phase, &b.circuit),
            (&o.name, &o.unit, &o.phase, &o.circuit)
        );
        assert_eq!(
            (b.primary, b.secondary, b.scaling),
            (o.primary, o.secondary, o.scaling)
        );
        assert!((b.skew_s - o.skew_s).abs() < 1e-12);
        // One quantisation step of the written file is its `a`.
        for (k, (x, y)) in o.values.iter().zip(&b.values).enumerate() {
            if x.is_nan() {
                assert!(y.is_nan(), "{} sample {k}", o.name);
            } else {
                assert!(
                    (x - y).abs() <= b.a,
                    "{} sample {k}: {x} vs {y} (step {})",
                    o.name,
                    b.a
                );
            }
        }
    }
    assert_eq!(back.digital.len(), orig.digital.len());
    for (o, b) in orig.digital.iter().zip(&back.digital) {
        assert_eq!(
            (&b.name, b.normal_state, &b.values),
            (&o.name, o.normal_state, &o.values)
        );
    }
}

#[test]
fn sample_binary_both_formats() {
    let orig = recording::read(data!("wisp-set1/sample_bin.cfg")).unwrap();
    for format in [WriteFormat::Binary, WriteFormat::Ascii] {
        let back = round_trip(&orig, format, "out.cfg");
        same(&orig, &back, format);
        assert_eq!(back.rates, orig.rates);
    }
}

#[test]
fn variable_rate_ascii_file_keeps_its_83_segments() {
    let orig = recording::read(data!("wisp-set2/1.cfg")).unwrap();
    for format in [WriteFormat::Ascii, WriteFormat::Binary] {
        let back = round_trip(&orig, format, "OUT.CFG");
        same(&orig, &back, format);
        assert_eq!(back.rates, orig.rates);
        assert_eq!(back.time_s, orig.time_s);
    }
}

#[test]
fn big_cp1251_binary_file() {
    let orig = recording::read(data!("wisp-set2/2.cfg")).unwrap();
    let back = round_trip(&orig, WriteFormat::Binary, "out.cfg");
    same(&orig, &back, WriteFormat::Binary);
    // The source numbered samples from 0 (endsamp 19679 for 19680 samples); written
    // files number from 1, so endsamp is the sample count.
    assert_eq!(
        back.rates,
        vec![SampleRate {
            rate_hz: 1200.0,
            last_sample: 19680
        }]
    );
}

#[test]
fn time_stamp_timed_file_stays_time_stamp_timed() {
    let orig = recording::read(data!("ge850/real_1999_bin.cfg")).unwrap();
    for format in [WriteFormat::Binary, WriteFormat::Ascii] {
        let back = round_trip(&orig, format, "out.cfg");
        same(&orig, &back, format);
        assert!(back.rates.is_empty());
    }
}

#[test]
fn float32_nanosecond_file() {
    let orig = recording::read(data!("oita/Comtrade1.cfg")).unwrap();
    let back = round_trip(&orig, WriteFormat::Binary, "out.cfg");
    same(&orig, &back, WriteFormat::Binary);
    assert_eq!(back.rates, orig.rates);
}

fn analog(name: &str, values: Vec<f64>) -> AnalogChannel {
    AnalogChannel {
        index: 1,
        name: name.into(),
        phase: "A".into(),
        circuit: "Feeder 7".into(),
        unit: "V".into(),
        a: 1.0,
        b: 0.0,
        skew_s: 2e-6,
        min: 0.0,
        max: 0.0,
        primary: 20000.0,
        secondary: 100.0,
        scaling: Scaling::Secondary,
        values,
    }
}

#[test]
fn missing_values_constant_channels_and_no_start() {
    let n = 50;
    let wave: Vec<f64> = (0..n)
        .map(|k| 325.0 * (k as f64 * 0.3).sin() + 12.5)
        .collect();
    let mut gappy = wave.clone();
    gappy[7] = f64::NAN;
    let rec = Recording {
        station: "Sub, North".into(),
        device: "kare".into(),
        revision: Revision::Y2013,
        line_frequency_hz: None,
        start: None,
        start_unreadable: None,
        trigger: Some("2024-03-01T12:00:00.123456Z".parse().unwrap()),
        samples_declared: None,
        time_s: (0..n).map(|k| k as f64 / 4000.0).collect(),
        rates: vec![SampleRate {
            rate_hz: 4000.0,
            last_sample: n as u64,
        }],
        analog: vec![
            analog("UA", wave),
            analog("UB", gappy),
            analog("flat", vec![-7.25; n]),
            analog("dead", vec![f64::NAN; n]),
        ],
        digital: (0..17)
            .map(|k| DigitalChannel {
                index: k + 1,
                name: format!("D{k}"),
                phase: String::new(),
                circuit: String::new(),
                normal_state: (k % 2) as u8,
                values: (0..n)
                    .map(|i| (i + k as usize).is_multiple_of(3) as u8)
                    .collect(),
            })
            .collect(),
        data_format: DataFormat::Float32,
    };
    for format in [WriteFormat::Binary, WriteFormat::Ascii] {
        let back = round_trip(&rec, format, "syn.cfg");
        let mut expected = rec.clone();
        expected.station = "Sub; North".into(); // a comma cannot survive in a cfg field
        same(&expected, &back, format);
        assert_eq!(back.rates, rec.rates);
        assert_eq!(back.analog("flat").unwrap().values, vec![-7.25; n]);
    }
}

#[test]
fn csv_to_comtrade() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("w.csv");
    let mut text = String::from("time,VA,VB\n");
    for k in 0..200 {
        let t = k as f64 / 3200.0;
        text += &format!("{t},{},{}\n", 230.0 * (t * 314.159).sin(), -(k as f64));
    }
    std::fs::write(&csv, text).unwrap();
    let orig = recording::read(&csv).unwrap();
    let back = round_trip(&orig, WriteFormat::Binary, "w.cfg");
    same(&orig, &back, WriteFormat::Binary);
    assert!((back.uniform_rate_hz().unwrap() - 3200.0).abs() < 3200.0 * 0.01);
}

#[test]
fn writer_refuses_inconsistent_recordings() {
    let mut rec = recording::read(data!("wisp-set1/sample_bin.cfg")).unwrap();
    rec.analog[1].values.pop();
    let dir = tempfile::tempdir().unwrap();
    let e = comtrade::write(&rec, &dir.path().join("x.cfg"), WriteFormat::Binary).unwrap_err();
    assert!(e.to_string().ends_with("x.cfg: cannot write the recording: channel `VB` has 4 values, but the recording has 5 samples"), "{e}");
    let e = comtrade::write(&rec, &dir.path().join("x.txt"), WriteFormat::Binary).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("x.txt: cannot write the recording: the cfg file name must end in .cfg"),
        "{e}"
    );
}
