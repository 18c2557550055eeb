//! Store and forward against real servers:
//! - the server killed with SIGKILL mid-run and started again loses nothing (InfluxDB 1.x over
//!   v1, VictoriaMetrics over v2): a numbered series is written through the buffered path
//!   throughout, then counted and summed on the server;
//! - a backlog bound too small for an outage evicts the oldest readings first and never an
//!   event, and what is left drains once the server appears (and `create_database` makes the
//!   missing database on the way).

mod influx_support;

use chrono::{Duration as CDuration, TimeZone, Utc};
use influx_support::*;
use kare::sinks::influx::{Class, InfluxConfig, Point};
use std::time::Duration;

const N: i64 = 12_000;
const EVERY_EVENT: i64 = 100;

/// Point number `i`: readings, with an event every 100th. Time stamps 1 ms apart, an hour
/// ago (VictoriaMetrics keeps milliseconds).
fn numbered(i: i64) -> Point {
    let t0 = Utc.timestamp_opt(Utc::now().timestamp() - 3600, 0).unwrap();
    let t = t0 + CDuration::milliseconds(i);
    if i % EVERY_EVENT == 0 {
        Point::new("seq_event", Class::Events, t).field("n", i)
    } else {
        Point::new("seq", Class::Readings, t)
            .tag("source", "counter")
            .field("n", i)
    }
}

fn readings_in(range: std::ops::Range<i64>) -> (i64, i64) {
    let r: Vec<i64> = range.filter(|i| i % EVERY_EVENT != 0).collect();
    (r.len() as i64, r.iter().sum())
}

fn events_in(range: std::ops::Range<i64>) -> (i64, i64) {
    let r: Vec<i64> = range.filter(|i| i % EVERY_EVENT == 0).collect();
    (r.len() as i64, r.iter().sum())
}

/// Sends points `from..to` at about 4000 per second.
async fn produce(sink: &Sink, from: i64, to: i64) {
    let mut i = from;
    while i < to {
        let end = (i + 20).min(to);
        sink.send((i..end).map(numbered));
        i = end;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influx_v1_killed_and_restarted_mid_run_loses_nothing() {
    let mut server = Server::influx1();
    let url = server.url();
    create_db(&url, "kare").await;
    let mut cfg = v1_config(&url, "kare", "SITE-K", "CUST-K", "critical");
    cfg.batch_size = 500;
    let sink = Sink::start(cfg);

    produce(&sink, 0, N / 3).await;
    server.kill9();
    // Keep writing while the server is dead: everything goes to the backlog.
    produce(&sink, N / 3, 2 * N / 3).await;
    sink.wait("the writer to notice", Duration::from_secs(10), |s| {
        !s.up && s.backlog_points > 0
    })
    .await;
    let during = sink.stats();
    server.restart();
    produce(&sink, 2 * N / 3, N).await;
    sink.wait_all_written(Duration::from_secs(60)).await;
    let st = sink.stop().await;

    assert_eq!(st.received_points, N as u64);
    assert_eq!(
        st.dropped_channel_full + st.evicted_points + st.rejected_points,
        0,
        "{st:#?}"
    );
    assert!(st.drained_points > 0, "the backlog was drained: {st:#?}");
    assert!(during.failed_requests > 0);

    let (rn, rsum) = readings_in(0..N);
    let (en, esum) = events_in(0..N);
    let v = influxql(&url, "kare", "SELECT count(n), sum(n) FROM seq").await;
    let row = &series(&v)[0]["values"][0];
    assert_eq!(
        (row[1].as_i64(), row[2].as_i64()),
        (Some(rn), Some(rsum)),
        "readings"
    );
    let v = influxql(&url, "kare", "SELECT count(n), sum(n) FROM seq_event").await;
    let row = &series(&v)[0]["values"][0];
    assert_eq!(
        (row[1].as_i64(), row[2].as_i64()),
        (Some(en), Some(esum)),
        "events"
    );
    eprintln!(
        "v1 kill -9: {} points, {} through the backlog, {} failed requests while down",
        N, st.drained_points, st.failed_requests
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influx_v2_victoria_metrics_killed_and_restarted_mid_run_loses_nothing() {
    let mut server = Server::victoria();
    let url = server.url();
    let mut cfg = InfluxConfig::v2(&url, "utility", "kare", "token");
    cfg.tags.site = "SITE-V".into();
    cfg.batch_size = 500;
    cfg.flush_interval_s = 0.2;
    cfg.retry_max_s = 0.5;
    cfg.timeout_s = 5.0;
    cfg.stats_interval_s = 0.0;
    let sink = Sink::start(cfg);

    produce(&sink, 0, N / 3).await;
    // VictoriaMetrics acknowledges before its data reaches disk (1.79 keeps recent rows in
    // memory for seconds), so a SIGKILL loses what it had just taken: that is the server, not
    // the sink, and no client can prevent it. Let the sink catch up and make the server persist
    // (a snapshot writes everything out), then kill: what must survive is what the sink sends
    // from then on.
    sink.wait_all_written(Duration::from_secs(30)).await;
    vm_persist(&url).await;
    server.kill9();
    produce(&sink, N / 3, 2 * N / 3).await;
    sink.wait("the writer to notice", Duration::from_secs(10), |s| {
        !s.up && s.backlog_points > 0
    })
    .await;
    server.restart();
    produce(&sink, 2 * N / 3, N).await;
    sink.wait_all_written(Duration::from_secs(60)).await;
    let st = sink.stop().await;
    assert_eq!(
        st.dropped_channel_full + st.evicted_points + st.rejected_points,
        0,
        "{st:#?}"
    );
    assert!(st.drained_points > 0, "{st:#?}");

    let mut got: Vec<i64> = Vec::new();
    for (_, values, _) in vm_export(&url, r#"{__name__=~"seq_n|seq_event_n"}"#).await {
        got.extend(values.iter().map(|v| *v as i64));
    }
    got.sort_unstable();
    got.dedup();
    let missing: Vec<i64> = (0..N).filter(|i| got.binary_search(i).is_err()).collect();
    if !missing.is_empty() {
        eprintln!(
            "missing {}: first {:?} last {:?}; stats {st:#?}",
            missing.len(),
            &missing[..missing.len().min(5)],
            missing.last()
        );
    }
    assert_eq!(got.len() as i64, N, "distinct numbers held");
    assert_eq!(got.first(), Some(&0));
    assert_eq!(got.last(), Some(&(N - 1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influx_full_backlog_evicts_oldest_readings_never_events_then_drains() {
    // No server yet: every batch goes to the backlog, which holds far less than is written.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut cfg = v1_config(&url, "kare", "SITE-B", "CUST-B", "standard");
    // 19 800 readings: 99 full batches. (While the server is out of reach a part-full batch of
    // readings waits up to 60 s to grow before it is stored.)
    cfg.batch_size = 200;
    cfg.backlog_max_mb = 0.03;
    cfg.create_database = true;
    let sink = Sink::start(cfg);

    // Values that compress poorly, so that the bound bites.
    let total = 20_000i64;
    let mut i = 0;
    while i < total {
        let end = (i + 250).min(total);
        sink.send((i..end).map(|i| {
            let p = numbered(i);
            if p.class == Class::Readings {
                p.field(
                    "noise",
                    (i.wrapping_mul(2_654_435_761) % 1_000_003) as f64 / 7.0,
                )
            } else {
                p
            }
        }));
        i = end;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    sink.wait("every point in the backlog", Duration::from_secs(30), |s| {
        s.received_points == total as u64 && s.memory_points == 0
    })
    .await;
    let full = sink.stats();
    let (rn, _) = readings_in(0..total);
    let (en, esum) = events_in(0..total);
    assert!(full.evicted_readings_points > 0, "{full:#?}");
    assert_eq!(
        full.evicted_points, full.evicted_readings_points,
        "only readings go"
    );
    assert_eq!(
        full.backlog_event_points, en as u64,
        "every event kept: {full:#?}"
    );
    assert_eq!(
        full.backlog_points + full.evicted_points,
        total as u64,
        "{full:#?}"
    );

    // The server appears (with no database: the sink makes it), and the backlog drains.
    let server = Server::influx1_on(port);
    sink.wait_all_written(Duration::from_secs(60)).await;
    let st = sink.stop().await;
    assert_eq!(st.evicted_points, full.evicted_points, "nothing more lost");

    let v = influxql(
        &server.url(),
        "kare",
        "SELECT count(n), sum(n) FROM seq_event",
    )
    .await;
    let row = &series(&v)[0]["values"][0];
    assert_eq!((row[1].as_i64(), row[2].as_i64()), (Some(en), Some(esum)));
    // The readings held are the newest: a contiguous run up to the last one.
    let v = influxql(
        &server.url(),
        "kare",
        "SELECT count(n), min(n), max(n) FROM seq",
    )
    .await;
    let row = &series(&v)[0]["values"][0];
    let (count, min, max) = (
        row[1].as_i64().unwrap(),
        row[2].as_i64().unwrap(),
        row[3].as_i64().unwrap(),
    );
    assert_eq!(count as u64, rn as u64 - st.evicted_readings_points);
    assert_eq!(max, total - 1);
    let (held_after_min, _) = readings_in(min..total);
    assert_eq!(
        held_after_min, count,
        "held readings are the newest, without gaps"
    );
    eprintln!(
        "bound: {} of {} readings evicted (oldest), {} events all kept",
        st.evicted_readings_points, rn, en
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influx_backlog_drains_oldest_first_without_starving_live_data() {
    // An outage's worth of readings waits in the backlog (no server yet).
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut cfg = v1_config(&url, "kare", "SITE-D", "CUST-D", "important");
    cfg.batch_size = 1000;
    cfg.flush_interval_s = 0.1;
    cfg.create_database = true;
    let sink = Sink::start(cfg);
    let old = 150_000i64;
    let mut i = 0;
    while i < old {
        let end = (i + 1000).min(old);
        sink.send_patiently((i..end).map(|i| {
            Point::new(
                "old",
                Class::Readings,
                Utc.timestamp_opt(1_790_000_000, 0).unwrap() + CDuration::milliseconds(i),
            )
            .field("n", i)
        }))
        .await;
        i = end;
    }
    sink.wait("the outage in the backlog", Duration::from_secs(30), |s| {
        s.received_points == old as u64 && s.memory_points == 0
    })
    .await;

    // The server comes back; live data keeps arriving while the backlog drains.
    let server = Server::influx1_on(port);
    let mut live_during_drain = false;
    let mut prefix_checked = false;
    let mut k = 0i64;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        sink.send([Point::new("live", Class::Readings, Utc::now()).field("k", k)]);
        k += 1;
        let st = sink.stats();
        if st.backlog_points == 0 && st.memory_points == 0 {
            break;
        }
        if st.drained_points > 0 && st.backlog_points > 0 {
            let v = influxql(&server.url(), "kare", "SELECT count(k) FROM live").await;
            live_during_drain |= scalar(&v).unwrap_or(0.0) > 0.0;
            // Oldest first, every time we look: what has arrived is a run from the first point,
            // with no gap. Asked in two steps: InfluxDB answers each aggregate of one SELECT
            // from its own iterator, so `count(n), max(n)` taken while a write lands can see
            // different data (a false gap of one batch). Points written after the first step
            // are newer (if the drain is in order), so they cannot change the second's count.
            let v = influxql(&server.url(), "kare", "SELECT max(n) FROM old").await;
            if let Some(hi) = scalar(&v) {
                let hi = hi as i64;
                let v = influxql(
                    &server.url(),
                    "kare",
                    &format!("SELECT count(n) FROM old WHERE n <= {hi}"),
                )
                .await;
                let c = scalar(&v).unwrap_or(0.0) as i64;
                assert_eq!(c, hi + 1, "drained out of order: {c} points up to n = {hi}");
                prefix_checked |= hi + 1 < old;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "drain too slow: {st:#?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sink.wait_all_written(Duration::from_secs(30)).await;
    let st = sink.stop().await;
    assert!(
        live_during_drain,
        "live data waited for the whole backlog: {st:#?}"
    );
    assert!(prefix_checked, "the drain was never seen half-way");
    let v = influxql(&server.url(), "kare", "SELECT count(n) FROM old").await;
    assert_eq!(scalar(&v), Some(old as f64));
    let v = influxql(&server.url(), "kare", "SELECT count(k) FROM live").await;
    assert_eq!(scalar(&v), Some(k as f64));
}
