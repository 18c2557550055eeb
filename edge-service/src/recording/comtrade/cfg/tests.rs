//! The cfg parser on real recorders' quirks and on broken files.

use super::*;
use crate::recording::Scaling;

fn dt(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
}

#[test]
fn dates_in_each_revision() {
    let d = parse_date("12/01/2011,05:55:30.75011", Revision::Y2013).unwrap();
    assert_eq!(d.local, dt("2011-01-12 05:55:30.75011"));
    assert_eq!(d.fraction_digits, 5);
    let d = parse_date("09/17/15,10:52:52.987545", Revision::Y1991).unwrap();
    assert_eq!(d.local, dt("2015-09-17 10:52:52.987545"));
    let d = parse_date("09/17/2015,10:52:52", Revision::Y1991).unwrap();
    assert_eq!(d.local, dt("2015-09-17 10:52:52"));
    // 1999 order that cannot be read so falls back to month first.
    let d = parse_date("09/17/2015,10:52:52", Revision::Y1999).unwrap();
    assert_eq!(d.local, dt("2015-09-17 10:52:52"));
    let d = parse_date(" 27/07/2023 , 09:19:53.156666511 ", Revision::Y2013).unwrap();
    assert_eq!(d.local, dt("2023-07-27 09:19:53.156666511"));
    assert_eq!(d.fraction_digits, 9);
    let d = parse_date("01/01/98,00:00:00.1234567891", Revision::Y1991).unwrap();
    assert_eq!(d.local, dt("1998-01-01 00:00:00.123456789"));
}

#[test]
fn unusable_dates_are_none() {
    for s in [
        "00/00/0000,00:00:00.000000",
        "",
        "garbage",
        "32/13/2020,00:00:00",
        "01/01/2020,25:00:00",
        "01/01/2020",
        "1/1/2020,1:2:x",
    ] {
        assert_eq!(parse_date(s, Revision::Y1999), None, "{s}");
    }
}

#[test]
fn time_codes() {
    assert_eq!(parse_time_code("-5h30"), Ok(Some(-(5 * 3600 + 30 * 60))));
    assert_eq!(parse_time_code("+8"), Ok(Some(8 * 3600)));
    assert_eq!(parse_time_code("+9"), Ok(Some(9 * 3600)));
    assert_eq!(parse_time_code("0"), Ok(Some(0)));
    assert_eq!(parse_time_code("10h"), Ok(Some(36000)));
    assert_eq!(parse_time_code(""), Ok(None));
    assert_eq!(parse_time_code("x"), Ok(None));
    assert_eq!(parse_time_code("CFG_INFO={1}"), Err(()));
    assert_eq!(parse_time_code("+5h75"), Err(()));
}

const CFG_1999: &str = "St, Dev ,1999\r\n3,2A,1D\r\n\
    1,VA ,A,Bus,kV,0.5,-1,10,-32767,32767,110,0.1,s\r\n\
    2,VB,B,Bus,kV,0.25,,,,,,,\r\n\
    1,Trip,,Breaker,1\r\n\
    50\r\n1\r\n1000,20\r\n\
    07/01/2017,15:35:41.958268\r\n07/01/2017,15:35:41.958333\r\nbinary\r\n";

#[test]
fn parses_a_1999_cfg_and_defaults_optional_fields() {
    let c = parse_cfg(CFG_1999, 1, "t.cfg").unwrap();
    assert_eq!((c.station.as_str(), c.device.as_str()), ("St", "Dev"));
    assert_eq!(c.revision, Revision::Y1999);
    assert_eq!(c.analog.len(), 2);
    let a = &c.analog[0];
    assert_eq!((a.name.as_str(), a.unit.as_str()), ("VA", "kV"));
    assert_eq!(
        (a.a, a.b, a.skew_s, a.primary, a.secondary),
        (0.5, -1.0, 10e-6, 110.0, 0.1)
    );
    assert_eq!(a.scaling, Scaling::Secondary);
    let b = &c.analog[1];
    assert_eq!(
        (b.b, b.skew_s, b.primary, b.secondary, b.scaling),
        (0.0, 0.0, 1.0, 1.0, Scaling::Primary)
    );
    assert_eq!(c.digital[0].normal_state, 1);
    assert_eq!(c.digital[0].circuit, "Breaker");
    assert_eq!(c.line_frequency_hz, Some(50.0));
    assert_eq!(
        c.rates,
        vec![SampleRate {
            rate_hz: 1000.0,
            last_sample: 20
        }]
    );
    assert_eq!(c.end_sample, Some(20));
    assert_eq!(c.start.unwrap().local, dt("2017-01-07 15:35:41.958268"));
    assert_eq!(c.data_format, DataFormat::Binary);
    assert_eq!(c.time_mult, 1.0);
    assert_eq!(c.time_code_s, None);
    assert_eq!(c.record_bytes(DataFormat::Binary), 8 + 4 + 2);
}

#[test]
fn missing_revision_is_1991_and_unknown_is_1999() {
    let body =
        "1,1A,0D\n1,IA,,,A,1,0,0,0,1\n60\n0\n0,10\n01/02/03,00:00:00\n01/02/03,00:00:00\nASCII\n";
    let c = parse_cfg(&format!("S,D\n{body}"), 1, "x.cfg").unwrap();
    assert_eq!(c.revision, Revision::Y1991);
    assert_eq!(c.start.unwrap().local, dt("2003-01-02 00:00:00"));
    assert!(c.rates.is_empty());
    assert_eq!(c.end_sample, Some(10));
    let c = parse_cfg(&format!("S,D,1997\n{body}"), 1, "x.cfg").unwrap();
    assert_eq!(c.revision, Revision::Y1999);
    assert_eq!(c.start.unwrap().local, dt("2003-02-01 00:00:00"));
}

#[test]
fn bad_multiplier_names_line_and_channel() {
    let text = CFG_1999.replace("0.25,", "0;25,");
    let e = parse_cfg(&text, 1, "x.cfg").unwrap_err();
    assert!(
        matches!(e, RecordingError::CfgNotANumber { line: 4, .. }),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "x.cfg line 4: analog channel 2 (`VB`): multiplier `a` is not a number: `0;25`"
    );
}

#[test]
fn wrong_channel_count() {
    let e = parse_cfg(&CFG_1999.replace("3,2A,1D", "4,2A,1D"), 1, "x.cfg").unwrap_err();
    assert!(matches!(
        e,
        RecordingError::ChannelCount {
            line: 2,
            total: 4,
            analog: 2,
            digital: 1,
            ..
        }
    ));
    assert_eq!(
        e.to_string(),
        "x.cfg line 2: channel counts do not add up: 4 channels in total, but 2 analog + 1 digital"
    );
}

#[test]
fn unknown_format_word() {
    let e = parse_cfg(&CFG_1999.replace("binary", "BINARY16"), 1, "x.cfg").unwrap_err();
    assert!(
        matches!(e, RecordingError::UnknownDataFormat { line: 11, .. }),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "x.cfg line 11: unknown data file type `BINARY16` (expected ASCII, BINARY, BINARY32 or FLOAT32)"
    );
}

#[test]
fn file_ending_early() {
    let text: String = CFG_1999.lines().take(6).map(|l| format!("{l}\n")).collect();
    let e = parse_cfg(&text, 1, "x.cfg").unwrap_err();
    assert!(
        matches!(e, RecordingError::CfgMissingLine { line: 7, .. }),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "x.cfg line 7: the file ends where the number of sample rates `nrates` should be"
    );
}

#[test]
fn too_few_analog_lines() {
    let text = CFG_1999.replace("3,2A,1D", "4,3A,1D");
    let e = parse_cfg(&text, 1, "x.cfg").unwrap_err();
    assert!(matches!(e, RecordingError::Cfg { line: 5, .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("x.cfg line 5: analog channel 3 of 3: expected at least 10"),
        "{e}"
    );
}

#[test]
fn time_code_and_nanoseconds_2013() {
    let text = CFG_1999
        .replace(",1999", ",2013")
        .replace("15:35:41.958268", "15:35:41.958268123")
        + "1\r\n+5h30,+5h30\r\nB,3\r\n";
    let c = parse_cfg(&text, 1, "x.cfg").unwrap();
    assert_eq!(c.time_code_s, Some(5 * 3600 + 30 * 60));
    assert!(c.nanosecond_stamps());
    assert_eq!(
        c.utc(c.start).unwrap().naive_utc(),
        dt("2017-01-07 10:05:41.958268123")
    );
    let bad = text.replace("+5h30,+5h30", "CFG_INFO=1");
    let e = parse_cfg(&bad, 1, "x.cfg").unwrap_err();
    assert_eq!(
        e.to_string(),
        "x.cfg line 13: time code `CFG_INFO=1` is not an offset from UTC like `-5h30`, `+8` or `0`"
    );
}

#[test]
fn four_field_digital_lines() {
    let text = CFG_1999.replace("1,Trip,,Breaker,1", "1,Trip,1,Breaker");
    let d = &parse_cfg(&text, 1, "x.cfg").unwrap().digital[0];
    assert_eq!(
        (d.normal_state, d.circuit.as_str(), d.phase.as_str()),
        (1, "Breaker", "")
    );
    let text = CFG_1999.replace("1,Trip,,Breaker,1", "1,Trip,A,1");
    let d = &parse_cfg(&text, 1, "x.cfg").unwrap().digital[0];
    assert_eq!((d.normal_state, d.phase.as_str()), (1, "A"));
}

#[test]
fn missing_dates_and_trailing_lines_are_tolerated() {
    let text = CFG_1999
        .replace(
            "07/01/2017,15:35:41.958268\r\n07/01/2017,15:35:41.958333\r\n",
            "",
        )
        .replace("1000,20", "1000 , 20,")
        .replace("binary", "binary,");
    let c = parse_cfg(&text, 1, "x.cfg").unwrap();
    assert_eq!((c.start, c.trigger), (None, None));
    assert_eq!(c.end_sample, Some(20));
}
