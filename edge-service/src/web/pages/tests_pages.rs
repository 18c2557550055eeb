//! The pages as a person reads them: each rendered through the router, in both languages,
//! with names from the configuration or a meter escaped and bad parameters answered 400.

use super::test_support::get;
use crate::pipeline::status::{MeterBusStatus, MeterDeviceStatus, SourceStatus};
use crate::store::{StoreConfig, StoreHandle, StoredEvent};
use crate::web::report::tests::visible_text;
use crate::web::ApiState;
use axum::http::StatusCode;
use axum::Router;
use chrono::{TimeZone, Utc};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

fn state(store: Option<StoreHandle>) -> ApiState {
    let mut status = BTreeMap::new();
    status.insert(
        "demo-node".to_string(),
        SourceStatus {
            channels: vec!["VA".into(), "VB".into(), "VC".into()],
            connected: true,
            nominal_hz: Some(50),
            port: "/dev/ttyKARE0".into(),
            ..Default::default()
        },
    );
    let mut devices = BTreeMap::new();
    devices.insert(
        "<script>alert('m')</script>".to_string(),
        MeterDeviceStatus {
            online: false,
            values: BTreeMap::new(),
        },
    );
    let mut meters = BTreeMap::new();
    meters.insert(
        "incomer".to_string(),
        MeterBusStatus {
            devices,
            ..Default::default()
        },
    );
    ApiState {
        log: Arc::default(),
        tickets: Arc::default(),
        status: Arc::new(Mutex::new(status)),
        readings: broadcast::channel(4).0,
        updates: broadcast::channel(4).0,
        started: Utc::now(),
        influx: None,
        meters: Arc::new(Mutex::new(meters)),
        meter_readings: broadcast::channel(4).0,
        ticket_updates: broadcast::channel(4).0,
        store,
        pending: Arc::default(),
    }
}

fn app(st: ApiState) -> Router {
    crate::web::router(st)
}

/// A store with one dip (residual 45 % for 300 ms, below ITIC and F47) and one interruption.
async fn store_with_events(dir: &std::path::Path) -> (StoreHandle, i64, i64) {
    let store = StoreHandle::open(&StoreConfig::at(dir.join("kare.db"))).expect("store");
    let t0 = Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0).unwrap();
    let mut ids = vec![];
    for (key, kind, start, dur, extreme) in [
        ("dip@1", "dip", t0, 0.3, 45.0),
        (
            "int@1",
            "interruption",
            t0 + chrono::Duration::hours(1),
            400.0,
            0.5,
        ),
    ] {
        let json = json!({
            "kind": kind,
            "start": start.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "duration_s": dur,
            "extreme_pct": extreme,
            "worst_channel": "VA",
            "itic": "below",
            "semi_f47": if kind == "dip" { json!("below") } else { json!(null) },
            "en50160": if kind == "dip" { json!({"row": "70>u>=40", "column": "200-500ms"}) } else { json!(null) },
            "channel_extremes_pct": {"VA": extreme, "VB": 98.0, "VC": 99.0},
        });
        let profile = json!({
            "pre_records": 1, "skipped_records": 0,
            "records": [
                {"start": start.to_rfc3339(), "end": start.to_rfc3339(), "pct": [100.0, 100.0, 100.0]},
                {"start": (start + chrono::Duration::milliseconds(10)).to_rfc3339(), "end": start.to_rfc3339(), "pct": [extreme, 98.0, 99.0]},
                {"start": (start + chrono::Duration::milliseconds(310)).to_rfc3339(), "end": start.to_rfc3339(), "pct": [100.0, 100.0, 100.0]}
            ]
        });
        let id = store
            .upsert_event(StoredEvent {
                source: "demo-node".into(),
                source_key: key.into(),
                site_id: Some("SITE-DEMO-01".into()),
                kind: kind.into(),
                start,
                end: Some(start + chrono::Duration::milliseconds((dur * 1000.0) as i64)),
                duration_s: Some(dur),
                extreme_pct: Some(extreme),
                worst_channel: Some("VA".into()),
                open: false,
                json,
                profile_json: Some(profile),
                // The capture as the pipeline stores it: the node's samples as JSON.
                waveform: (kind == "dip").then(|| {
                    serde_json::to_vec(&json!({
                        "capture_id": 1,
                        "start": (start - chrono::Duration::milliseconds(40)).to_rfc3339(),
                        "sample_rate_hz": 6400,
                        "channels": ["VA", "VB", "VC"],
                        "volts": [[0.0, 100.0, 200.0, 100.0], [0.0, -100.0, -200.0, -100.0], [1.0, 2.0, 3.0, 4.0]],
                    }))
                    .expect("json")
                }),
            })
            .await
            .expect("upsert");
        ids.push(id);
    }
    (store, ids[0], ids[1])
}

#[tokio::test]
async fn now_shows_the_sources_and_escapes_a_meters_name() {
    let (status, headers, html) = get(
        app(state(None)),
        "/now",
        &[("accept-language", "zh-CN,zh;q=0.9")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers.get("set-cookie").is_none(),
        "the browser's default is not remembered"
    );
    let text = visible_text(&html);
    assert!(text.contains("实时供电状态"), "{text}");
    assert!(text.contains("供电正常"), "{text}");
    assert!(text.contains("demo-node 在线"), "{text}");
    assert!(text.contains("离线"), "{text}");
    assert!(!html.contains("<script>alert"), "a meter's name is escaped");
    assert!(html.contains("&lt;script&gt;alert"));
    assert!(
        html.contains("<script src=\"/assets/kare.js\">"),
        "Now is live"
    );
}

#[tokio::test]
async fn the_switch_sets_the_cookie_and_the_cookie_beats_the_browser() {
    let (_, headers, html) = get(
        app(state(None)),
        "/tickets?lang=zh-CN",
        &[("accept-language", "en")],
    )
    .await;
    let cookie = headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(cookie.starts_with("lang=zh-CN;"), "{cookie}");
    assert!(visible_text(&html).contains("暂无工单。"));
    let (_, _, html) = get(
        app(state(None)),
        "/tickets",
        &[("accept-language", "en"), ("cookie", "a=b; lang=zh-CN")],
    )
    .await;
    assert!(html.contains("<html lang=\"zh-CN\">"));
    // The switch links to the same page in the other language.
    assert!(html.contains("href=\"/tickets?lang=en\""), "{html}");
}

#[tokio::test]
async fn bad_parameters_are_a_400_page_that_says_what_is_wrong() {
    let cases = [
        ("/events?from=yesterday", "from", "expected a date"),
        (
            "/events?from=2026-11-02&to=2026-11-01",
            "to",
            "the end must be after the start",
        ),
        (
            "/events?kind=earthquake",
            "kind",
            "expected one of: dip, swell",
        ),
        ("/events?limit=0", "limit", "from 1 to 1000"),
        ("/events?before=-3", "before", "an event number"),
        (
            "/events?colour=red",
            "colour",
            "this page takes: from, to, kind",
        ),
        ("/events/abc", "id", "an event number"),
        ("/now?lang=fr", "lang", "en and zh-CN"),
        (
            "/report?period=decade",
            "period",
            "month, quarter, year or custom",
        ),
        (
            "/report?period=custom&from=2026-11-01",
            "to",
            "needs both from and to",
        ),
    ];
    for (uri, name, why) in cases {
        let (status, _, html) = get(app(state(None)), uri, &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        let text = visible_text(&html);
        assert!(text.contains("Bad request"), "{uri}: {text}");
        assert!(text.contains(&format!("“{name}”")), "{uri}: {text}");
        assert!(text.contains(why), "{uri}: {text}");
    }
    let (status, _, html) = get(
        app(state(None)),
        "/events?kind=%3Cscript%3E",
        &[("accept-language", "zh-CN")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        !html.contains("<script>") && html.contains("&lt;script&gt;"),
        "the bad value is escaped"
    );
    assert!(visible_text(&html).contains("请求有误"));
}

#[tokio::test]
async fn events_from_the_store_list_filter_and_page() {
    let dir = tempfile::tempdir().expect("tmp");
    let (store, dip, int) = store_with_events(dir.path()).await;
    let st = state(Some(store));
    let (status, _, html) = get(app(st.clone()), "/events", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let text = visible_text(&html);
    assert!(text.contains("2 events shown"), "{text}");
    assert!(html.contains(&format!("href=\"/events/{dip}\"")));
    assert!(
        text.contains("Voltage dip 45.0 % 0.300 s VA demo-node below below 70>u>=40 / 200-500ms"),
        "{text}"
    );
    // Newest first; kind filter; paging by id.
    assert!(text.find("Interruption 0.5 %").unwrap() < text.find("Voltage dip 45.0 %").unwrap());
    let (_, _, html) = get(app(st.clone()), "/events?kind=dip", &[]).await;
    assert!(visible_text(&html).contains("1 events shown"));
    let (_, _, html) = get(app(st.clone()), "/events?limit=1", &[]).await;
    assert!(
        html.contains(&format!("href=\"/events?limit=1&amp;before={int}\"")),
        "{html}"
    );
    let (_, _, html) = get(
        app(st.clone()),
        &format!("/events?limit=1&before={int}"),
        &[],
    )
    .await;
    assert!(html.contains(&format!("href=\"/events/{dip}\"")));
    let (_, _, html) = get(
        app(st),
        "/events?from=2026-12-01",
        &[("accept-language", "zh-CN")],
    )
    .await;
    assert!(visible_text(&html).contains("没有符合条件的事件。"));
}

#[tokio::test]
async fn one_event_shows_its_profile_and_a_missing_one_is_404() {
    let dir = tempfile::tempdir().expect("tmp");
    let (store, dip, _) = store_with_events(dir.path()).await;
    let st = state(Some(store));
    let (status, _, html) = get(
        app(st.clone()),
        &format!("/events/{dip}"),
        &[("accept-language", "zh-CN")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let text = visible_text(&html);
    assert!(text.contains(&format!("事件 {dip} · 电压暂降")), "{text}");
    assert!(
        html.contains("aria-label=\"有效值曲线\""),
        "the profile chart is drawn"
    );
    assert!(
        html.contains("aria-label=\"波形\""),
        "the waveform is drawn"
    );
    assert!(
        html.contains(&format!("href=\"/api/v1/events/{dip}/comtrade\"")),
        "and downloadable as COMTRADE"
    );
    assert!(text.contains("下载 COMTRADE 录波文件"), "{text}");
    let (status, _, html) = get(app(st), "/events/9999", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(visible_text(&html).contains("There is no event 9999."));
}

#[tokio::test]
async fn the_report_page_picks_the_last_full_month_and_says_why_it_cannot_show() {
    let (status, _, html) = get(app(state(None)), "/report?lang=en", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let text = visible_text(&html);
    assert!(text.contains("configure [store]"), "{text}");
    assert!(html.contains("onclick=\"window.print()\""));
}

#[test]
fn the_report_page_embeds_the_report_in_both_languages() {
    use super::report::{body, pick, PeriodKind};
    use super::Ctx;
    for lang in crate::web::Lang::ALL {
        let ctx = Ctx {
            lang,
            remember: false,
            path: "/report".into(),
            params: vec![],
            logged_in: false,
        };
        let p = pick(&ctx, Utc.with_ymd_and_hms(2026, 12, 4, 17, 0, 0).unwrap()).expect("period");
        assert_eq!(p.kind, PeriodKind::Month);
        assert_eq!(p.from, Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap());
        assert_eq!(p.to, Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap());
        let html = body(&ctx, &p, Ok(crate::web::report::tests::fixture())).into_string();
        let text = visible_text(&html);
        assert!(text.contains(&lang.t("sec-continuity")), "{text}");
        assert!(
            text.contains("SITE-DEMO-01-outage-20261126T081500Z"),
            "{text}"
        );
        assert!(
            html.contains("<a href=\"/events/7\"><circle"),
            "ITIC point links to the event page"
        );
        assert!(!html.contains("<script>alert"));
    }
}

#[test]
fn quarters_and_years_are_calendar_periods() {
    use super::report::pick;
    use super::Ctx;
    let ctx = |params: &[(&str, &str)]| Ctx {
        lang: crate::web::Lang::En,
        remember: false,
        path: "/report".into(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        logged_in: false,
    };
    let now = Utc::now();
    let q = pick(&ctx(&[("period", "quarter"), ("start", "2026-11-15")]), now).unwrap();
    assert_eq!(
        (q.from.to_rfc3339(), q.to.to_rfc3339()),
        (
            "2026-10-01T00:00:00+00:00".into(),
            "2027-01-01T00:00:00+00:00".into()
        )
    );
    let y = pick(&ctx(&[("period", "year"), ("start", "2026-02-01")]), now).unwrap();
    assert_eq!(
        (y.from.to_rfc3339(), y.to.to_rfc3339()),
        (
            "2026-01-01T00:00:00+00:00".into(),
            "2027-01-01T00:00:00+00:00".into()
        )
    );
    let january = pick(
        &ctx(&[]),
        Utc.with_ymd_and_hms(2027, 1, 10, 0, 0, 0).unwrap(),
    )
    .unwrap();
    assert_eq!(
        january.from,
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
    );
}

#[tokio::test]
async fn the_report_page_from_the_store_shows_the_outage_and_links_the_dip_in_both_languages() {
    let dir = tempfile::tempdir().expect("tmp");
    let (store, dip, int) = store_with_events(dir.path()).await;
    let st = state(Some(store));
    for (lang, continuity, class) in [
        ("en", "Supply continuity", "sustained"),
        ("zh-CN", "供电连续性", "长时停电"),
    ] {
        let uri = format!("/report?period=month&start=2026-11-01&lang={lang}");
        let (status, _, html) = get(app(st.clone()), &uri, &[]).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        let text = visible_text(&html);
        assert!(text.contains(continuity), "{text}");
        // The 400-s interruption at 10:00 is one sustained outage, linked to its event.
        assert!(text.contains("2026-11-26 10:00:00"), "{text}");
        assert!(text.contains(class), "{text}");
        assert!(html.contains(&format!("href=\"/events/{int}\"")), "{html}");
        // The dip is a point on the ITIC chart, a link to its page.
        assert!(
            html.contains(&format!("<a href=\"/events/{dip}\"><circle")),
            "{html}"
        );
    }
}

#[tokio::test]
async fn the_report_of_an_ended_period_is_kept_and_a_running_one_is_not() {
    let dir = tempfile::tempdir().expect("tmp");
    let (store, _, _) = store_with_events(dir.path()).await;
    let path = store.path().to_string();
    let st = state(Some(store));
    let ended_from = Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap();
    let ended_to = Utc.with_ymd_and_hms(2021, 1, 1, 0, 0, 0).unwrap();
    let (status, _, _) = get(app(st.clone()), "/report?period=year&start=2020-06-01", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(super::data::report_kept(&path, ended_from, ended_to));
    let running_from = Utc.with_ymd_and_hms(9000, 1, 1, 0, 0, 0).unwrap();
    let running_to = Utc.with_ymd_and_hms(9001, 1, 1, 0, 0, 0).unwrap();
    let (status, _, _) = get(app(st), "/report?period=year&start=9000-03-01", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!super::data::report_kept(&path, running_from, running_to));
}

/// Years chrono reads but the store cannot (a signed or five-digit year, or a period ending in
/// the year 10000) are a 400 page naming the parameter, not a panic on the store's reader
/// answered as "store cannot be read".
#[tokio::test]
async fn a_report_in_years_outside_1970_to_9999_is_a_400_page_not_a_panic() {
    let dir = tempfile::tempdir().expect("tmp");
    let (store, _, _) = store_with_events(dir.path()).await;
    let st = state(Some(store));
    for (uri, name) in [
        (
            "/report?period=custom&from=-262143-01-01&to=2026-01-01",
            "from",
        ),
        (
            "/report?period=custom&from=2026-01-01&to=%2B10000-01-01",
            "to",
        ),
        ("/report?period=year&start=9999-06-01", "start"),
        ("/report?period=month&start=1969-12-01", "start"),
        ("/events?from=-262143-01-01", "from"),
    ] {
        let (status, _, html) = get(app(st.clone()), uri, &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        let text = visible_text(&html);
        assert!(text.contains(&format!("“{name}”")), "{uri}: {text}");
        assert!(text.contains("in the years 1970 to 9999"), "{uri}: {text}");
    }
}

/// A custom range's work grows with its length: ten years (2016–2026, 3 653 days) is a report,
/// a day more is a 400 page saying the limit, in both languages.
#[tokio::test]
async fn a_custom_report_longer_than_ten_years_is_a_400_page() {
    let dir = tempfile::tempdir().expect("tmp");
    let (store, _, _) = store_with_events(dir.path()).await;
    let st = state(Some(store));
    let (status, _, html) = get(
        app(st.clone()),
        "/report?period=custom&from=2016-01-01&to=2026-01-01",
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    for (lang, says) in [("en", "at most ten years"), ("zh-CN", "最长为十年")] {
        let uri = format!("/report?period=custom&from=2016-01-01&to=2026-01-02&lang={lang}");
        let (status, _, html) = get(app(st.clone()), &uri, &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        let text = visible_text(&html);
        assert!(
            text.contains("“to”") && text.contains(says),
            "{uri}: {text}"
        );
    }
}

#[tokio::test]
async fn an_unknown_address_is_a_404_page_or_json_under_the_api() {
    let (status, _, html) = get(
        app(state(None)),
        "/nowhere%3Cb%3E",
        &[("accept-language", "zh-CN")],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{html}");
    let text = visible_text(&html);
    assert!(
        text.contains("未找到") && text.contains("没有地址为 /nowhere"),
        "{text}"
    );
    assert!(!html.contains("<b>"));
    let (status, headers, body) = get(app(state(None)), "/api/v1/nothing", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(headers["content-type"]
        .to_str()
        .unwrap_or("")
        .starts_with("application/json"));
    assert!(body.contains("\"error\""), "{body}");
}
