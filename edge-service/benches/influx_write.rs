//! InfluxDB sink throughput against a real InfluxDB 1.x on loopback:
//! 1. live: points per second through the buffered path (channel → batches → `/write`), gzip
//!    on and off;
//! 2. store and forward: 200 000 points written while the server is down (rate into the
//!    SQLite backlog, its size), then the drain rate once the server is up.
//!
//! `cargo bench -p kare --bench influx_write` (starts its own `influxd`; prints figures).

#[path = "../tests/influx_support/mod.rs"]
mod influx_support;

use chrono::{Duration as CDuration, TimeZone, Utc};
use influx_support::*;
use kare::sinks::influx::{Class, Point};
use std::time::{Duration, Instant};

/// A 1-second `urms` aggregate as the service writes it (one of three phases): volts to 1 mV,
/// % of Udin to 0.001 %, nine fields.
fn point(i: u64) -> Point {
    let t0 = Utc.timestamp_opt(Utc::now().timestamp() - 7200, 0).unwrap();
    let phase = ["a", "b", "c"][(i % 3) as usize];
    let v = 230.0 + (i % 97) as f64 * 0.013;
    let r = |x: f64| kare::pipeline::events::round(x, 3);
    let pct = |x: f64| r(x / 230.0 * 100.0);
    Point::new(
        "urms",
        Class::Readings,
        t0 + CDuration::milliseconds((i / 3) as i64),
    )
    .tag("source", "node-1")
    .tag("phase", phase)
    .field("min", r(v - 0.4))
    .field("mean", r(v))
    .field("max", r(v + 0.3))
    .field("count", 100i64)
    .field("unlocked", 0i64)
    .field("flagged", false)
    .field("min_pct", pct(v - 0.4))
    .field("mean_pct", pct(v))
    .field("max_pct", pct(v + 0.3))
}

/// Sends `n` points starting at `from`, waiting (not dropping) when the channel is full.
async fn feed(sink: &Sink, from: u64, n: u64) {
    sink.send_patiently((from..from + n).map(point)).await;
}

async fn live(gzip: bool, n: u64) {
    let server = Server::influx1();
    let url = server.url();
    create_db(&url, "bench").await;
    let mut cfg = v1_config(&url, "bench", "SITE-B", "CUST-B", "critical");
    cfg.gzip = gzip;
    cfg.flush_interval_s = 1.0;
    let sink = Sink::start(cfg);
    let t = Instant::now();
    feed(&sink, 0, n).await;
    sink.wait_all_written(Duration::from_secs(600)).await;
    let dt = t.elapsed().as_secs_f64();
    let st = sink.stop().await;
    let dropped = st.dropped_channel_full;
    println!(
        "live, gzip {:>3}: {n} points in {dt:.2} s = {:.0} points/s ({} requests; the producer found the channel full {dropped} times and waited)",
        if gzip { "on" } else { "off" },
        n as f64 / dt,
        st.written_batches,
    );
}

async fn store_and_forward(n: u64) {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut cfg = v1_config(&url, "bench", "SITE-B", "CUST-B", "critical");
    cfg.create_database = true;
    cfg.retry_max_s = 0.5;
    cfg.flush_interval_s = 1.0;
    let sink = Sink::start(cfg);
    let t = Instant::now();
    feed(&sink, 0, n).await;
    sink.wait("everything in the backlog", Duration::from_secs(600), |s| {
        s.received_points == n && s.memory_points == 0
    })
    .await;
    let into = t.elapsed().as_secs_f64();
    let st = sink.stats();
    println!(
        "backlog: {n} points stored in {into:.2} s = {:.0} points/s; {} batches, {:.1} MB stored ({:.1} bytes/point), {} evicted",
        n as f64 / into,
        st.backlog_batches,
        st.backlog_bytes as f64 / 1e6,
        st.backlog_bytes as f64 / n as f64,
        st.evicted_points
    );
    let _server = Server::influx1_on(port);
    let up = Instant::now();
    // The writer notices at its next retry (up to `retry_max_s` later): time the drain from
    // its first accepted request.
    sink.wait("the first drained batch", Duration::from_secs(60), |s| {
        s.written_batches > 0
    })
    .await;
    let noticed = up.elapsed().as_secs_f64();
    let first = sink.stats().drained_points;
    let t = Instant::now();
    sink.wait_all_written(Duration::from_secs(600)).await;
    let dt = t.elapsed().as_secs_f64();
    let st = sink.stop().await;
    println!(
        "drain: reconnected {noticed:.2} s after the server came up; {} points in {dt:.2} s after the first batch = {:.0} points/s ({} requests)",
        st.drained_points,
        (st.drained_points - first) as f64 / dt,
        st.written_batches
    );
}

/// The sink's own CPU per point: line-protocol encoding with the site tags, and gzip of the
/// result (what the writer does before the network).
fn encode_only(n: u64) {
    let tags = vec![
        ("customer".to_string(), "CUST-B".to_string()),
        ("site".to_string(), "SITE-B".to_string()),
        ("tier".to_string(), "critical".to_string()),
    ];
    let pts: Vec<Point> = (0..n).map(point).collect();
    let t = Instant::now();
    let mut body = String::with_capacity(200 * n as usize);
    for p in &pts {
        kare::sinks::influx::point::encode_line(&mut body, p, &tags).expect("encodes");
    }
    let enc = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let gz = kare::sinks::influx::backlog::compress(body.as_bytes()).expect("gzip");
    let z = t.elapsed().as_secs_f64();
    println!(
        "encode: {n} points in {enc:.3} s = {:.0} points/s ({:.0} bytes/point); gzip {:.0} points/s, {:.1}x smaller",
        n as f64 / enc,
        body.len() as f64 / n as f64,
        n as f64 / z,
        body.len() as f64 / gz.len() as f64
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a plain `cargo test --benches` run passes nothing: keep
    // that quick (it only proves the benchmark builds and runs).
    let quick = !std::env::args().any(|a| a == "--bench");
    let (n_live, n_backlog) = if quick {
        (20_000, 20_000)
    } else {
        (500_000, 200_000)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    encode_only(n_live);
    rt.block_on(async {
        live(true, n_live).await;
        live(false, n_live).await;
        store_and_forward(n_backlog).await;
    });
}
