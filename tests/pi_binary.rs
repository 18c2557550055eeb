//! The Raspberry Pi's binary (issue 15): `scripts/build-pi`'s arm64 `kare`, run under
//! qemu-user, does what this machine's `kare` does. `kare --version` says aarch64, `kare replay`
//! prints the same JSON byte for byte on real recordings, and `kare run` reading a simulated node
//! over a pseudo-terminal pair logs the same events.
//!
//! The arm64 binary must exist: these tests fail (never skip) without it; `scripts/test` builds
//! it first (`scripts/build-pi`, which also installs qemu-user).
//!
//! qemu-user 7.2 (Debian 12) has no `TCGETS2` ioctl, which tokio-serial opens ports with; the
//! sensor-node source falls back to plain termios then (`sources::serial`), so the arm64
//! `kare run` here reads its port through that fallback, not through termios2 as on a Pi.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const TARGET: &str = "aarch64-unknown-linux-gnu";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The arm64 binary of `scripts/build-pi`.
fn pi_kare() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let bin = target.join(TARGET).join("release/kare");
    assert!(
        bin.is_file(),
        "{} is missing: run scripts/build-pi (scripts/test does) to cross-compile it",
        bin.display()
    );
    bin
}

/// The arm64 `kare` under qemu-aarch64, with the cross libc as its root.
fn pi(args: &[&str]) -> Command {
    let mut c = Command::new("qemu-aarch64");
    c.env("QEMU_LD_PREFIX", "/usr/aarch64-linux-gnu")
        .arg(pi_kare())
        .args(args);
    c
}

/// This machine's `kare`.
fn host(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kare"));
    c.args(args);
    c
}

fn output(mut c: Command) -> Output {
    c.output().unwrap_or_else(|e| {
        panic!("cannot run {c:?}: {e} (is qemu-user installed? scripts/build-pi installs it)")
    })
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn version_says_aarch64_and_the_same_version() {
    let pi = output(pi(&["--version"]));
    assert!(pi.status.success(), "{}", text(&pi.stderr));
    let pi = text(&pi.stdout);
    let host = text(&output(host(&["--version"])).stdout);
    assert!(
        pi.starts_with(&format!("kare {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{pi}"
    );
    assert!(
        pi.trim_end().ends_with(", aarch64-unknown-linux-gnu)"),
        "{pi}"
    );
    assert!(
        !pi.contains("commit unknown"),
        "built from a git checkout: {pi}"
    );
    assert!(host.contains(std::env::consts::ARCH), "{host}");
}

/// Recordings `tests/replay_real.rs` reads, with its channels and Udin.
const RECORDINGS: &[(&str, &str, &str)] = &[
    (
        "wisp-set2/2.cfg",
        "Ua_1СШ-110_ТН_110кВ,Ub_1СШ-110_ТН_110кВ,Uc_1СШ-110_ТН_110кВ",
        "63.5",
    ),
    ("wisp-set2/4.CFG", "U21,U32", "3000"),
    ("comtrade-io/ascii_1991.cfg", "Ua对侧,Ub对侧,Uc对侧", "57.7"),
];

#[test]
fn replay_prints_the_same_json_byte_for_byte() {
    let data = root().join("../shared/data/comtrade");
    for (file, channels, udin) in RECORDINGS {
        let path = data.join(file);
        let path = path.to_str().unwrap();
        let args = [
            "replay",
            path,
            "--channels",
            channels,
            "--udin",
            udin,
            "--format",
            "json",
        ];
        let h = output(host(&args));
        let p = output(pi(&args));
        assert_eq!(
            h.status.code(),
            p.status.code(),
            "{file}: host {} / pi {}",
            text(&h.stderr),
            text(&p.stderr)
        );
        assert!(!h.stdout.is_empty() || h.status.code() != Some(0), "{file}");
        assert!(
            h.stdout == p.stdout,
            "{file}: the arm64 JSON differs:\nhost:\n{}\npi:\n{}",
            text(&h.stdout),
            text(&p.stdout)
        );
        assert_eq!(text(&h.stderr), text(&p.stderr), "{file}: warnings");
    }
}

/// A short scenario: a dip on one phase, a swell on all, a short interruption.
const SCENARIO: &str = r#"
node_id = 1
nominal_hz = 50
udin = 230.0
channels = ["VA", "VB", "VC"]
duration_s = 7.0

[[event]]
at_s = 2.0
duration_s = 0.2
kind = "dip"
level_pct = 60.0
phases = ["A"]

[[event]]
at_s = 3.5
duration_s = 0.3
kind = "swell"
level_pct = 115.0

[[event]]
at_s = 5.0
duration_s = 0.5
kind = "interruption"
level_pct = 0.0
"#;

/// `kare run` (made by `kare`) reading `kare simulate` (made by `sim`) through two
/// pseudo-terminals joined by a relay in this process: the event lines it printed, without
/// their times and ids (wall-clock), e.g. `node-1 DIP ended: 0.200 s, residual 60.0 % on VA, …`.
fn run_against_simulator(kare: fn(&[&str]) -> Command, sim: fn(&[&str]) -> Command) -> Vec<String> {
    use kare::sim::pty::Pty;
    let dir = tempfile::tempdir().unwrap();
    let node = Pty::open().unwrap();
    let edge = Pty::open().unwrap();
    let scenario = dir.path().join("scenario.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let config = dir.path().join("kare.toml");
    std::fs::write(
        &config,
        format!(
            r#"listen = "127.0.0.1:0"
[[node]]
name = "node-1"
port = "{}"
udin = 230.0
[site]
id = "TEST-1"
customer_id = "C-1"
customer_name = "Test"
tier = "standard"
[routes]
repair = []
[store]
path = "{}"
"#,
            edge.path.display(),
            dir.path().join("kare.db").display()
        ),
    )
    .unwrap();
    let check = output(kare(&["check-config", config.to_str().unwrap()]));
    assert!(check.status.success(), "{}", text(&check.stderr));

    // The relay: what the simulator writes to its port comes out of the edge's.
    let (node_master, node_path, _node_slave) = node.into_parts();
    let edge_master = edge.master.try_clone().unwrap();
    std::thread::spawn(move || {
        let (mut from, mut to) = (node_master, edge_master);
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });

    let mut run = kare(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--duration",
        "14",
    ]);
    let run = run
        .env("KARE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let `kare run` open its port first (qemu takes a moment to start).
    std::thread::sleep(Duration::from_secs(2));
    let sim = output(sim(&[
        "simulate",
        "--port",
        node_path.to_str().unwrap(),
        "--scenario",
        scenario.to_str().unwrap(),
        "--speed",
        "1",
    ]));
    assert!(sim.status.success(), "simulate: {}", text(&sim.stderr));
    let out = run.wait_with_output().unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "run: {stdout}\n{}", text(&out.stderr));
    drop(edge);
    stdout
        .lines()
        .filter(|l| l.contains(" ended: ") || l.contains(" started on "))
        .map(|l| {
            // "<time>  #<id> <source> <KIND> …": from the source on.
            let rest = l.split_once('#').map_or(l, |(_, r)| r);
            rest.split_once(' ')
                .map_or(rest, |(_, r)| r)
                .trim()
                .to_string()
        })
        .collect()
}

#[test]
fn run_reads_the_simulated_node_and_logs_the_same_events() {
    let pi_events = std::thread::spawn(|| run_against_simulator(pi, pi));
    let host_events = run_against_simulator(host, host);
    let pi_events = pi_events.join().unwrap();
    assert!(
        host_events
            .iter()
            .any(|l| l.contains("DIP") && l.contains("ended"))
            && host_events.iter().any(|l| l.contains("SWELL"))
            && host_events.iter().any(|l| l.contains("INTERRUPTION")),
        "the scenario's events: {host_events:#?}"
    );
    assert_eq!(pi_events, host_events);
}
