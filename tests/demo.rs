//! `kare demo` as a user runs it: the built binary, its console, and its JSON API.

mod demo_support;

use demo_support::{http_get, Demo};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn demo_shows_the_scenario_live_and_its_api_answers() {
    // 20x: the scenario's first minute (dip, swell, short interruption, 25 s outage) in 3 s.
    let data = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_kare"))
        .args([
            "demo",
            "--speed",
            "20",
            "--duration",
            "30",
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data.path())
        .env("KARE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut demo = Demo(child);
    let mut lines = BufReader::new(demo.0.stdout.take().unwrap()).lines();
    let mut addr = None;
    let mut seen = Vec::new();
    // Read the console until the long outage has ended (the end of the line tells its length).
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("http://").nth(1) {
            addr = Some(rest.split('/').next().unwrap().to_string());
        }
        let long_outage_over = line.contains("INTERRUPTION") && line.contains("ended: 2");
        seen.push(line);
        if long_outage_over {
            break;
        }
    }
    // Tickets are stored (fsync) before they are announced: read on until the generator request
    // has been cancelled by the restoration.
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.contains("TICKET generator") && line.contains("CANCELLED");
        seen.push(line);
        if done {
            break;
        }
    }
    let console = seen.join("\n");
    assert!(
        console.contains("DIP") && console.contains("residual 60.0 % on VA"),
        "{console}"
    );
    assert!(
        console.contains("SWELL") && console.contains("max 115"),
        "{console}"
    );
    // The 1.5 s interruption, then (the line that ended the loop) the 25 s outage.
    assert!(console.contains("INTERRUPTION ended: 1."), "{console}");
    let addr = addr.expect("the demo prints its API address");

    let (head, body) = http_get(&addr, "/api/v1/events");
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    let events = v["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    for k in ["dip", "swell", "interruption"] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
    // The contract's fields, plus id and source.
    for e in events {
        for f in [
            "id",
            "source",
            "kind",
            "start",
            "offset_s",
            "duration_s",
            "extreme_pct",
            "worst_channel",
            "itic",
            "semi_f47",
        ] {
            assert!(e.get(f).is_some(), "{f} missing in {e}");
        }
        // The node, and the demo's two simulated meters (their coarse view of the outage).
        let src = e["source"].as_str().unwrap();
        assert!(
            src == "demo-node" || src.starts_with("demo-modbus") || src.starts_with("demo-dlt645"),
            "{src}"
        );
    }
    let outage = events
        .iter()
        .find(|e| e["kind"] == "interruption" && e["duration_s"].as_f64().unwrap_or(0.0) > 20.0)
        .expect("the 25 s outage");
    assert!(
        (outage["duration_s"].as_f64().unwrap() - 25.0).abs() < 0.1,
        "{outage}"
    );

    // One event in detail, with its RMS profile: the first dip (the list is newest first), the
    // short one the node captured a waveform of.
    let dip_id = events.iter().rev().find(|e| e["kind"] == "dip").unwrap()["id"]
        .as_u64()
        .unwrap();
    let (_, body) = http_get(&addr, &format!("/api/v1/events/{dip_id}"));
    let dip: Value = serde_json::from_str(&body).unwrap();
    assert!(
        dip["rms_profile"]["records"].as_array().unwrap().len() > 60,
        "{dip}"
    );
    // The sensor node's waveform capture of the dip arrived whole in spare link time.
    let (_, body) = http_get(&addr, &format!("/api/v1/events/{dip_id}/waveform"));
    let w: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(w["channels"], serde_json::json!(["VA", "VB", "VC"]), "{w}");
    assert_eq!(w["sample_rate_hz"], 6400);
    let va = w["volts"][0].as_array().unwrap();
    assert_eq!(va.len(), 1920, "100 ms before to 200 ms after the trigger");
    let peak = va
        .iter()
        .map(|v| v.as_f64().unwrap().abs())
        .fold(0.0, f64::max);
    assert!(
        (peak - 230.0 * 2f64.sqrt() * 1.05).abs() < 20.0,
        "peak {peak} V"
    );
    let (head, _) = http_get(&addr, "/api/v1/events/99999");
    assert!(head.contains(" 404 "), "{head}");

    // The repair desk's view: exactly one repair ticket for the outages (the short interruption
    // and the 25 s outage ten seconds later are one flapping outage), closed with its duration;
    // a generator request once the supply had been gone past the site's limit (15 s in the demo),
    // cancelled when it returned; the dip and swell went to the account manager's daily notice.
    let (_, body) = http_get(&addr, "/api/v1/tickets");
    let t: Value = serde_json::from_str(&body).unwrap();
    let tickets = t["tickets"].as_array().unwrap();
    let of = |k: &str| {
        tickets
            .iter()
            .filter(|x| x["kind"] == k)
            .collect::<Vec<_>>()
    };
    let repair = of("repair");
    assert_eq!(repair.len(), 1, "{tickets:#?}");
    assert_eq!(repair[0]["state"], "closed");
    assert_eq!(repair[0]["priority"], "P1");
    assert_eq!(repair[0]["detail"]["failures"], 2);
    let gen = of("generator");
    assert_eq!(gen.len(), 1, "{tickets:#?}");
    assert_eq!(gen[0]["state"], "cancelled");
    // Sized from the simulated meters' recent peak demand, capped at the 800 kVA connection.
    let kva = gen[0]["detail"]["size_kva"].as_f64().unwrap();
    assert!(kva > 0.0 && kva <= 800.0, "{kva}");
    assert!(gen[0]["detail"]["sizing"]
        .as_str()
        .unwrap()
        .contains("peak demand"));
    assert_eq!(of("pq_notice").len(), 1);
    assert!(console.contains("TICKET repair      OPENED"), "{console}");
    // The demo's own repair desk received them over the signed webhook.
    assert!(
        console.contains("DESK   received SITE-DEMO-01-outage-"),
        "{console}"
    );
    assert!(!console.contains("BAD SIGNATURE"), "{console}");

    // What was said is on disk: the events with their RMS profiles and the dip's waveform, the
    // tickets, and every delivery.
    let store =
        kare::store::Store::open(&kare::store::StoreConfig::at(data.path().join("kare.db")))
            .unwrap();
    let count = |sql: &str| -> i64 { store.connection().query_row(sql, [], |r| r.get(0)).unwrap() };
    assert!(count("SELECT COUNT(*) FROM events WHERE kind = 'interruption'") >= 2);
    assert!(count("SELECT COUNT(*) FROM events WHERE profile_json IS NOT NULL") >= 2);
    assert!(count("SELECT COUNT(*) FROM events WHERE waveform IS NOT NULL") >= 1);
    assert_eq!(
        count("SELECT COUNT(*) FROM tickets WHERE kind = 'repair'"),
        1
    );
    // The repair ticket points at the interruption that opened it, and so does what the desk
    // received about its opening.
    let sent_kind: String = store
        .connection()
        .query_row(
            "SELECT json_extract(o.payload_json, '$.event.kind') FROM outbox o \
             JOIN tickets t ON t.id = o.ticket_id WHERE t.kind = 'repair' AND o.revision = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(sent_kind, "interruption");
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM tickets t JOIN events e ON e.id = t.event_id \
             WHERE t.kind = 'repair' AND e.kind = 'interruption'"
        ),
        1
    );
    assert!(count("SELECT COUNT(*) FROM outbox") >= 6);

    let (_, body) = http_get(&addr, "/api/v1/status");
    let st: Value = serde_json::from_str(&body).unwrap();
    let node = &st["sources"]["demo-node"];
    assert_eq!(node["connected"], true);
    assert_eq!(node["channels"], serde_json::json!(["VA", "VB", "VC"]));
    assert_eq!(node["stats"]["crc_errors"], 0);
    assert!(node["stats"]["half_cycles"].as_u64().unwrap() > 1000);
    // The simulated meters, with their latest values and units.
    let sdm = &st["meters"]["demo-modbus"]["devices"]["sdm630"];
    assert_eq!(sdm["online"], true, "{st}");
    assert_eq!(sdm["values"]["voltage_a"]["unit"], "V", "{st}");
    assert!(
        st["meters"]["demo-dlt645"]["stats"]["replies"]
            .as_u64()
            .unwrap()
            > 0
    );

    // The live stream: server-sent events of readings and of meter values (polled every 2 s).
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /api/v1/stream HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !(String::from_utf8_lossy(&got).contains("event: reading")
        && String::from_utf8_lossy(&got).contains("event: meter"))
    {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "stream closed");
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("text/event-stream"), "{text}");
    assert!(text.contains("\"volts\":["), "{text}");
    assert!(
        text.contains("\"quantity\":\"") && text.contains("\"unit\":"),
        "{text}"
    );
}

#[test]
fn demo_runs_the_store_retention() {
    // A closed event from an earlier run, older than the store keeps closed records: the
    // service prunes at start (and hourly), not only in tests.
    let data = tempfile::tempdir().unwrap();
    let db = data.path().join("kare.db");
    {
        let mut store = kare::store::Store::open(&kare::store::StoreConfig::at(&db)).unwrap();
        let start = chrono::Utc::now() - chrono::Duration::days(3);
        store
            .upsert_event(&kare::store::StoredEvent {
                source: "old-node".into(),
                source_key: "dip@old".into(),
                site_id: Some("SITE-DEMO-01".into()),
                kind: "dip".into(),
                start,
                end: Some(start + chrono::Duration::milliseconds(80)),
                duration_s: Some(0.08),
                extreme_pct: Some(70.0),
                worst_channel: Some("VA".into()),
                open: false,
                json: serde_json::json!({"kind": "dip"}),
                profile_json: None,
                waveform: None,
            })
            .unwrap();
    }
    let config = data.path().join("kare.toml");
    // Age counts from a record's last write (just now), and 0 MB is refused (it would prune the
    // whole record): keep closed records 0.1 s, and let the old event be older than that.
    std::fs::write(&config, "[store]\nretention_days = 0.000001\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let out = Command::new(env!("CARGO_BIN_EXE_kare"))
        .args(["demo", "--duration", "2", "--listen", "127.0.0.1:0"])
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(data.path())
        .env("KARE_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let store = kare::store::Store::open(&kare::store::StoreConfig::at(&db)).unwrap();
    let left: i64 = store
        .connection()
        .query_row(
            "SELECT COUNT(*) FROM events WHERE source = 'old-node'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0, "the old closed event was pruned");
}

#[test]
fn ctrl_c_while_the_demo_is_still_starting_stops_it_cleanly() {
    // The first console line is printed before the store opens and the service starts: a Ctrl-C
    // (or systemd's SIGTERM) from then on must be a clean stop, not the default disposition
    // killing the process mid-start.
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let data = tempfile::tempdir().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_kare"))
            .args(["demo", "--speed", "20", "--listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data.path())
            .env("KARE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut demo = Demo(child);
        let mut lines = BufReader::new(demo.0.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        assert!(first.starts_with("kare demo"), "{first}");
        unsafe {
            libc::kill(demo.0.id() as i32, signal);
        }
        // Drain the console so the demo never blocks on a full pipe while it stops.
        for line in lines.by_ref() {
            if line.is_err() {
                break;
            }
        }
        let status = demo.0.wait().unwrap();
        assert!(
            status.success(),
            "signal {signal} while starting: {status:?}"
        );
    }
}

#[test]
fn a_console_that_goes_away_does_not_stop_the_demo() {
    // `kare demo | head -1`, a closed terminal: the console's lines have nowhere to go, and the
    // service goes on recording (it used to panic on the first line it could not print).
    let data = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_kare"))
        .args(["demo", "--speed", "20", "--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data.path())
        .env("KARE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut demo = Demo(child);
    let mut first = String::new();
    let stdout = demo.0.stdout.take().unwrap();
    BufReader::new(stdout).read_line(&mut first).unwrap(); // and the pipe closes here
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap()
        .to_string();
    // The scenario's events keep coming (each one a console line into the closed pipe): wait
    // for the long outage's end through the API.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut s) = TcpStream::connect(&addr) {
            let _ = write!(
                s,
                "GET /api/v1/events?kind=interruption HTTP/1.0\r\nHost: x\r\n\r\n"
            );
            let mut text = String::new();
            let _ = s.read_to_string(&mut text);
            if text.contains("\"duration_s\":24.") || text.contains("\"duration_s\":25.") {
                break;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the demo stopped recording once its console went away"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(demo.0.try_wait().unwrap().is_none(), "the demo exited");
    unsafe { libc::kill(demo.0.id() as i32, libc::SIGTERM) };
    let status = demo.0.wait().unwrap();
    assert!(status.success(), "stopped with {status}");
}
