//! The appliance killed with `kill -9` again and again while it raises and delivers tickets:
//! every ticket revision it stored reaches the repair desk's webhook, none is lost, and a restart
//! in the middle of an outage keeps its one ticket (closed on restoration).

mod demo_support;

use axum::body::Bytes;
use axum::http::HeaderMap;
use demo_support::desk_config;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Starts a webhook receiver; returns its URL and the idempotency keys it received.
async fn receiver() -> (String, Arc<Mutex<BTreeSet<String>>>) {
    let got = Arc::new(Mutex::new(BTreeSet::new()));
    let g = got.clone();
    let app = axum::Router::new().route(
        "/desk",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let g = g.clone();
            async move {
                let ts = headers["x-kare-timestamp"].to_str().unwrap().to_string();
                let sig = headers["x-kare-signature"].to_str().unwrap().to_string();
                assert!(kare::actions::delivery::webhook::verify(
                    b"kare-test-secret-0123",
                    &ts,
                    &body,
                    &sig
                ));
                let key = headers["idempotency-key"].to_str().unwrap().to_string();
                g.lock().unwrap().insert(key);
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/desk", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, got)
}

fn demo(config: &std::path::Path, data: &std::path::Path, seconds: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_kare"))
        .args([
            "demo",
            "--speed",
            "20",
            "--listen",
            "127.0.0.1:0",
            "--duration",
            seconds,
        ])
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .env("KARE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Reads the console until a ticket line appears (the process is then busy delivering).
fn wait_for_ticket(child: &mut Child) {
    let out = child.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    let mut seen = false;
    for line in lines.by_ref() {
        if line.unwrap().contains("TICKET") {
            seen = true;
            break;
        }
    }
    assert!(seen, "the demo raised a ticket before it was killed");
    // Keep draining so the process never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_loses_no_ticket() {
    let (url, got) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kare.toml");
    std::fs::write(&config, desk_config(&url)).unwrap();
    let data = dir.path().join("data");

    // Kill it at different moments: while raising the first tickets, mid-outage, after.
    for (i, wait_ms) in [0u64, 300, 900, 1500, 2100, 700, 1200, 2600]
        .iter()
        .enumerate()
    {
        let mut child = demo(&config, &data, "30");
        wait_for_ticket(&mut child);
        std::thread::sleep(Duration::from_millis(*wait_ms));
        // SIGKILL: no chance to flush or say goodbye.
        child.kill().unwrap();
        child.wait().unwrap();
        eprintln!("round {i}: killed after {wait_ms} ms");
    }
    // One last run on a steady supply (no new disturbance, so no new ticket but the closing of
    // an outage left open), left alone until every stored revision is delivered, then stopped
    // cleanly with Ctrl-C.
    let quiet = dir.path().join("quiet.toml");
    std::fs::write(
        &quiet,
        "node_id = 1\nnominal_hz = 50\nudin = 230.0\nchannels = [\"VA\", \"VB\", \"VC\"]\n",
    )
    .unwrap();
    let mut last = Command::new(env!("CARGO_BIN_EXE_kare"))
        .args(["demo", "--speed", "5", "--listen", "127.0.0.1:0"])
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .arg("--scenario")
        .arg(&quiet)
        .env("KARE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let db = data.join("kare.db");
    loop {
        let delivered = kare::store::Store::open(&kare::store::StoreConfig::at(db.clone()))
            .ok()
            .and_then(|store| {
                let tickets = store
                    .tickets(
                        chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
                        chrono::Utc::now() + chrono::Duration::days(1),
                    )
                    .ok()?;
                let open_outage = tickets
                    .iter()
                    .any(|t| t.kind == "repair" && format!("{:?}", t.state) == "Open");
                let pending = tickets.iter().any(|t| {
                    store.outbox_for_ticket(t.id).map_or(true, |rows| {
                        rows.iter().any(|r| format!("{:?}", r.state) != "Delivered")
                    })
                });
                Some(!open_outage && !pending)
            })
            .unwrap_or(false);
        if delivered {
            break;
        }
        if let Some(status) = last.try_wait().unwrap() {
            panic!("the last run stopped by itself: {status:?}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the last run did not deliver everything within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    unsafe {
        libc::kill(last.id() as i32, libc::SIGINT);
    }
    let status = last.wait().unwrap();
    assert!(status.success(), "the last run failed: {status:?}");

    // Every ticket revision the store holds was delivered and received.
    let store =
        kare::store::Store::open(&kare::store::StoreConfig::at(data.join("kare.db"))).unwrap();
    let since = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    let tickets = store
        .tickets(since, chrono::Utc::now() + chrono::Duration::days(1))
        .unwrap();
    assert!(tickets.len() >= 3, "tickets were raised: {}", tickets.len());
    let got = got.lock().unwrap().clone();
    let mut missing = Vec::new();
    for t in &tickets {
        for rev in 1..=t.revision {
            let key = format!("{}:{rev}", t.key);
            if !got.contains(&key) {
                missing.push(key);
            }
        }
        for row in store.outbox_for_ticket(t.id).unwrap() {
            assert_ne!(
                format!("{:?}", row.state).to_lowercase(),
                "dead",
                "nothing given up: {row:?}"
            );
        }
    }
    assert!(
        missing.is_empty(),
        "not delivered: {missing:?}\nreceived: {got:?}"
    );
    eprintln!(
        "{} tickets, {} revisions stored; {} distinct deliveries received",
        tickets.len(),
        tickets.iter().map(|t| t.revision).sum::<i64>(),
        got.len()
    );
    // A run killed mid-outage leaves its repair ticket open; the next run carries that ticket
    // on (it is not opened again) and closes it when it finds the supply present. (Intervals of
    // tickets from different runs may overlap: at 20x each run's data clock runs ahead of the
    // next run's.) The last run's wait already required that no repair ticket is left open.
    let carried: Vec<_> = tickets
        .iter()
        .filter(|t| {
            t.kind == "repair"
                && t.body_json["detail"]["note"] == "supply found present after a restart"
        })
        .collect();
    assert!(
        !carried.is_empty(),
        "no outage ticket was carried over a restart: {:#?}",
        tickets
            .iter()
            .filter(|t| t.kind == "repair")
            .map(|t| (&t.key, t.revision, &t.body_json["detail"]))
            .collect::<Vec<_>>()
    );
}
