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

use kare::sim::conformance::{self, Found, Report, Run};
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
    let path = report_path();
    std::fs::write(&path, &text).unwrap();
    println!("{text}");
    println!("(written to {})", path.display());
    assert!(
        failing.is_empty(),
        "cases out of tolerance (first {} of each grid; the table is in {}):\n{}",
        failing.len().min(40),
        path.display(),
        failing.join("\n")
    );
}
