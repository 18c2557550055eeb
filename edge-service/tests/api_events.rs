//! `/api/v1/events` from the store, over HTTP: the store's id is the event's id (the same after
//! a restart), pages follow one another without gaps or repeats, filters narrow them, bad
//! queries are a 400 saying what is wrong, and an event's capture downloads as COMTRADE.

use chrono::{DateTime, Duration as CDuration, TimeZone, Utc};
use kare::actions::site::Site;
use kare::pipeline::service::{Service, ServiceConfig};
use kare::store::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn cfg(dir: &tempfile::TempDir) -> StoreConfig {
    StoreConfig {
        synchronous: Synchronous::Normal,
        ..StoreConfig::at(dir.path().join("kare.db"))
    }
}

fn t(m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 8, m, s).unwrap()
}

fn event(i: u32, kind: &str, source: &str) -> StoredEvent {
    let start = t(i, 0);
    let end = start + CDuration::milliseconds(120);
    StoredEvent {
        source: source.into(),
        source_key: format!("{kind}@{i}"),
        site_id: Some("SITE-1".into()),
        kind: kind.into(),
        start,
        end: Some(end),
        duration_s: Some(0.12),
        extreme_pct: Some(55.0),
        worst_channel: Some("VA".into()),
        open: false,
        // As the live log wrote it: its own id, which the API must not show.
        json: json!({"id": 999, "kind": kind, "start": start.to_rfc3339(), "duration_s": 0.12}),
        profile_json: Some(json!({"records": [1, 2, 3]})),
        waveform: None,
    }
}

/// A GET over a fresh connection: status code and body.
async fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, body.to_string())
}

async fn get_json(addr: &str, path: &str) -> (u16, Value) {
    let (code, body) = get(addr, path).await;
    (code, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// A service on the store with no sources, and its API on a free port.
async fn serve(store: StoreHandle) -> (Service, String, tokio::task::JoinHandle<()>) {
    let service = Service::start(ServiceConfig {
        store: Some(store),
        ..ServiceConfig::new(Site::demo())
    });
    let app = kare::web::router(kare::web::ApiState::new(&service));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (service, addr, server)
}

fn ids(v: &Value) -> Vec<i64> {
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn api_events_pages_filters_and_ids_that_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut stored = Vec::new();
    {
        let mut s = Store::open(&cfg(&dir)).unwrap();
        for i in 0..12 {
            let kind = ["dip", "swell", "interruption"][i as usize % 3];
            let source = if i < 6 { "feeder-1" } else { "feeder-2" };
            stored.push(s.upsert_event(&event(i, kind, source)).unwrap());
        }
    }
    let newest: Vec<i64> = stored.iter().rev().copied().collect();
    for run in 0..2 {
        // Each run is a restart of the service on the same file.
        let store = StoreHandle::open(&cfg(&dir)).unwrap();
        let (service, addr, server) = serve(store.clone()).await;

        let (code, all) = get_json(&addr, "/api/v1/events").await;
        assert_eq!(code, 200, "{all}");
        assert_eq!(ids(&all), newest, "run {run}");
        assert_eq!(all["events"][0]["source"], "feeder-2");
        assert_eq!(all["next_before"], Value::Null);

        // Pages of 5: 5, 5, 2, each following the last, and back again.
        let (_, p1) = get_json(&addr, "/api/v1/events?limit=5").await;
        assert_eq!(ids(&p1), newest[..5]);
        assert_eq!(p1["prev_after"], Value::Null);
        let before = p1["next_before"].as_i64().unwrap();
        let (_, p2) = get_json(&addr, &format!("/api/v1/events?limit=5&before={before}")).await;
        assert_eq!(ids(&p2), newest[5..10]);
        let before = p2["next_before"].as_i64().unwrap();
        let (_, p3) = get_json(&addr, &format!("/api/v1/events?limit=5&before={before}")).await;
        assert_eq!(ids(&p3), newest[10..]);
        assert_eq!(p3["next_before"], Value::Null);
        let after = p3["prev_after"].as_i64().unwrap();
        let (_, back) = get_json(&addr, &format!("/api/v1/events?limit=5&after={after}")).await;
        assert_eq!(ids(&back), ids(&p2));

        // Filters: the dips and swells of feeder-2 between 08:07 and 08:10.
        let (_, f) = get_json(
            &addr,
            "/api/v1/events?kind=dip,swell&source=feeder-2&from=2026-03-01T08:07:00Z&to=2026-03-01T08:10:00Z",
        )
        .await;
        // i = 7 (swell), 9 (dip); 8 is an interruption.
        assert_eq!(ids(&f), vec![stored[9], stored[7]]);

        // One event: the store's id, its profile.
        let (code, one) = get_json(&addr, &format!("/api/v1/events/{}", stored[4])).await;
        assert_eq!(code, 200);
        assert_eq!(one["id"], stored[4]);
        assert_eq!(one["rms_profile"]["records"], json!([1, 2, 3]));
        service.stop().await;
        // The history sink saved the site record the reports read (stopped with the service).
        let site = store.site().await.unwrap().expect("the site record");
        assert_eq!(site.id, Site::demo().id);
        assert_eq!(site.momentary_max_s, 300.0);
        server.abort();
        store.close().await;
    }
}

#[tokio::test]
async fn api_events_bad_queries_are_400_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreHandle::open(&cfg(&dir)).unwrap();
    let (service, addr, server) = serve(store.clone()).await;
    for (path, says) in [
        (
            "/api/v1/events?limit=5000",
            "`limit` must be a whole number from 1 to 1000",
        ),
        ("/api/v1/events?kind=blip", "unknown kind `blip`"),
        (
            "/api/v1/events?from=2026-03-02&to=2026-03-01",
            "`to` must be after `from`",
        ),
        ("/api/v1/events?before=abc", "`before` must be an event id"),
        // chrono reads these years; the store's text comparison cannot hold them.
        (
            "/api/v1/events?from=%2B10000-01-01",
            "`from` must be in the years 1970 to 9999",
        ),
        (
            "/api/v1/events?to=-262143-01-01",
            "`to` must be in the years 1970 to 9999",
        ),
        ("/api/v1/events?page=2", "unknown parameter `page`"),
        ("/api/v1/events/abc", "is not an event id"),
        ("/api/v1/events/0/waveform", "is not an event id"),
        ("/api/v1/events/-1/comtrade", "is not an event id"),
    ] {
        let (code, v) = get_json(&addr, path).await;
        assert_eq!(code, 400, "{path}: {v}");
        assert!(
            v["error"].as_str().unwrap_or("").contains(says),
            "{path}: {v}"
        );
    }
    for path in [
        "/api/v1/events/42",
        "/api/v1/events/42/waveform",
        "/api/v1/events/42/comtrade",
    ] {
        let (code, v) = get_json(&addr, path).await;
        assert_eq!(code, 404, "{path}: {v}");
        assert!(v["error"].as_str().unwrap().contains("no event 42"), "{v}");
    }
    service.stop().await;
    server.abort();
    store.close().await;
}

#[tokio::test]
async fn api_event_capture_downloads_as_comtrade_that_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let mut s = Store::open(&cfg(&dir)).unwrap();
        let id = s.upsert_event(&event(1, "dip", "feeder-1")).unwrap();
        // As the consumer stores a node's capture: the waveform as JSON.
        let rate = 6400u32;
        let volts: Vec<Vec<f32>> = (0..3)
            .map(|ph| {
                (0..128)
                    .map(|n| {
                        let a = 2.0 * std::f32::consts::PI * 50.0 * n as f32 / rate as f32
                            - ph as f32 * 2.0944;
                        325.0 * a.sin()
                    })
                    .collect()
            })
            .collect();
        let w = json!({"capture_id": 3, "start": t(1, 0).to_rfc3339(), "sample_rate_hz": rate,
                       "channels": ["VA", "VB", "VC"], "volts": volts});
        s.attach_waveform(id, &serde_json::to_vec(&w).unwrap())
            .unwrap();
        id
    };
    let store = StoreHandle::open(&cfg(&dir)).unwrap();
    let (service, addr, server) = serve(store.clone()).await;
    let (code, w) = get_json(&addr, &format!("/api/v1/events/{id}/waveform")).await;
    assert_eq!(code, 200);
    assert_eq!(w["channels"], json!(["VA", "VB", "VC"]));

    let (code, cff) = get(&addr, &format!("/api/v1/events/{id}/comtrade")).await;
    assert_eq!(code, 200);
    assert!(cff.starts_with("--- file type: CFG ---"), "{cff}");
    let path = dir.path().join("event.cff");
    std::fs::write(&path, cff.as_bytes()).unwrap();
    let rec = kare::recording::read(&path).unwrap();
    assert_eq!(rec.analog.len(), 3);
    assert_eq!(rec.analog[0].name, "VA");
    assert_eq!(rec.sample_count(), 128);
    assert_eq!(rec.start, Some(t(1, 0)));
    // Within the quantisation step of the writer (range / 2·99 998).
    let peak = rec.analog[0]
        .values
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()));
    assert!((peak - 325.0).abs() < 1.0, "{peak}");
    service.stop().await;
    server.abort();
    store.close().await;
}
