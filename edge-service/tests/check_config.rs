//! `kare check-config FILE` (issue 15): the sample configuration passes with its summary, a bad
//! value is named with its key and line, a missing file and a configuration `kare run` would
//! refuse (no node, no site, no store folder) exit 1 with every problem.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sample() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd/kare.toml");
    std::fs::read_to_string(p).expect("systemd/kare.toml")
}

/// The sample with its store in `dir` (the package's /var/lib/kare does not exist here).
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let text = text.replace(
        "path = \"/var/lib/kare/kare.db\"",
        &format!("path = \"{}\"", dir.join("kare.db").display()),
    );
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn check(file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kare"))
        .arg("check-config")
        .arg(file)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn the_sample_is_ok_with_a_one_line_summary() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "kare.toml", &sample());
    let out = check(&file);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("ok: "), "{stdout}");
    for part in [
        "1 node(s)",
        "1 Modbus bus(es)",
        "1 DL/T 645 bus(es)",
        "delivery endpoint(s)",
    ] {
        assert!(stdout.contains(part), "{part} missing from {stdout}");
    }
}

#[test]
fn a_bad_value_is_named_with_its_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = sample();
    // The first node's udin, on the line the sample writes it.
    let line = good
        .lines()
        .position(|l| l.starts_with("udin = 230.0"))
        .expect("the sample's [[node]] udin")
        + 1;
    let bad = good.replacen("udin = 230.0", "udin = -5.0", 1);
    let file = write(dir.path(), "bad.toml", &bad);
    let out = check(&file);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert!(
        stderr.contains(&format!("line {line}: `node[0].udin`")),
        "key and line {line} expected: {stderr}"
    );
    assert!(stderr.contains("e.g. `udin = 230.0`"), "a fix: {stderr}");

    // The library gives the same key and line.
    let outcome = kare::cli::check_config::check(&file);
    assert_eq!(outcome.problems.len(), 1);
    assert_eq!(outcome.problems[0].key.as_deref(), Some("node[0].udin"));
    assert_eq!(outcome.problems[0].line, Some(line));
    assert!(outcome.summary.is_none());
}

#[test]
fn a_syntax_error_has_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "bad.toml",
        "listen = \"127.0.0.1:8080\"\n[site\n",
    );
    let out = check(&file);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        kare::cli::check_config::check(&file).problems[0].line,
        Some(2)
    );
}

#[test]
fn a_missing_file_is_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let out = check(&dir.path().join("none.toml"));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot read configuration") && stderr.contains("none.toml"),
        "{stderr}"
    );
}

#[test]
fn what_kare_run_requires_is_checked_and_every_problem_listed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("empty.toml");
    std::fs::write(
        &file,
        "[store]\npath = \"/nonexistent-kare-folder/kare.db\"\n",
    )
    .unwrap();
    let out = check(&file);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let outcome = kare::cli::check_config::check(&file);
    let keys: Vec<_> = outcome
        .problems
        .iter()
        .map(|p| p.key.clone().unwrap_or_default())
        .collect();
    assert_eq!(keys, ["node", "site", "store.path"], "{stderr}");
    assert_eq!(outcome.problems[2].line, Some(2), "the store's path line");
    assert!(stderr.contains("3 problem(s)"), "{stderr}");
}
