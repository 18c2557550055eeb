//! `kare replay` as a user runs it: the built binary, real files, the contract's output.

use serde_json::Value;
use std::f64::consts::PI;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn kare(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kare"))
        .args(args)
        .output()
        .expect("the kare binary runs")
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "kare failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

fn shared(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/comtrade")
        .join(rel);
    p.to_string_lossy().into_owned()
}

/// Writes a three-phase CSV whose RMS, in % of 230 V, is `pct(t, phase)`.
fn write_csv(
    dir: &Path,
    name: &str,
    f: f64,
    seconds: f64,
    pct: impl Fn(f64, usize) -> f64,
) -> PathBuf {
    let fs = 3200.0;
    let mut s = String::from("time,VA,VB,VC\n");
    for k in 0..(seconds * fs) as usize {
        let t = k as f64 / fs;
        s.push_str(&format!("{t:.6}"));
        for ph in 0..3 {
            let v = 230.0 * pct(t, ph) / 100.0
                * 2f64.sqrt()
                * (2.0 * PI * f * t - ph as f64 * 2.0 * PI / 3.0).sin();
            s.push_str(&format!(",{v:.4}"));
        }
        s.push('\n');
    }
    let path = dir.join(name);
    std::fs::write(&path, s).unwrap();
    path
}

fn events_of<'a>(v: &'a Value, kind: &str) -> Vec<&'a Value> {
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .collect()
}

#[test]
fn json_output_follows_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write_csv(dir.path(), "feeder.csv", 50.0, 1.5, |t, _| {
        if (0.3..0.4).contains(&t) {
            60.0
        } else if (0.6..0.9).contains(&t) {
            0.0
        } else if t >= 1.2 {
            125.0
        } else {
            100.0
        }
    });
    let out = kare(&[
        "replay",
        csv.to_str().unwrap(),
        "--channels",
        "VA,VB,VC",
        "--udin",
        "230",
        "--format",
        "json",
    ]);
    let v = json_of(&out);
    assert_eq!(v["udin"], 230.0);
    assert_eq!(
        v["frequency_hz"], 50.0,
        "told from the data: the CSV has no line frequency"
    );
    assert_eq!(v["channels"], serde_json::json!(["VA", "VB", "VC"]));
    for e in v["events"].as_array().unwrap() {
        for field in [
            "kind",
            "start",
            "offset_s",
            "duration_s",
            "extreme_pct",
            "worst_channel",
            "itic",
            "semi_f47",
        ] {
            assert!(e.get(field).is_some(), "event lacks `{field}`: {e}");
        }
        assert!(e["start"].as_str().unwrap().ends_with('Z'));
        assert!(["inside", "below", "above"].contains(&e["itic"].as_str().unwrap()));
    }

    let dips = events_of(&v, "dip");
    assert_eq!(
        dips.len(),
        2,
        "the 60 % dip, and the dip around the interruption"
    );
    let d = dips[0];
    assert!((d["offset_s"].as_f64().unwrap() - 0.3).abs() <= 0.02, "{d}");
    assert!(
        (d["duration_s"].as_f64().unwrap() - 0.1).abs() <= 0.02,
        "{d}"
    );
    assert!(
        (d["extreme_pct"].as_f64().unwrap() - 60.0).abs() <= 0.5,
        "{d}"
    );
    assert_eq!(
        d["itic"], "below",
        "60 % for 100 ms is under ITIC's 70 % edge"
    );
    assert_eq!(
        d["semi_f47"], "inside",
        "60 % for 100 ms is above F47's 50 % line"
    );
    // The CSV's time column is seconds since the epoch.
    assert!(d["start"]
        .as_str()
        .unwrap()
        .starts_with("1970-01-01T00:00:00."));

    let ints = events_of(&v, "interruption");
    assert_eq!(ints.len(), 1);
    assert!((ints[0]["duration_s"].as_f64().unwrap() - 0.3).abs() <= 0.02);
    assert_eq!(ints[0]["itic"], "below");
    assert_eq!(ints[0]["semi_f47"], "below");

    let swells = events_of(&v, "swell");
    assert_eq!(swells.len(), 1);
    assert!(
        swells[0]["duration_s"].is_null(),
        "still in progress at the end of the data"
    );
    assert!(
        swells[0]["semi_f47"].is_null(),
        "F47 says nothing of swells"
    );
    assert!((swells[0]["extreme_pct"].as_f64().unwrap() - 125.0).abs() <= 0.5);
    assert_eq!(
        swells[0]["itic"], "above",
        "125 % for 0.3 s is over ITIC's 120 % edge"
    );
}

#[test]
fn sixty_hz_is_told_from_the_data_and_can_be_forced() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write_csv(dir.path(), "sixty.csv", 60.0, 1.0, |t, ph| {
        if ph == 1 && (0.5..0.55).contains(&t) {
            80.0
        } else {
            100.0
        }
    });
    let path = csv.to_str().unwrap();
    let v = json_of(&kare(&[
        "replay",
        path,
        "--channels",
        "VA,VB,VC",
        "--udin",
        "230",
        "--format",
        "json",
    ]));
    assert_eq!(v["frequency_hz"], 60.0);
    let dips = events_of(&v, "dip");
    assert_eq!(dips.len(), 1);
    assert_eq!(dips[0]["worst_channel"], "VB");
    let forced = json_of(&kare(&[
        "replay",
        path,
        "--channels",
        "VA,VB,VC",
        "--udin",
        "230",
        "--frequency",
        "60",
        "--format",
        "json",
    ]));
    assert_eq!(forced["events"], v["events"]);
}

#[test]
fn thresholds_are_taken_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write_csv(dir.path(), "shallow.csv", 50.0, 1.0, |t, _| {
        if (0.4..0.6).contains(&t) {
            93.0
        } else {
            100.0
        }
    });
    let path = csv.to_str().unwrap();
    let base = [
        "replay",
        path,
        "--channels",
        "VA,VB,VC",
        "--udin",
        "230",
        "--format",
        "json",
    ];
    assert!(events_of(&json_of(&kare(&base)), "dip").is_empty());
    let mut args = base.to_vec();
    args.extend(["--dip", "95", "--hysteresis", "1"]);
    assert_eq!(events_of(&json_of(&kare(&args)), "dip").len(), 1);
}

#[test]
fn csv_and_table_formats_list_the_same_events() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write_csv(dir.path(), "f.csv", 50.0, 1.0, |t, _| {
        if (0.4..0.5).contains(&t) {
            50.0
        } else {
            100.0
        }
    });
    let path = csv.to_str().unwrap();
    let args = |fmt: &'static str| {
        vec![
            "replay",
            path,
            "--channels",
            "VA,VB,VC",
            "--udin",
            "230",
            "--format",
            fmt,
        ]
    };
    let out = kare(&args("csv"));
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("kind,start,offset_s,duration_s,extreme_pct"));
    assert!(lines[1].starts_with("dip,1970-01-01T00:00:00."));
    assert!(
        lines[1].contains(",70>u>=40,10-200ms,instantaneous"),
        "{}",
        lines[1]
    );
    let out = kare(&args("table"));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("70>u>=40 / 10-200ms"), "{text}");
    assert!(text.contains("1 event(s)"));
}

fn fails_with(args: &[&str], needle: &str) {
    let out = kare(args);
    assert!(!out.status.success(), "should fail: {args:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "one-line reason: {err}");
    assert!(err.contains(needle), "`{needle}` not in: {err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn unreadable_input_fails_with_a_one_line_reason() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write_csv(dir.path(), "ok.csv", 50.0, 0.5, |_, _| 100.0);
    let path = csv.to_str().unwrap();
    fails_with(
        &["replay", path, "--channels", "VA,VX,VC", "--udin", "230"],
        "VX",
    );
    fails_with(
        &["replay", path, "--channels", "VA", "--udin", "-5"],
        "udin",
    );
    fails_with(
        &[
            "replay",
            path,
            "--channels",
            "VA",
            "--udin",
            "230",
            "--frequency",
            "55",
        ],
        "50 or 60",
    );
    fails_with(
        &[
            "replay",
            path,
            "--channels",
            "VA",
            "--udin",
            "230",
            "--dip",
            "5",
        ],
        "threshold",
    );
    let missing = dir.path().join("nope.cfg");
    fails_with(
        &[
            "replay",
            missing.to_str().unwrap(),
            "--channels",
            "VA",
            "--udin",
            "1",
        ],
        "nope.cfg",
    );
    // A cfg whose .dat is missing.
    let cfg = dir.path().join("lonely.cfg");
    std::fs::copy(shared("wisp-set1/sample_ascii.cfg"), &cfg).unwrap();
    fails_with(
        &[
            "replay",
            cfg.to_str().unwrap(),
            "--channels",
            "IA",
            "--udin",
            "1",
        ],
        "lonely",
    );
}
