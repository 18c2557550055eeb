//! `kare demo --speed F` tells the truth: the same scenario at real time and ten times faster
//! gives the same tickets (counts, failures, durations), with the simulated meters as witnesses.

mod demo_support;

use demo_support::{console_lines, http_get, read_until, Demo};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A flapping outage (three 1-s interruptions, 6 s apart: inside the 10-s flap window, and
/// apart by more than the meters' poll periods, 2 s and 5 s, so they see each restoration),
/// then, past the flap window, an outage of 16 s (past the demo site's 15-s generator limit),
/// and 8 s of supply for the meters to poll it back.
const SCENARIO: &str = r#"
node_id = 1
nominal_hz = 50
udin = 230.0
channels = ["VA", "VB", "VC"]
duration_s = 51.0

[background]
noise_pct = 0.3

[[event]]
at_s = 1.0
duration_s = 1.0
kind = "interruption"

[[event]]
at_s = 8.0
duration_s = 1.0
kind = "interruption"

[[event]]
at_s = 15.0
duration_s = 1.0
kind = "interruption"

[[event]]
at_s = 27.0
duration_s = 16.0
kind = "interruption"
"#;

const CONFIG: &str = "[rules]\nflap_window_s = 10.0\n";

/// What a ticket says, as compared between runs.
#[derive(Debug)]
struct Ticket {
    kind: String,
    state: String,
    failures: Option<u64>,
    duration_s: Option<f64>,
    title: String,
}

/// Runs the scenario at `speed` until the node has gone silent after its last frame (every
/// half cycle judged), and returns the tickets, oldest first, with the console.
fn run(speed: &str) -> (Vec<Ticket>, String) {
    let data = tempfile::tempdir().unwrap();
    let scenario = data.path().join("scenario.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let config = data.path().join("kare.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_kare"))
        .args(["demo", "--speed", speed, "--listen", "127.0.0.1:0"])
        .arg("--scenario")
        .arg(&scenario)
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(data.path())
        .env("KARE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut demo = Demo(child);
    let stdout = demo.0.stdout.take().unwrap();
    let lines = console_lines(stdout);
    let mut seen = Vec::new();
    read_until(&lines, &mut seen, Duration::from_secs(30), |l| {
        l.contains("/api/v1/status")
    });
    let addr = seen
        .last()
        .and_then(|l| l.split("http://").nth(1))
        .and_then(|r| r.split('/').next())
        .unwrap()
        .to_string();
    // The scenario ends at 51 s; the node then falls silent (2 s of wall time): by then every
    // frame has been judged, and the meters have polled the supply back.
    read_until(&lines, &mut seen, Duration::from_secs(150), |l| {
        l.contains("demo-node") && l.contains("SENSOR LOST")
    });
    let (_, body) = http_get(&addr, "/api/v1/tickets");
    let v: Value = serde_json::from_str(&body).unwrap();
    let tickets = v["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| Ticket {
            kind: t["kind"].as_str().unwrap_or("?").into(),
            state: t["state"].as_str().unwrap_or("?").into(),
            failures: t["detail"]["failures"].as_u64(),
            duration_s: t["duration_s"].as_f64(),
            title: t["title"].as_str().unwrap_or("?").into(),
        })
        .collect();
    (tickets, seen.join("\n"))
}

fn of<'a>(tickets: &'a [Ticket], kind: &str) -> Vec<&'a Ticket> {
    tickets.iter().filter(|t| t.kind == kind).collect()
}

#[test]
fn the_demo_at_speed_10_gives_the_tickets_of_real_time() {
    let (real, real_console) = run("1");
    let (fast, fast_console) = run("10");
    for (speed, tickets) in [("1", &real), ("10", &fast)] {
        for t in tickets.iter() {
            eprintln!(
                "speed {speed:>2}: {:<10} {:<9} failures {:?} duration {:?} s",
                t.kind, t.state, t.failures, t.duration_s
            );
        }
    }
    let context = format!(
        "speed 1: {real:#?}\nspeed 10: {fast:#?}\n--- speed 1 console\n{real_console}\n--- speed 10 console\n{fast_console}"
    );

    // Real time is right on its own: two repair tickets (the flapping outage, failed three
    // times, from its first loss to its last restoration; the 16-s outage), a generator request
    // 15 s into the second, cancelled 1 s later when the supply returned.
    let repair = of(&real, "repair");
    assert_eq!(repair.len(), 2, "{context}");
    assert!(repair.iter().all(|t| t.state == "closed"), "{context}");
    assert_eq!(repair[0].failures, Some(3), "{context}");
    assert_eq!(repair[1].failures, Some(1), "{context}");
    let near = |d: Option<f64>, want: f64| d.is_some_and(|d| (d - want).abs() < 0.1);
    assert!(near(repair[0].duration_s, 15.0), "{context}");
    assert!(near(repair[1].duration_s, 16.0), "{context}");
    let gen = of(&real, "generator");
    assert_eq!(gen.len(), 1, "{context}");
    assert_eq!(gen[0].state, "cancelled", "{context}");
    // The request is raised on the rules' tick (every 100 ms of data) after the 15 s, so it
    // lasts the last second less up to one tick and the pipeline's latency.
    assert!(
        gen[0]
            .duration_s
            .is_some_and(|d| (0.85..=1.02).contains(&d)),
        "{context}"
    );

    // Ten times faster: the same tickets, the same figures.
    assert_eq!(real.len(), fast.len(), "{context}");
    for kind in [
        "repair",
        "generator",
        "pq_notice",
        "maintenance",
        "engineering",
    ] {
        let (a, b) = (of(&real, kind), of(&fast, kind));
        assert_eq!(a.len(), b.len(), "{kind}: {context}");
        for (a, b) in a.iter().zip(&b) {
            assert_eq!(a.state, b.state, "{kind}: {context}");
            assert_eq!(a.failures, b.failures, "{kind}: {context}");
            match (a.duration_s, b.duration_s) {
                (Some(x), Some(y)) => assert!((x - y).abs() <= 0.1, "{kind}: {context}"),
                (x, y) => assert_eq!(x, y, "{kind}: {context}"),
            }
            if kind == "repair" {
                assert_eq!(a.title, b.title, "{context}");
            }
        }
    }
}
