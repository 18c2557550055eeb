//! What the sink writes is what the server holds: points made by the producers (and a few
//! built to stress line-protocol escaping) go through the buffered writer to a real server and
//! are read back: InfluxDB 1.x through InfluxQL (v1 `/write`), VictoriaMetrics through its
//! export API (v2 `/api/v2/write` via the `influxdb2` crate).

mod influx_support;

use chrono::{DateTime, Duration, TimeZone, Utc};
use influx_support::*;
use kare::sinks::influx::producers::*;
use kare::sinks::influx::{Class, FieldValue, InfluxConfig, Point};
use kare::sources::pqlink::Reading;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

fn now_s() -> DateTime<Utc> {
    Utc.timestamp_opt(Utc::now().timestamp() - 600, 0).unwrap()
}

/// Ten seconds of two three-phase nodes, aggregated; an escaping torture point; a meter poll.
fn points(t0: DateTime<Utc>) -> Vec<Point> {
    let mut agg = SecondAggregator::new();
    agg.set_udin("node 1", 57.7);
    let mut out = Vec::new();
    for src in ["node 1", "node,2"] {
        for i in 0..1000 {
            let start = t0 + Duration::milliseconds(i * 10);
            let v = 57.7 + ((i * 7919) % 13) as f32 * 0.01;
            agg.push(
                &Reading {
                    source: Arc::from(src),
                    seq: i as u32,
                    start,
                    end: start + Duration::milliseconds(20),
                    frequency_hz: 50.0 + (i % 5) as f32 * 0.001,
                    volts: [v, v - 0.5, v + 0.25, 0.0],
                    channels: 3,
                    locked: i % 250 != 0,
                },
                &mut out,
            );
        }
    }
    agg.finish(&mut out);
    out.push(
        Point::new("kare test,x", Class::Events, t0)
            .tag("odd key", "a,b=c d")
            .tag("unicode", "电网 ✓")
            .field("f=1", 1.5)
            .field("s", r#"he said "hi" \ bye"#)
            .field("n", -42i64)
            .field("b", true)
            .field("tiny", 1.0e-9)
            .field("huge", 1.0e18),
    );
    use kare::sources::meters::readings::{MeterReading, Quantity};
    let r = |q, v| MeterReading {
        source: Arc::from("rs485"),
        device: Arc::from("incomer"),
        at: t0 + Duration::seconds(3),
        quantity: q,
        value: v,
    };
    out.extend(points_from_meter_readings(&[
        r(Quantity::VoltageA, 10_312.5),
        r(Quantity::ThdUA, 2.75),
        r(Quantity::PowerFactorTotal, 0.93),
    ]));
    out
}

fn site_tags() -> Vec<(String, String)> {
    vec![
        ("customer".into(), "CUST-RT".into()),
        ("site".into(), "SITE-RT".into()),
        ("tier".into(), "critical".into()),
    ]
}

fn expected_tags(p: &Point) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = site_tags().into_iter().collect();
    for (k, v) in &p.tags {
        m.insert(k.to_string(), v.clone());
    }
    m
}

fn ns(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap()
}

fn same(got: &Value, want: &FieldValue) -> bool {
    match want {
        FieldValue::Float(f) => got.as_f64() == Some(*f),
        FieldValue::Int(i) => got.as_i64() == Some(*i),
        FieldValue::Bool(b) => got.as_bool() == Some(*b),
        FieldValue::Str(s) => got.as_str() == Some(s.as_str()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influx_v1_holds_exactly_what_was_written() {
    let server = Server::influx1();
    let url = server.url();
    create_db(&url, "kare").await;
    let sink = Sink::start(v1_config(&url, "kare", "SITE-RT", "CUST-RT", "critical"));
    let t0 = now_s();
    let pts = points(t0);
    let n = sink.send(pts.clone());
    sink.wait_all_written(std::time::Duration::from_secs(30))
        .await;
    let st = sink.stop().await;
    assert_eq!(st.written_points, n as u64);
    assert_eq!(st.rejected_points + st.dropped_unencodable, 0, "{st:#?}");

    let mut measurements: Vec<&str> = pts.iter().map(|p| p.measurement.as_ref()).collect();
    measurements.sort();
    measurements.dedup();
    let mut rows_checked = 0;
    for m in measurements {
        let q = format!("SELECT * FROM \"{}\" GROUP BY *", m.replace('"', "\\\""));
        let got = series(&influxql(&url, "kare", &q).await);
        // (tags, time) → (column → value)
        let mut held: BTreeMap<(BTreeMap<String, String>, i64), BTreeMap<String, Value>> =
            BTreeMap::new();
        for s in &got {
            let tags: BTreeMap<String, String> = s["tags"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter(|(_, v)| v.as_str().is_some_and(|s| !s.is_empty()))
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            let cols: Vec<String> = s["columns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_string())
                .collect();
            for row in s["values"].as_array().unwrap() {
                let row = row.as_array().unwrap();
                let t = row[0].as_i64().unwrap();
                let fields = cols[1..]
                    .iter()
                    .cloned()
                    .zip(row[1..].iter().cloned())
                    .filter(|(_, v)| !v.is_null())
                    .collect();
                held.insert((tags.clone(), t), fields);
            }
        }
        let sent: Vec<&Point> = pts.iter().filter(|p| p.measurement == m).collect();
        assert_eq!(held.len(), sent.len(), "{m}: rows held vs points sent");
        for p in sent {
            let key = (expected_tags(p), ns(p.time));
            let fields = held
                .get(&key)
                .unwrap_or_else(|| panic!("{m}: no row for {key:?}; held: {:?}", held.keys()));
            for (k, v) in &p.fields {
                let g = fields.get(k.as_ref()).unwrap_or(&Value::Null);
                assert!(same(g, v), "{m} {key:?} field {k}: held {g}, sent {v:?}");
            }
            assert_eq!(fields.len(), p.fields.len(), "{m}: extra fields {fields:?}");
            rows_checked += 1;
        }
    }
    assert_eq!(rows_checked, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influx_v2_victoria_metrics_holds_what_was_written() {
    let server = Server::victoria();
    let url = server.url();
    let mut cfg = InfluxConfig::v2(&url, "utility", "kare", "test-token");
    cfg.tags.site = "SITE-RT".into();
    cfg.tags.customer = "CUST-RT".into();
    cfg.tags.tier = "critical".into();
    cfg.flush_interval_s = 0.2;
    cfg.stats_interval_s = 0.0;
    let sink = Sink::start(cfg);
    let t0 = now_s();
    // VictoriaMetrics keeps numbers only (strings become 0), so compare numeric fields.
    let pts: Vec<Point> = points(t0)
        .into_iter()
        .filter(|p| !p.measurement.contains(' '))
        .collect();
    let n = sink.send(pts.clone());
    sink.wait_all_written(std::time::Duration::from_secs(30))
        .await;
    let st = sink.stop().await;
    assert_eq!(st.written_points, n as u64, "{st:#?}");

    let exported = vm_export(&url, r#"{site="SITE-RT"}"#).await;
    // (metric name, labels) → time ms → value
    let mut held: BTreeMap<(String, BTreeMap<String, String>), BTreeMap<i64, f64>> =
        BTreeMap::new();
    for (metric, values, ts) in exported {
        let obj = metric.as_object().unwrap();
        let name = obj["__name__"].as_str().unwrap().to_string();
        let labels = obj
            .iter()
            .filter(|(k, _)| *k != "__name__")
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        held.insert((name, labels), ts.into_iter().zip(values).collect());
    }
    let mut checked = 0;
    for p in &pts {
        for (k, v) in &p.fields {
            let want = match v {
                FieldValue::Float(f) => *f,
                FieldValue::Int(i) => *i as f64,
                FieldValue::Bool(b) => *b as i64 as f64,
                FieldValue::Str(_) => continue,
            };
            let key = (format!("{}_{}", p.measurement, k), expected_tags(p));
            let series = held
                .get(&key)
                .unwrap_or_else(|| panic!("no series {key:?}; have {:?}", held.keys()));
            let got = series
                .get(&(ns(p.time) / 1_000_000))
                .unwrap_or_else(|| panic!("{key:?}: no sample at {}", p.time));
            assert!(
                (got - want).abs() <= want.abs() * 1e-12,
                "{key:?} at {}: held {got}, sent {want}",
                p.time
            );
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} values compared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influx_v1_refused_batch_is_set_aside_with_the_servers_message() {
    let server = Server::influx1();
    let url = server.url();
    create_db(&url, "kare").await;
    let sink = Sink::start(v1_config(&url, "kare", "SITE-RT", "CUST-RT", "critical"));
    let t = now_s();
    let p = |v: kare::sinks::influx::FieldValue, s: i64| {
        Point::new("conflict", Class::Readings, t + Duration::seconds(s)).field("v", v)
    };
    sink.send([p(FieldValue::Float(1.5), 0)]);
    sink.wait("the first batch", std::time::Duration::from_secs(10), |s| {
        s.written_points == 1
    })
    .await;
    // Same field, now a string: InfluxDB refuses it (400, field type conflict).
    sink.send([p(FieldValue::Str("oops".into()), 1)]);
    sink.wait("the refusal", std::time::Duration::from_secs(10), |s| {
        s.rejected_points == 1
    })
    .await;
    // The writer goes on: the next batch is written.
    sink.send([p(FieldValue::Float(2.5), 2)]);
    sink.wait_all_written(std::time::Duration::from_secs(10))
        .await;
    let (st, dir) = sink.stop_keeping_backlog().await;
    assert_eq!(
        (st.written_points, st.rejected_points, st.rejected_batches),
        (2, 1, 1)
    );
    let why = st.last_rejection.clone().unwrap_or_default();
    assert!(
        why.starts_with("HTTP 400") && why.contains("conflict"),
        "{why}"
    );

    // Kept, not dropped: the batch and the server's message are in the backlog's `rejected`.
    let db = rusqlite::Connection::open(dir.path().join("influx-backlog.sqlite")).unwrap();
    let (status, message, points): (i64, String, i64) = db
        .query_row("SELECT status, message, points FROM rejected", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!((status, points), (400, 1));
    assert!(message.contains("field type conflict"), "{message}");
    let v = influxql(&url, "kare", "SELECT count(v) FROM conflict").await;
    assert_eq!(scalar(&v), Some(2.0));
}
