//! A task that dies takes the process with it (issue 11): the built `kare demo`, made to panic
//! by the test-only fault switch (`KARE_FAULT`, honoured in debug builds), exits at once with
//! status 70 and says why on stderr, so that systemd restarts it; no zombie whose API answers
//! while nothing is watched. And values that used to panic the binary are refused with exit 2.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `kare` with `args` and `KARE_FAULT=fault`; kills it and fails if it outlives `limit`.
fn kare(args: &[&str], fault: Option<&str>, limit: Duration) -> (Output, Duration) {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kare"));
    cmd.args(args)
        .arg("--data-dir")
        .arg(data.path())
        .env("KARE_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(f) = fault {
        cmd.env("KARE_FAULT", f);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap();
    loop {
        if child.try_wait().unwrap().is_some() {
            return (child.wait_with_output().unwrap(), started.elapsed());
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "kare still running after {limit:?}: a dead task left a zombie\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

const DEMO: &[&str] = &[
    "demo",
    "--speed",
    "10",
    "--duration",
    "60",
    "--listen",
    "127.0.0.1:0",
];

#[test]
fn a_panic_in_the_rules_task_ends_the_process_with_status_70() {
    let (out, took) = kare(DEMO, Some("panic-rules"), Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(70), "{out:?}\n{stderr}");
    assert!(
        stderr.contains("kare: panic in thread") && stderr.contains("KARE_FAULT=panic-rules"),
        "{stderr}"
    );
    assert!(stderr.contains("stopping with status 70"), "{stderr}");
    // At once: well before the 60 s it was asked to run.
    assert!(took < Duration::from_secs(20), "{took:?}");
}

#[test]
fn a_panic_in_a_plain_thread_ends_the_process_with_status_70() {
    let (out, _) = kare(DEMO, Some("panic-sim"), Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(70), "{out:?}\n{stderr}");
    assert!(
        stderr.contains("thread 'sensor-sim'") && stderr.contains("KARE_FAULT=panic-sim"),
        "{stderr}"
    );
}

#[test]
fn a_duration_or_speed_beyond_range_is_refused_not_a_panic() {
    for (flag, value, says) in [
        (
            "--duration",
            "1e20",
            "--duration must be more than 0 and at most",
        ),
        ("--duration", "0", "--duration must be more than 0"),
        ("--speed", "1e9", "--speed must be from 0"),
        ("--speed", "nan", "--speed must be from 0"),
    ] {
        let mut args = vec!["demo", "--listen", "127.0.0.1:0", flag, value];
        if flag == "--speed" {
            args.extend(["--duration", "5"]);
        }
        let (out, _) = kare(&args, None, Duration::from_secs(20));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(says), "{flag} {value}: {stderr}");
    }
}

#[test]
fn a_demand_window_that_panicked_the_rules_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kare.toml");
    std::fs::write(&config, "[rules]\ndemand_window_h = 3e9\n").unwrap();
    let config = config.to_str().unwrap();
    let (out, _) = kare(
        &[
            "demo",
            "--duration",
            "5",
            "--listen",
            "127.0.0.1:0",
            "--config",
            config,
        ],
        None,
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("line 2: `rules.demand_window_h`: must be from 1 to 8760 hours"),
        "{stderr}"
    );
}
