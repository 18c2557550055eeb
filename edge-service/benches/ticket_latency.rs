//! From the first sub-threshold half-cycle frame on the serial line to the repair ticket's webhook
//! arriving at a receiver on loopback: the whole path (pqlink over a pseudo-terminal, detector,
//! rules, SQLite commit with `synchronous = FULL`, outbox, signed HTTP POST).
//!
//! `cargo bench -p kare --bench ticket_latency` (a plain binary: prints p50 / p99 / max).
//!
//! Each round sends 30 normal half cycles, then half cycles at 0 V (an interruption) until the
//! ticket's "supply lost" delivery has arrived, then normal ones until "restored" has arrived.
//! After the first round the supply is flapping, so each loss reopens the same ticket (a new
//! revision): every round is one stored and delivered change.

#[path = "support/frames.rs"]
mod frames;

use axum::body::Bytes;
use frames::{half, hello, percentile};
use kare::actions::site::Site;
use kare::pipeline::service::{Service, ServiceConfig};
use kare::sim::pty::Pty;
use kare::sources::pqlink::PqlinkSourceConfig;
use kare_firmware::detector::Thresholds;
use std::io::Write;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

const ROUNDS: usize = 100;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (arrived_tx, arrived_rx) = std_mpsc::channel::<(String, Instant)>();
    let url = rt.block_on(async move {
        let app = axum::Router::new().route(
            "/desk",
            axum::routing::post(move |body: Bytes| {
                let tx = arrived_tx.clone();
                async move {
                    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    if v["kind"] == "repair" {
                        let state = v["state"].as_str().unwrap_or("").to_string();
                        let _ = tx.send((state, Instant::now()));
                    }
                    "ok"
                }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/desk", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await });
        url
    });
    let pty = Pty::open().unwrap();
    let mut delivery = kare::actions::delivery::DeliveryConfig::default();
    delivery
        .endpoint
        .push(kare::actions::delivery::EndpointConfig::Webhook(
            kare::actions::delivery::config::WebhookConfig {
                name: "desk".into(),
                url,
                secret: "benchmark-secret-0123".into(),
                secret_file: None,
                timeout_s: 5.0,
                headers: Default::default(),
            },
        ));
    let mut routes = kare::actions::record::Routes::default();
    routes.by_kind.insert(
        "repair".into(),
        vec![("desk".into(), kare::store::Channel::Webhook)],
    );
    let _guard = rt.enter();
    let store_cfg = kare::store::StoreConfig::at(dir.path().join("kare.db"));
    let store = kare::store::StoreHandle::open(&store_cfg).unwrap();
    let service = Service::start(ServiceConfig {
        nodes: vec![PqlinkSourceConfig {
            name: "bench".into(),
            port: pty.path.to_string_lossy().into_owned(),
            baud: 115_200,
            thresholds: Thresholds::typical(230.0),
            silence: Duration::from_secs(60),
        }],
        store: Some(store),
        delivery: Some(delivery),
        routes,
        ..ServiceConfig::new(Site::demo())
    });

    let mut master = pty.master.try_clone().unwrap();
    master.write_all(&hello()).unwrap();
    let mut seq = 0u32;
    let mut lat = Vec::new();
    let wait_for = |state: &str| loop {
        let (s, at) = arrived_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the ticket arrives within 10 s");
        if s == state {
            return at;
        }
    };
    for _ in 0..ROUNDS {
        for _ in 0..30 {
            master.write_all(&half(seq, [230.0; 3])).unwrap();
            seq += 1;
        }
        master.write_all(&half(seq, [0.0; 3])).unwrap();
        let written = Instant::now();
        seq += 1;
        let arrived = wait_for("open");
        lat.push(arrived - written);
        for _ in 0..5 {
            master.write_all(&half(seq, [0.0; 3])).unwrap();
            seq += 1;
        }
        for _ in 0..4 {
            master.write_all(&half(seq, [230.0; 3])).unwrap();
            seq += 1;
        }
        wait_for("closed");
    }
    rt.block_on(service.stop());
    lat.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "first sub-threshold frame -> repair ticket webhook received, {} outages:\n  p50 {:.2} ms   p99 {:.2} ms   max {:.2} ms",
        lat.len(),
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99)),
        ms(*lat.last().unwrap())
    );
}
