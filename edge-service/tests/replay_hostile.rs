//! `kare replay` on damaged and hostile recordings (issue 11, items 6–9): every file is made
//! here, in a temporary folder, and each test failed before the fix it names.

mod replay_support;

use kare::recording;
use kare::replay::{analyse, ReplayReport};
use replay_support::*;
use serde_json::Value;
use std::path::Path;

fn replay(path: &Path) -> Result<ReplayReport, String> {
    let rec = recording::read(path).map_err(|e| e.to_string())?;
    analyse(&rec, &opts()).map_err(|e| e.to_string())
}

fn kinds(r: &ReplayReport) -> Vec<&'static str> {
    r.events.iter().map(|e| e.kind.as_str()).collect()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

// ---- item 6: absurd sample rates ----

/// A second rate of 1e9 made replay allocate 16 GB and abort (exit 134); 1e8 took 14 s and
/// 3.1 GB. Now the cfg line is refused, naming the line and the range.
#[test]
fn absurd_sample_rates_are_refused_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let rows = supply(2400.0, 1.0, None);
    for rate in ["1000000000", "1e8", "1e300", "-2400"] {
        let second = format!("{rate},2399");
        let c = cfg(
            "1999",
            ["VA", "VB", "VC"],
            &["2400,1000", &second],
            "01/01/2020,00:00:00",
            "ASCII",
        );
        let path = write(dir.path(), "r.cfg", c);
        write(dir.path(), "r.dat", dat_ascii(&rows, ""));
        let t = std::time::Instant::now();
        let out = kare(&path, &["--udin", "230"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{rate}: {err}");
        assert!(err.contains("line 9"), "{rate}: {err}");
        assert!(err.contains("out of range"), "{rate}: {err}");
        assert!(!err.contains("8 samples per cycle"), "{rate}: {err}");
        assert!(!err.contains("no sample rate"), "{rate}: {err}");
        assert!(t.elapsed().as_secs() < 5, "{rate}: {:?}", t.elapsed());
    }
}

/// A variable-rate recording with one segment at the 1 MHz limit used to be resampled to
/// 1 MHz over the whole record; now it is resampled as it is fed, at no more than 512 samples
/// per cycle, and its events are still found.
#[test]
fn variable_rate_resampling_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    // 1 s at 2400/s then 2399 samples at 1 MHz (2.4 ms): the file is 2.4 s long at 1 MHz in all.
    let slow = supply(2400.0, 1.0, Some((0.4, 0.6, 0.5)));
    let mut rows = Rows {
        t: slow.t.clone(),
        v: slow.v.clone(),
    };
    let fast = supply(1e6, 0.0024, None);
    for (t, v) in fast.t.iter().zip(&fast.v).skip(1) {
        rows.t.push(1.0 + t);
        rows.v.push(*v);
    }
    let n = rows.t.len();
    let c = cfg(
        "1999",
        ["VA", "VB", "VC"],
        &["2400,2400", &format!("1000000,{n}")],
        "01/01/2020,00:00:00",
        "ASCII",
    );
    let path = write(dir.path(), "v.cfg", c);
    write(dir.path(), "v.dat", dat_ascii(&rows, ""));
    let r = replay(&path).unwrap();
    assert!(r.resampled);
    assert!(r.sample_rate_hz <= 512.0 * 50.0, "{}", r.sample_rate_hz);
    assert!(r.samples < 30_000, "{}", r.samples);
    assert_eq!(kinds(&r), ["dip"]);
    assert!((r.events[0].extreme_pct - 50.0).abs() < 3.0);
}

// ---- item 7: missing data is flagged, never judged ----

/// 500 rows cut out of a 10 kHz CSV were interpolated straight across: a false dip to 7.9 %
/// and a false 115.9 % swell. Now the gap is listed and no window spans it.
#[test]
fn rows_cut_out_of_a_csv_are_a_gap_not_a_dip() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = supply(10_000.0, 1.0, None);
    rows.t.drain(4_000..4_500);
    rows.v.drain(4_000..4_500);
    let path = write(dir.path(), "gap.csv", csv(&rows));
    let r = replay(&path).unwrap();
    assert_eq!(kinds(&r), Vec::<&str>::new(), "{:?}", r.events);
    assert_eq!(r.flagged.gaps.len(), 1, "{:?}", r.flagged);
    let g = r.flagged.gaps[0];
    assert!((g.offset_s - 0.3999).abs() < 1e-6, "{g:?}");
    assert!((g.duration_s - 0.0501).abs() < 1e-6, "{g:?}");

    let out = kare(&path, &["--udin", "230"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["flagged"]["gaps"][0]["duration_s"], 0.0501);
    assert!(v["flagged"]["gaps"][0]["start"].is_string());
    assert!(stderr(&out).contains("1 gap(s)"), "{}", stderr(&out));
}

/// Blank and `99999` COMTRADE values (the standard's "missing") read as 0 V: a false 2-s
/// interruption. Now those samples are stood in for, and every window over them is flagged.
#[test]
fn missing_comtrade_samples_are_flagged_not_an_interruption() {
    let dir = tempfile::tempdir().unwrap();
    for (revision, marker) in [("1999", ""), ("1999", "99999"), ("2013", "99999")] {
        let mut rows = supply(1200.0, 4.0, None);
        for v in &mut rows.v[1200..3600] {
            *v = [f64::NAN; 3];
        }
        let c = cfg(
            revision,
            ["VA", "VB", "VC"],
            &["1200,4800"],
            "01/01/2020,00:00:00",
            "ASCII",
        );
        let path = write(dir.path(), "m.cfg", c);
        write(dir.path(), "m.dat", dat_ascii(&rows, marker));
        let r = replay(&path).unwrap();
        let what = format!("{revision} `{marker}`");
        assert_eq!(kinds(&r), Vec::<&str>::new(), "{what}: {:?}", r.events);
        assert_eq!(r.flagged.missing_samples, 2400, "{what}");
        assert!(r.flagged.windows >= 200, "{what}: {:?}", r.flagged);
        assert!(r.windows_judged >= 150, "{what}: {}", r.windows_judged);
    }
}

/// One absurd value (1e23) scaled the whole channel to 0: a false interruption over a real
/// 50 % dip. Now it is out of range, flagged, and the dip is measured as it is.
#[test]
fn one_absurd_value_is_out_of_range_and_the_dip_stays_a_dip() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = supply(10_000.0, 1.0, Some((0.5, 0.7, 0.5)));
    rows.v[2_000][0] = 1e23;
    let path = write(dir.path(), "spike.csv", csv(&rows));
    let r = replay(&path).unwrap();
    assert_eq!(kinds(&r), ["dip"], "{:?}", r.events);
    assert!(
        (r.events[0].extreme_pct - 50.0).abs() < 3.0,
        "{:?}",
        r.events
    );
    assert_eq!(r.flagged.out_of_range_samples, 1);
    assert!(
        r.flagged.windows >= 1 && r.flagged.windows <= 4,
        "{:?}",
        r.flagged
    );
}

// ---- item 8: say what was read ----

/// A .dat cut on a sample boundary read as a shorter record, exit 0, no warning.
#[test]
fn a_dat_cut_on_a_sample_boundary_is_reported_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let rows = supply(1200.0, 1.0, None);
    let c = cfg(
        "1999",
        ["VA", "VB", "VC"],
        &["1200,1200"],
        "01/01/2020,00:00:00",
        "BINARY",
    );
    let path = write(dir.path(), "t.cfg", c);
    let bytes = dat_binary(&rows);
    write(dir.path(), "t.dat", &bytes[..14 * 900]);
    let out = kare(&path, &["--udin", "230"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["truncated"], true);
    assert_eq!(v["samples_declared"], 1200);
    assert_eq!(v["samples_read"], 900);
    assert!(
        err.contains("warning") && err.contains("cut short"),
        "{err}"
    );
    assert!(err.contains("1200") && err.contains("900"), "{err}");
}

/// Less than one cycle said "no events" with exit 0.
#[test]
fn less_than_a_cycle_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "short.csv", csv(&supply(10_000.0, 0.015, None)));
    let out = kare(&path, &["--udin", "230", "--frequency", "50"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("less than one cycle"), "{err}");
    assert!(out.stdout.is_empty());
}

/// An impossible start date silently became 1970, like no date at all.
#[test]
fn an_impossible_start_date_is_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let rows = supply(1200.0, 1.0, None);
    let c = cfg(
        "1999",
        ["VA", "VB", "VC"],
        &["1200,1200"],
        "31/02/2014,25:61:99.999",
        "ASCII",
    );
    let path = write(dir.path(), "d.cfg", c);
    write(dir.path(), "d.dat", dat_ascii(&rows, ""));
    let out = kare(&path, &["--udin", "230"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["start_from_file"], false);
    assert_eq!(
        v["start_unreadable"], "line 9: `31/02/2014,25:61:99.999`",
        "{v}"
    );
    assert!(err.contains("not a real date"), "{err}");
    // An all-zero date is "no date", not an impossible one.
    let c = cfg(
        "1999",
        ["VA", "VB", "VC"],
        &["1200,1200"],
        "00/00/0000,00:00:00.000000",
        "ASCII",
    );
    write(dir.path(), "d.cfg", c);
    let out = kare(&path, &["--udin", "230"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["start_unreadable"], Value::Null);
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
}

/// A start on 9999-12-31 printed `+10000-01-01…`, which is not RFC 3339.
#[test]
fn times_past_the_year_9999_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rows = supply(1200.0, 2.0, None);
    let c = cfg(
        "1999",
        ["VA", "VB", "VC"],
        &["1200,2400"],
        "31/12/9999,23:59:59.000000",
        "ASCII",
    );
    let path = write(dir.path(), "y.cfg", c);
    write(dir.path(), "y.dat", dat_ascii(&rows, ""));
    let out = kare(&path, &["--udin", "230"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("9999") && err.contains("RFC 3339"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("+10000"));
}

// ---- item 9: messages ----

/// Channel names, values and file names are quoted in messages: control bytes in them used
/// to reach the terminal (`ESC ] 0 ; … BEL` retitles it).
#[test]
fn control_bytes_from_files_are_escaped_in_messages() {
    let dir = tempfile::tempdir().unwrap();
    let rows = supply(1200.0, 1.0, None);
    let evil = "V\u{1b}]0;pwned\u{7}A";
    let c = cfg(
        "1999",
        [evil, "VB", "VC"],
        &["1200,1200"],
        "01/01/2020,00:00:00",
        "ASCII",
    );
    let path = write(dir.path(), "e.cfg", c);
    write(dir.path(), "e.dat", dat_ascii(&rows, ""));
    let out = kare(&path, &["--udin", "230"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");
    assert!(err.contains("V\\u{1b}]0;pwned\\u{7}A"), "{err}");

    // A bad value quoted from the data file.
    let mut dat = dat_ascii(&rows, "");
    dat = dat.replacen("\n2,", "\n2,\u{1b}[2J", 1);
    write(dir.path(), "e.dat", dat);
    let out = kare(&path, &["--udin", "230", "--channels", "VB"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains('\u{1b}'), "{err:?}");
    assert!(err.contains("\\u{1b}[2J"), "{err}");
}

/// Values so large that no scale fits said "every channel needs a positive scale".
#[test]
fn huge_values_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = supply(10_000.0, 0.5, None);
    for v in &mut rows.v {
        for x in v.iter_mut() {
            *x *= 1e30;
        }
    }
    let path = write(dir.path(), "huge.csv", csv(&rows));
    let out = kare(&path, &["--udin", "230", "--frequency", "50"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("positive scale"), "{err}");
    assert!(err.contains("out of range"), "{err}");
}

/// `--udin 1e300` said "must be a finite number".
#[test]
fn udin_out_of_range_gives_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "ok.csv", csv(&supply(10_000.0, 0.2, None)));
    for udin in ["1e300", "0", "-5", "NaN"] {
        let out = kare(&path, &["--udin", udin]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("from 0.001 to 10000000"), "{udin}: {err}");
        assert!(!err.contains("finite"), "{udin}: {err}");
    }
}

/// A missing file printed the operating system's reason twice.
#[test]
fn a_missing_file_gives_the_reason_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = kare(&dir.path().join("nope.csv"), &["--udin", "230"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
