//! The Class A conformance suite (`kare::sim::conformance`) on the replay path.
//!
//! The replay path is the measurement core's `Monitor` fed with quantised samples: `kare replay`
//! quantises a recording to 24-bit units, measures it with `UrmsMeter` (`replay/feed.rs`) and
//! judges each Urms(1/2) record as `Monitor::push` does (whole units times the scale, then
//! `Monitor::judge`). A uniform recording with no flagged data takes exactly that path, so the
//! grid is fed to `Monitor::push` directly, a sample at a time, rather than built as an in-memory
//! recording (which would hold the whole grid: 7000 s of three channels).
//!
//! Writes the worst-error table to `target/conformance-report.txt` and prints it.

use kare::recording::{AnalogChannel, DataFormat, Recording, Revision, SampleRate, Scaling};
use kare::replay::{self, ReplayOptions};
use kare::sim::conformance::{self, Case, Found, Kind, Report, Run};
use std::time::Instant;

/// Judges every run, two at a time (the runs are independent waveforms).
fn judge_all(runs: &[Run]) -> Report {
    let results: Vec<Vec<Found>> = std::thread::scope(|scope| {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(2));
        let chunks: Vec<&[Run]> = runs.chunks(runs.len().div_ceil(workers)).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || chunk.iter().map(conformance::replay).collect::<Vec<_>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut report = Report::default();
    for (run, found) in runs.iter().zip(results) {
        report.add_run(run, found);
    }
    report
}

/// The ideal reference meter (`conformance::ideal`) over every run.
fn ideal_report(runs: &[Run]) -> Report {
    let mut report = Report::default();
    for run in runs {
        report.add_run(run, conformance::ideal(run));
    }
    report
}

/// `target/` of the workspace: the test binary lives in `target/<profile>/deps/`.
fn report_path() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).unwrap().to_path_buf();
    target.join("conformance-report.txt")
}

#[test]
fn dips_swells_and_interruptions_of_the_class_a_grid_are_measured_within_tolerance() {
    let mut text = String::new();
    let mut failing = Vec::new();
    let mut all = Report::default();
    for (title, cases) in [
        (
            "replay path, simulator grid (6400 Sps)",
            conformance::grid(),
        ),
        (
            "replay path, Pico grid (3750 Sps)",
            conformance::pico_grid(),
        ),
    ] {
        let runs = conformance::runs(&cases);
        let seconds: f64 = runs.iter().map(Run::length_s).sum();
        let t = Instant::now();
        let report = judge_all(&runs);
        let took = t.elapsed().as_secs_f64();
        text.push_str(&report.table(title, 20));
        text.push_str(&format!(
            "({} runs, {:.0} s of signal, measured and judged in {took:.1} s)\n\n",
            runs.len(),
            seconds
        ));
        all.verdicts.extend(report.verdicts.iter().cloned());
        failing.extend(
            report
                .failures()
                .take(20)
                .map(|v| format!("{}: {}", v.slot.case.label(), v.failures.join("; "))),
        );
        failing.extend(
            report
                .stray
                .iter()
                .take(20)
                .map(|(run, f)| format!("stray event in {run}: {}", f.describe())),
        );
    }
    // The reference: what a perfect meter scores with today's detector and convention.
    let ideal = ideal_report(&conformance::runs(&conformance::grid()));
    text.push_str(&ideal.table(
        "reference: ideal Urms(1/2) meter (exact RMS, regular half-cycle grid on phase A) with \
         today's detector, simulator grid; not a test of the product",
        5,
    ));
    text.push('\n');
    let path = report_path();
    std::fs::write(&path, &text).unwrap();
    let csv = path.with_file_name("conformance-cases.csv");
    std::fs::write(&csv, all.csv()).unwrap();
    println!("{text}");
    println!(
        "(written to {}; every case's errors in {})",
        path.display(),
        csv.display()
    );
    assert!(
        failing.is_empty(),
        "cases out of tolerance (first {} of each grid; the table is in {}):\n{}",
        failing.len().min(40),
        path.display(),
        failing.join("\n")
    );
}

#[test]
fn kare_replay_of_a_recording_finds_exactly_what_the_suite_measures_on_the_replay_path() {
    // A handful of dips at 50 Hz sampled at 7200 Sps (2.5° a sample): every phase peaks at
    // exactly Udin·√2 on a sample, so `kare replay`'s quantisation step (each channel's peak /
    // 2^22) is exactly the suite's volts per unit, and the two must agree to the last bit.
    let cases: Vec<Case> = conformance::grid()
        .into_iter()
        .filter(|c| {
            c.kind == Kind::Dip
                && c.frequency_hz == 50.0
                && [0.0, 30.0, 85.0].contains(&c.level_pct)
                && [1.5, 10.0].contains(&c.cycles)
                && [0.0, 90.0].contains(&c.angle_deg)
        })
        .map(|c| Case {
            sample_rate_hz: 7200.0,
            ..c
        })
        .collect();
    assert_eq!(cases.len(), 24);
    let run = &conformance::runs(&cases)[0];
    let lsb = f64::from(conformance::volts_per_unit());
    let mut values = vec![Vec::new(); conformance::CHANNELS];
    for s in run.samples() {
        for (v, x) in values.iter_mut().zip(s) {
            v.push(x as f64 * lsb);
        }
    }
    let n = values[0].len();
    for v in &values {
        let peak = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        assert_eq!(peak, (1u64 << 22) as f64 * lsb);
    }
    let analog = conformance::CHANNEL_NAMES
        .iter()
        .zip(values)
        .enumerate()
        .map(|(i, (name, values))| AnalogChannel {
            index: i as u32 + 1,
            name: name.to_string(),
            phase: String::new(),
            circuit: String::new(),
            unit: "V".into(),
            a: 1.0,
            b: 0.0,
            skew_s: 0.0,
            min: -1e9,
            max: 1e9,
            primary: 1.0,
            secondary: 1.0,
            scaling: Scaling::Primary,
            values,
        })
        .collect();
    let rec = Recording {
        station: "conformance".into(),
        device: "kare".into(),
        revision: Revision::Y2013,
        line_frequency_hz: Some(50.0),
        start: None,
        start_unreadable: None,
        trigger: None,
        samples_declared: None,
        time_s: (0..n).map(|k| k as f64 / run.sample_rate_hz).collect(),
        rates: vec![SampleRate {
            rate_hz: run.sample_rate_hz,
            last_sample: n as u64,
        }],
        analog,
        digital: Vec::new(),
        data_format: DataFormat::Float32,
    };
    let names = conformance::CHANNEL_NAMES.map(String::from).to_vec();
    let report = replay::analyse(&rec, &ReplayOptions::new(names, conformance::UDIN)).unwrap();
    let mut via_replay: Vec<Found> = report.events.iter().map(Found::from_reported).collect();
    conformance::sort_found(&mut via_replay);
    let via_suite = conformance::replay(run);
    assert!(via_suite.len() >= cases.len());
    assert_eq!(via_replay.len(), via_suite.len());
    for (r, s) in via_replay.iter().zip(&via_suite) {
        assert_eq!(
            (r.kind, r.worst_channel),
            (s.kind, s.worst_channel),
            "{r:?} vs {s:?}"
        );
        assert!((r.start_s - s.start_s).abs() < 1e-9, "{r:?} vs {s:?}");
        assert_eq!(r.duration_s.is_some(), s.duration_s.is_some());
        assert!(
            (r.duration_s.unwrap_or(0.0) - s.duration_s.unwrap_or(0.0)).abs() < 1e-9,
            "{r:?} vs {s:?}"
        );
        assert!(
            (r.extreme_pct - s.extreme_pct).abs() < 1e-9,
            "{r:?} vs {s:?}"
        );
    }
}

#[test]
fn an_ideal_meter_passes_every_case_with_todays_detector_and_time_stamp_convention() {
    // Checks the construction, the judge and the convention, not the product: exact Urms(1/2)
    // values on a regular half-cycle grid must give every expected event, nothing else, the
    // constructed level, and times within tolerance. A change of the detector's time stamps
    // that breaks this needs `conformance::time_errors` changed with it.
    let report = ideal_report(&conformance::runs(&conformance::grid()));
    assert!(report.stray.is_empty(), "{:?}", report.stray);
    for v in &report.verdicts {
        let kinds: Vec<_> = v.measured.iter().map(|m| m.expected.kind).collect();
        for m in &v.measured {
            let err = m.extreme_err_pct.unwrap_or_else(|| {
                panic!("{}: no {:?} found", v.slot.case.label(), m.expected.kind)
            });
            assert!(err.abs() < 0.01, "{}: residual {err}", v.slot.case.label());
        }
        assert!(
            !v.failures
                .iter()
                .any(|f| f.starts_with("other event") || f.contains("instead of one")),
            "{} (expects {kinds:?}): {:?}",
            v.slot.case.label(),
            v.failures
        );
    }
    assert!(
        report.passed(),
        "{}",
        report.table("ideal meter, today's detector", 20)
    );
}
