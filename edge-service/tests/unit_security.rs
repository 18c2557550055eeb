//! The systemd unit (`systemd/kare.service`) stays hardened: `systemd-analyze security
//! --offline=yes` scores it at most 1.5, and `systemd-analyze verify` accepts it (with the
//! binary's path pointed at the one Cargo built). `scripts/systemd-tools install` provides
//! systemd-analyze on a fresh Debian machine (`scripts/test` runs it).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The highest exposure the unit may score.
const MAX_EXPOSURE: f64 = 1.5;

fn unit() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd/kare.service")
}

fn analyze(args: &[&str], unit: &Path) -> (bool, String) {
    let out = Command::new("systemd-analyze")
        .args(args)
        .arg(unit)
        .env("SYSTEMD_COLORS", "0")
        .env("SYSTEMD_PAGER", "")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run systemd-analyze ({e}): install it with scripts/systemd-tools install"
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The figure in "→ Overall exposure level for kare.service: 1.3 OK".
fn exposure(report: &str) -> Option<f64> {
    let line = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))?;
    let after = line.rsplit_once(':')?.1.trim();
    after.split_whitespace().next()?.parse().ok()
}

#[test]
fn exposure_parses() {
    assert_eq!(
        exposure("x\n→ Overall exposure level for kare.service: 1.3 OK 🙂\n"),
        Some(1.3)
    );
    assert_eq!(exposure("no score"), None);
}

#[test]
fn the_unit_scores_at_most_1_5() {
    let (_, report) = analyze(&["security", "--offline=yes", "--no-pager"], &unit());
    let score = exposure(&report)
        .unwrap_or_else(|| panic!("no exposure level in systemd-analyze's report:\n{report}"));
    assert!(
        score <= MAX_EXPOSURE,
        "systemd/kare.service scores {score} (at most {MAX_EXPOSURE}): what it leaves open:\n{}",
        report
            .lines()
            .filter(|l| l.starts_with('✗'))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_unit_verifies() {
    // verify checks that ExecStart's binary exists: point it at the one Cargo built.
    let text = std::fs::read_to_string(unit()).unwrap();
    assert!(text.contains("ExecStart=/usr/bin/kare run --config /etc/kare/kare.toml"));
    assert!(text.contains("ExecStartPre=/usr/bin/kare check-config /etc/kare/kare.toml"));
    assert!(text.contains("Type=notify"));
    assert!(text.contains("WatchdogSec="));
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("kare.service");
    std::fs::write(
        &local,
        text.replace("/usr/bin/kare", env!("CARGO_BIN_EXE_kare")),
    )
    .unwrap();
    let (ok, report) = analyze(&["verify"], &local);
    assert!(
        ok && report.trim().is_empty(),
        "systemd-analyze verify:\n{report}"
    );
}
