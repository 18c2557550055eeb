//! Property test of `kare replay` on random and randomly damaged recordings (issue 11): real
//! COMTRADE files from `../shared/data/comtrade` and synthetic CSV and COMTRADE, mutated
//! (fields replaced by absurd numbers or control bytes, lines dropped or repeated, bytes
//! flipped, data cut short, samples blanked), fed to the library and a few to the binary.
//!
//! Whatever the input: no panic, no abort, bounded time and memory, and never a success on
//! what could not be measured (a report always rests on at least one judged Urms(1/2)
//! window, and every time it prints is valid RFC 3339). A seeded generator makes every
//! failure reproducible: the message names the seed and the mutations.

mod replay_support;

use kare::recording;
use kare::replay::{analyse, output, ReplayOptions};
use replay_support::*;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SEED: u64 = 0x6b61_7265_0011;
/// Library cases; about 10 s in a debug build.
const CASES: usize = 1500;
/// Cases also run through the binary.
const BINARY_CASES: usize = 12;
/// Longest a debug build may take on one case (the inputs are at most a few hundred kB).
const MAX_CASE: Duration = Duration::from_secs(5);

const REAL: &[(&str, &str)] = &[
    ("wisp-set1/sample_ascii.cfg", "sample_ascii.dat"),
    ("wisp-set1/sample_bin.cfg", "sample_bin.dat"),
    ("wisp-set1/sample_ascii.cff", ""),
    ("wisp-set2/4.CFG", "4.DAT"),
    ("wisp-set2/5.cfg", "5.dat"),
    ("wisp-set2/1.cfg", "1.dat"),
    ("comtrade-io/ascii_1991.cfg", "ascii_1991.dat"),
    ("ge850/real_1999_bin.cfg", "real_1999_bin.dat"),
];

const ABSURD: &[&str] = &[
    "",
    "0",
    "-1",
    "-2400",
    "1e300",
    "1e9",
    "1e8",
    "99999",
    "NaN",
    "inf",
    "1e23",
    "4294967295",
    "31/02/2014,25:61:99.999",
    "31/12/9999,23:59:59.999999",
    "\u{1b}]0;pwned\u{7}",
    "\u{202e}x",
];

/// One input: files (name, bytes), the one to open, and what was done to make it.
struct Case {
    files: Vec<(String, Vec<u8>)>,
    open: String,
    what: Vec<String>,
}

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/comtrade")
}

fn real_case(rng: &mut fastrand::Rng) -> Case {
    let (cfg, dat) = REAL[rng.usize(..REAL.len())];
    let cfg_path = shared().join(cfg);
    let name = cfg_path.file_name().unwrap().to_string_lossy().into_owned();
    let mut files = vec![(name.clone(), std::fs::read(&cfg_path).unwrap())];
    if !dat.is_empty() {
        files.push((
            dat.to_string(),
            std::fs::read(cfg_path.with_file_name(dat)).unwrap(),
        ));
    }
    Case {
        files,
        open: name,
        what: vec![format!("real {cfg}")],
    }
}

fn synthetic_case(rng: &mut fastrand::Rng) -> Case {
    let rate = [400.0, 1200.0, 4000.0, 10_000.0][rng.usize(..4)];
    let secs = [0.005, 0.05, 0.3, 1.0][rng.usize(..4)];
    let dip = rng
        .bool()
        .then(|| (0.1, 0.1 + rng.f64() * 0.3, rng.f64() * 1.3));
    let rows = supply(rate, secs, dip);
    let what = vec![format!("synthetic {rate}/s {secs} s dip {dip:?}")];
    match rng.usize(..3) {
        0 => Case {
            files: vec![("s.csv".into(), csv(&rows).into_bytes())],
            open: "s.csv".into(),
            what,
        },
        k => {
            let n = rows.t.len();
            let format = if k == 1 { "ASCII" } else { "BINARY" };
            let c = cfg(
                ["1999", "2013", "1991"][rng.usize(..3)],
                ["VA", "VB", "VC"],
                &[&format!("{rate},{n}")],
                "01/01/2020,00:00:00",
                format,
            );
            let dat = if k == 1 {
                dat_ascii(&rows, "").into_bytes()
            } else {
                dat_binary(&rows)
            };
            Case {
                files: vec![("s.cfg".into(), c.into_bytes()), ("s.dat".into(), dat)],
                open: "s.cfg".into(),
                what,
            }
        }
    }
}

/// Replaces one comma-separated field of a random line with an absurd value.
fn mutate_text(rng: &mut fastrand::Rng, bytes: &mut Vec<u8>, what: &mut Vec<String>) {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if lines.is_empty() {
        return;
    }
    let i = rng.usize(..lines.len());
    match rng.usize(..4) {
        0 | 1 => {
            let mut f: Vec<String> = lines[i].split(',').map(str::to_string).collect();
            let j = rng.usize(..f.len());
            let v = ABSURD[rng.usize(..ABSURD.len())];
            what.push(format!("line {} field {j} = {v:?}", i + 1));
            f[j] = v.to_string();
            lines[i] = f.join(",");
        }
        2 => {
            what.push(format!("line {} dropped", i + 1));
            lines.remove(i);
        }
        _ => {
            let end = (i + rng.usize(1..50)).min(lines.len());
            what.push(format!("lines {}..{} dropped", i + 1, end + 1));
            lines.drain(i..end);
        }
    }
    *bytes = (lines.join("\n") + "\n").into_bytes();
}

fn mutate_bytes(rng: &mut fastrand::Rng, bytes: &mut Vec<u8>, what: &mut Vec<String>) {
    if bytes.is_empty() {
        return;
    }
    match rng.usize(..3) {
        0 => {
            let at = rng.usize(..bytes.len());
            what.push(format!("cut at byte {at}"));
            bytes.truncate(at);
        }
        1 => {
            let k = rng.usize(1..20);
            what.push(format!("{k} bytes flipped"));
            for _ in 0..k {
                let at = rng.usize(..bytes.len());
                bytes[at] = rng.u8(..);
            }
        }
        _ => {
            let at = rng.usize(..bytes.len());
            let len = rng.usize(1..64);
            what.push(format!("{len} random bytes inserted at {at}"));
            let junk: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            bytes.splice(at..at, junk);
        }
    }
}

fn make_case(rng: &mut fastrand::Rng) -> Case {
    let mut case = if rng.bool() {
        real_case(rng)
    } else {
        synthetic_case(rng)
    };
    let mutations = rng.usize(0..4);
    for _ in 0..mutations {
        let f = rng.usize(..case.files.len());
        let (_, bytes) = &mut case.files[f];
        let mut what = Vec::new();
        if rng.usize(..3) < 2 {
            mutate_text(rng, bytes, &mut what);
        } else {
            mutate_bytes(rng, bytes, &mut what);
        }
        case.what.extend(
            what.into_iter()
                .map(|w| format!("{}: {w}", case.files[f].0)),
        );
    }
    case
}

/// Every time the JSON report prints is RFC 3339 with a four-digit year.
fn check_times(v: &serde_json::Value, ctx: &str) {
    let mut times = vec![v["recording_start"].clone()];
    times.extend(
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["start"].clone()),
    );
    times.extend(
        v["flagged"]["gaps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["start"].clone()),
    );
    for t in times {
        let s = t.as_str().unwrap_or_else(|| panic!("{ctx}: time {t}"));
        assert!(
            chrono::DateTime::parse_from_rfc3339(s).is_ok() && !s.starts_with('+'),
            "{ctx}: {s} is not RFC 3339"
        );
    }
}

fn options(rng: &mut fastrand::Rng, rec: &recording::Recording) -> ReplayOptions {
    let names: Vec<String> = rec.analog.iter().take(3).map(|c| c.name.clone()).collect();
    let udin = [57.7, 100.0, 230.0, 18.0, 1e-3, 1e7, 1e300, -1.0][rng.usize(..8)];
    let mut o = ReplayOptions::new(names, udin);
    o.frequency_hz = [None, None, Some(50.0), Some(60.0)][rng.usize(..4)];
    o
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn random_and_damaged_recordings_never_panic_hang_or_pass_unmeasured() {
    let mut rng = fastrand::Rng::with_seed(SEED);
    let dir = tempfile::tempdir().unwrap();
    let began = Instant::now();
    let (mut measured, mut refused) = (0, 0);
    for case_no in 0..CASES {
        let case = make_case(&mut rng);
        let sub = dir.path().join(format!("c{case_no}"));
        std::fs::create_dir(&sub).unwrap();
        for (name, bytes) in &case.files {
            std::fs::write(sub.join(name), bytes).unwrap();
        }
        let ctx = format!("seed {SEED:#x} case {case_no}: {:?}", case.what);
        let path = sub.join(&case.open);
        let opts_seed = rng.u64(..);
        let t = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| {
            let rec = recording::read(&path).map_err(|e| e.to_string())?;
            let opts = options(&mut fastrand::Rng::with_seed(opts_seed), &rec);
            analyse(&rec, &opts).map_err(|e| e.to_string())
        }));
        let elapsed = t.elapsed();
        let result = result.unwrap_or_else(|_| panic!("{ctx}: panicked"));
        assert!(elapsed < MAX_CASE, "{ctx}: took {elapsed:?}");
        match result {
            Ok(report) => {
                measured += 1;
                assert!(
                    report.windows_judged > 0,
                    "{ctx}: success without a judged window"
                );
                assert!(report.samples > 0 && report.length_s > 0.0, "{ctx}");
                let v = output::json(&report);
                check_times(&v, &ctx);
                let _ = output::table(&report);
                let _ = output::csv(&report);
            }
            Err(msg) => {
                refused += 1;
                assert!(!msg.is_empty(), "{ctx}");
                assert!(
                    !msg.chars().any(|c| c.is_control()),
                    "{ctx}: control character in {msg:?}"
                );
            }
        }
        // A few through the binary: exit status 0 or 2 only (no abort, no panic), and a
        // success prints a report with a judged window.
        if case_no % (CASES / BINARY_CASES) == 0 {
            let t = Instant::now();
            let names = recording::read(&path)
                .map(|r| {
                    r.analog
                        .iter()
                        .take(3)
                        .map(|c| c.name.clone())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_else(|_| "VA".into());
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_kare"))
                .arg("replay")
                .arg(&path)
                .args(["--channels", &names, "--udin", "100", "--format", "json"])
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                t.elapsed() < MAX_CASE,
                "{ctx}: binary took {:?}",
                t.elapsed()
            );
            match out.status.code() {
                Some(0) => {
                    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
                        .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                    assert!(v["windows_judged"].as_u64().unwrap() > 0, "{ctx}");
                    check_times(&v, &ctx);
                }
                Some(2) => assert!(err.starts_with("kare: "), "{ctx}: {err}"),
                other => panic!("{ctx}: exit {other:?}: {err}"),
            }
            assert!(
                !err.contains('\u{1b}') && !err.contains('\u{7}'),
                "{ctx}: {err:?}"
            );
        }
    }
    let rss = peak_rss_kb();
    eprintln!(
        "{CASES} cases ({measured} measured, {refused} refused as unreadable or unmeasurable) in {:?}, \
         peak RSS {} MB",
        began.elapsed(),
        rss / 1024
    );
    assert!(rss < 1024 * 1024, "peak RSS {} MB", rss / 1024);
    assert!(measured > CASES / 10, "too few cases measured: {measured}");
    assert!(refused > CASES / 10, "too few cases refused: {refused}");
}
