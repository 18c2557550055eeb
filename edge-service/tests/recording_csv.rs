//! CSV recordings through the public `read`.

use kare::recording::{self, DataFormat, RecordingError, Scaling};
use std::path::PathBuf;

fn file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn header_and_rows() {
    let (_d, path) = file(
        "wave.csv",
        "time,VA,VB,VC\n0,1,2,3\n0.0005,4,5,6\n0.001,7,8,9\n",
    );
    let r = recording::read(&path).unwrap();
    assert_eq!(r.sample_count(), 3);
    assert_eq!(r.time_s, vec![0.0, 0.0005, 0.001]);
    assert_eq!(
        r.analog.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["VA", "VB", "VC"]
    );
    let vb = r.analog("VB").unwrap();
    assert_eq!(vb.values, vec![2.0, 5.0, 8.0]);
    assert_eq!(
        (vb.a, vb.b, vb.unit.as_str(), vb.scaling),
        (1.0, 0.0, "", Scaling::Primary)
    );
    assert_eq!((vb.min, vb.max), (2.0, 8.0));
    assert!(r.rates.is_empty() && r.digital.is_empty());
    assert_eq!(r.data_format, DataFormat::Ascii);
    assert_eq!(
        (r.start, r.trigger, r.line_frequency_hz),
        (None, None, None)
    );
    assert_eq!(r.uniform_rate_hz(), Some(2000.0));
    assert_eq!(r.station, "wave");
}

#[test]
fn any_time_column_name_semicolons_crlf_blank_trailing_line() {
    let (_d, path) = file(
        "x.CSV",
        "t_s;U1;U2\r\n1.5;10;-10\r\n1.75;20;-20\r\n2.0;30;-30\r\n\r\n",
    );
    let r = recording::read(&path).unwrap();
    // Seconds after the first row.
    assert_eq!(r.time_s, vec![0.0, 0.25, 0.5]);
    assert_eq!(r.analog("u2").unwrap().values, vec![-10.0, -20.0, -30.0]);
    assert_eq!(r.start, None);
    assert_eq!(r.uniform_rate_hz(), Some(4.0));
}

#[test]
fn uneven_time_is_not_uniform() {
    let (_d, path) = file("x.csv", "time,VA\n0,1\n0.001,1\n0.0021,1\n");
    assert_eq!(recording::read(&path).unwrap().uniform_rate_hz(), None);
}

#[test]
fn non_monotonic_time_is_refused() {
    let (_d, path) = file("x.csv", "time,VA\n0,1\n0.002,1\n0.001,1\n");
    let e = recording::read(&path).unwrap_err();
    assert!(
        matches!(e, RecordingError::TimeNotIncreasing { .. }),
        "{e:?}"
    );
    assert!(e.to_string().ends_with(
        "x.csv line 4: time 0.001 s is not after the previous sample's 0.002 s (time must increase from sample to sample)"
    ), "{e}");
}

#[test]
fn non_numeric_value_is_refused() {
    let mut text = String::from("time,VA,VB\n");
    for k in 0..15 {
        text += &format!("{},{k},{k}\n", k as f64 * 0.001);
    }
    text += "0.015,abc,1\n";
    let (_d, path) = file("x.csv", &text);
    let e = recording::read(&path).unwrap_err();
    assert!(
        matches!(e, RecordingError::CsvNotANumber { line: 17, .. }),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .ends_with("x.csv line 17: column `VA`: `abc` is not a number"),
        "{e}"
    );
}

#[test]
fn epoch_seconds_set_the_start() {
    let (_d, path) = file(
        "x.csv",
        "unix,VA\n1700000000.5,1\n1700000000.5005,2\n1700000000.501,3\n",
    );
    let r = recording::read(&path).unwrap();
    assert_eq!(
        r.start.unwrap().to_rfc3339(),
        "2023-11-14T22:13:20.500+00:00"
    );
    assert!((r.time_s[2] - 0.001).abs() < 1e-12, "{}", r.time_s[2]);
    assert_eq!(r.uniform_rate_hz().map(|f| f.round()), Some(2000.0));
}

#[test]
fn wrong_column_count_is_refused() {
    let (_d, path) = file("x.csv", "time,VA,VB\n0,1,2\n0.1,1\n");
    let e = recording::read(&path).unwrap_err();
    assert!(matches!(e, RecordingError::Csv { line: 3, .. }), "{e:?}");
    assert!(
        e.to_string()
            .ends_with("x.csv line 3: 2 values, but the header names 3 columns"),
        "{e}"
    );
}
