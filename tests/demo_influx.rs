//! `kare demo --influx URL` against a real InfluxDB 1.x on loopback: the running service feeds
//! the sink, and what the demo saw (events, tickets, meters, health, the half-cycle stream as
//! 1-second aggregates) is what the server holds, with the site's tags.

mod demo_support;
#[path = "../edge-service/tests/influx_support/mod.rs"]
mod influx_support;

use demo_support::{console_lines, read_until, Demo};
use influx_support::*;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;

fn rows(v: &Value) -> Vec<Vec<Value>> {
    series(v)
        .iter()
        .flat_map(|s| s["values"].as_array().cloned().unwrap_or_default())
        .map(|r| r.as_array().cloned().unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_writes_what_it_sees_to_a_real_influxdb() {
    let server = Server::influx1();
    let url = server.url();
    let data = tempfile::tempdir().unwrap();
    // 20x: the scenario's first minute (dip, swell, short interruption, 25 s outage with a
    // generator request) in about 3 s. The database does not exist yet: the sink creates it.
    let child = Command::new(env!("CARGO_BIN_EXE_kare"))
        .args(["demo", "--speed", "20", "--duration", "60", "--listen"])
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(data.path())
        .arg("--influx")
        .arg(&url)
        .env("KARE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut demo = Demo(child);
    let stdout = demo.0.stdout.take().unwrap();
    let lines = console_lines(stdout);
    let mut seen = Vec::new();
    read_until(&lines, &mut seen, Duration::from_secs(60), |l| {
        l.contains("TICKET generator") && l.contains("CANCELLED")
    });
    // A clean stop (Ctrl-C): the sink is stopped last and sends what it holds.
    unsafe {
        libc::kill(demo.0.id() as i32, libc::SIGINT);
    }
    read_until(&lines, &mut seen, Duration::from_secs(30), |l| {
        l.contains("kare: InfluxDB:")
    });
    let console = seen.join("\n");
    assert!(
        console.contains("kare demo: writing to InfluxDB at"),
        "{console}"
    );
    let last = seen.last().unwrap();
    assert!(
        last.contains("points written, 0 kept in the backlog"),
        "{console}"
    );
    let status = demo.0.wait().unwrap();
    assert!(status.success(), "{status:?}\n{console}");

    // Events: every event the demo printed as ended is one `event` point, with its kind.
    let ended = |kind: &str| {
        seen.iter()
            .filter(|l| l.contains(kind) && l.contains(" ended"))
            .count()
    };
    let v = influxql(
        &url,
        "kare",
        "SELECT count(duration_s) FROM event WHERE source = 'demo-node' GROUP BY kind",
    )
    .await;
    let by_kind: Vec<(String, f64)> = series(&v)
        .iter()
        .map(|s| {
            (
                s["tags"]["kind"].as_str().unwrap().to_string(),
                s["values"][0][1].as_f64().unwrap(),
            )
        })
        .collect();
    for (kind, line_kind) in [
        ("dip", "DIP"),
        ("swell", "SWELL"),
        ("interruption", "INTERRUPTION"),
    ] {
        let want = seen
            .iter()
            .filter(|l| l.contains("demo-node") && l.contains(line_kind) && l.contains("ended:"))
            .count() as f64;
        let got = by_kind
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, n)| *n)
            .unwrap_or(0.0);
        assert!(want > 0.0, "the demo printed no {kind}:\n{console}");
        assert_eq!(got, want, "{kind}: {by_kind:?}\n{console}");
    }
    assert!(ended("INTERRUPTION") >= 2, "{console}");
    // The 25 s outage, with its characteristics and the site's tags.
    let v = influxql(
        &url,
        "kare",
        "SELECT duration_s, extreme_pct, site, customer, tier FROM event \
         WHERE kind = 'interruption' AND duration_s > 20",
    )
    .await;
    let r = rows(&v);
    assert_eq!(r.len(), 1, "{v}");
    assert!((r[0][1].as_f64().unwrap() - 25.0).abs() < 0.1, "{v}");
    assert_eq!(r[0][3], "SITE-DEMO-01");
    assert_eq!(r[0][4], "CUST-0001");
    assert_eq!(r[0][5], "critical");
    // Its RMS profile: half cycles around it, per phase.
    let v = influxql(
        &url,
        "kare",
        "SELECT count(pct) FROM event_profile GROUP BY phase",
    )
    .await;
    assert_eq!(series(&v).len(), 3, "{v}");

    // Tickets: the repair ticket closed, the generator request cancelled; one point each, the
    // last revision's state.
    let v = influxql(
        &url,
        "kare",
        "SELECT last(state), last(revision) FROM ticket GROUP BY kind",
    )
    .await;
    let state = |kind: &str| {
        series(&v)
            .iter()
            .find(|s| s["tags"]["kind"] == kind)
            .map(|s| s["values"][0][1].as_str().unwrap_or("").to_string())
    };
    assert_eq!(state("repair").as_deref(), Some("closed"), "{v}");
    assert_eq!(state("generator").as_deref(), Some("cancelled"), "{v}");
    let v = influxql(
        &url,
        "kare",
        "SELECT count(revision) FROM ticket WHERE kind = 'repair'",
    )
    .await;
    assert_eq!(scalar(&v), Some(1.0), "one outage, one repair ticket: {v}");

    // The half-cycle stream as 1-second aggregates: three phases, the outage's seconds flagged.
    let v = influxql(
        &url,
        "kare",
        "SELECT max(count), min(min_pct), count(mean) FROM urms WHERE source = 'demo-node' GROUP BY phase",
    )
    .await;
    assert_eq!(series(&v).len(), 3, "{v}");
    for s in series(&v) {
        let row = &s["values"][0];
        // 100 half cycles in a second at 50 Hz; 101 where a second holds the start of one more
        // (a window belongs to the second it starts in; the scenario steps the frequency).
        let most = row[1].as_f64().unwrap();
        assert!((100.0..=102.0).contains(&most), "{s}");
        assert!(
            row[2].as_f64().unwrap() < 5.0,
            "the outage is in the minima: {s}"
        );
        assert!(
            row[3].as_f64().unwrap() >= 40.0,
            "the scenario's seconds: {s}"
        );
    }
    let v = influxql(
        &url,
        "kare",
        "SELECT count(mean) FROM urms WHERE phase = 'a' AND flagged = true",
    )
    .await;
    assert!(scalar(&v).unwrap_or(0.0) >= 25.0, "{v}");
    let v = influxql(&url, "kare", "SELECT mean(mean) FROM frequency").await;
    assert!((scalar(&v).unwrap() - 50.0).abs() < 0.5, "{v}");

    // The simulated meters, polled by the real pollers.
    let v = influxql(
        &url,
        "kare",
        "SELECT count(voltage_a) FROM meter GROUP BY source",
    )
    .await;
    let sources: Vec<String> = series(&v)
        .iter()
        .map(|s| s["tags"]["source"].as_str().unwrap().to_string())
        .collect();
    assert!(
        sources.iter().any(|s| s == "demo-modbus") && sources.iter().any(|s| s == "demo-dlt645"),
        "{v}"
    );

    // The appliance's health, as the fleet board reads it.
    let v = influxql(
        &url,
        "kare",
        "SELECT last(supply_ok), last(sources), last(uptime_s), last(version) FROM kare_health",
    )
    .await;
    let r = rows(&v);
    assert_eq!(r.len(), 1, "{v}");
    assert_eq!(r[0][1].as_f64(), Some(1.0), "supply back at the end: {v}");
    assert_eq!(r[0][2].as_f64(), Some(3.0), "node and two meters: {v}");
    assert!(r[0][3].as_f64().unwrap() > 1.0, "{v}");
    assert_eq!(r[0][4], env!("CARGO_PKG_VERSION"));
}
