//! A year's report for one site: a store filled with a year of one site's record (52 560
//! 10-min aggregates × 3 channels, 3 153 600 10-s frequency values, 35 040 15-min meter
//! intervals, a few hundred events and tickets), then `report::load` + `report::build` timed,
//! the JSON, and the HTML document in both languages (what the Report page and
//! `kare report --format html` serve).
//!
//! `cargo bench -p kare --bench report_year` (a plain binary: prints the fill time and the
//! best, median and worst of 5 reports).

use chrono::{DateTime, Duration, TimeZone, Utc};
use kare::report::{self, Period};
use kare::store::*;
use serde_json::json;
use std::time::Instant;

const RUNS: usize = 5;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig {
        synchronous: Synchronous::Normal,
        ..StoreConfig::at(dir.path().join("kare.db"))
    };
    let mut store = Store::open(&cfg).unwrap();
    let from = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    let to = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let t0 = Instant::now();
    fill(&mut store, from, to);
    let filled = t0.elapsed();
    let bytes = std::fs::metadata(dir.path().join("kare.db"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "report_year: store filled in {:.1} s ({} MB)",
        filled.as_secs_f64(),
        bytes / 1_000_000
    );
    drop(store);

    let period = Period { from, to };
    let mut times = Vec::new();
    let mut json_times = Vec::new();
    let mut load_times = Vec::new();
    let mut html_times = Vec::new();
    let mut page_times = Vec::new();
    for _ in 0..RUNS {
        // A fresh connection each time, as `kare report` opens one.
        let store = Store::open(&cfg).unwrap();
        let t = Instant::now();
        let inputs = report::load(&store, &period).unwrap();
        let loaded = t.elapsed();
        let r = report::build(&inputs, &period, to);
        load_times.push(loaded);
        times.push(t.elapsed());
        let t = Instant::now();
        let text = serde_json::to_string(&r).unwrap();
        json_times.push(t.elapsed());
        assert!(text.len() > 1000);
        let t = Instant::now();
        let en = kare::web::report_document(&r, kare::web::i18n::Lang::En);
        let zh = kare::web::report_document(&r, kare::web::i18n::Lang::ZhCn);
        html_times.push(t.elapsed() / 2);
        page_times.push(times[times.len() - 1] + t.elapsed() / 2);
        assert!(en.contains("<svg") && zh.contains("<svg"));
        assert_eq!(
            r.steady_state.frequency.as_ref().unwrap().intervals,
            3_153_600
        );
        assert_eq!(r.steady_state.voltage.as_ref().unwrap().intervals, 157_680);
        assert_eq!(r.energy.days.len(), 365);
    }
    times.sort();
    json_times.sort();
    load_times.sort();
    html_times.sort();
    page_times.sort();
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    println!(
        "report_year: load + build of a year: best {:.0} ms, median {:.0} ms, worst {:.0} ms (of which load {:.0} ms); JSON {:.1} ms",
        ms(times[0]),
        ms(times[RUNS / 2]),
        ms(times[RUNS - 1]),
        ms(load_times[RUNS / 2]),
        ms(json_times[RUNS / 2])
    );
    println!(
        "report_year: HTML document (one language) median {:.0} ms; load + build + HTML: best {:.0} ms, median {:.0} ms, worst {:.0} ms",
        ms(html_times[RUNS / 2]),
        ms(page_times[0]),
        ms(page_times[RUNS / 2]),
        ms(page_times[RUNS - 1])
    );
}

fn fill(store: &mut Store, from: DateTime<Utc>, to: DateTime<Utc>) {
    // 10-min aggregates, three channels; one interval in 200 flagged; a slow daily swing.
    let mut rows = Vec::new();
    let mut t = from;
    let mut i = 0u64;
    while t < to {
        for ch in ["VA", "VB", "VC"] {
            let swing = ((i % 144) as f64 / 144.0 * std::f64::consts::TAU).sin() * 8.0;
            rows.push(AggregateRow {
                source: "feeder-1".into(),
                channel: ch.into(),
                start: t,
                seconds: 600.0,
                udin_v: 230.0,
                mean_v: 230.0 + swing,
                min_v: 225.0 + swing,
                max_v: 235.0 + swing,
                windows: 60_000,
                flagged: i.is_multiple_of(200),
            });
        }
        if rows.len() >= 30_000 {
            store.save_aggregates(&rows).unwrap();
            rows.clear();
        }
        t += Duration::minutes(10);
        i += 1;
    }
    store.save_aggregates(&rows).unwrap();

    // 10-s frequency.
    let mut rows = Vec::new();
    let mut t = from;
    let mut i = 0u64;
    while t < to {
        rows.push(FrequencyRow {
            source: "feeder-1".into(),
            start: t,
            seconds: 10.0,
            nominal_hz: 50.0,
            mean_hz: 50.0 + ((i % 360) as f64 - 180.0) / 1000.0,
            min_hz: 49.9,
            max_hz: 50.1,
            windows: 500,
            flagged: i.is_multiple_of(5000),
        });
        if rows.len() >= 100_000 {
            store.save_frequency(&rows).unwrap();
            rows.clear();
        }
        t += Duration::seconds(10);
        i += 1;
    }
    store.save_frequency(&rows).unwrap();

    // 15-min meter intervals.
    let mut rows = Vec::new();
    let mut t = from;
    let (mut kwh, mut kvarh) = (0.0, 0.0);
    let mut i = 0u64;
    while t < to {
        let kw = 400.0 + (i % 96) as f64 * 5.0;
        kwh += kw / 4.0;
        kvarh += kw / 8.0;
        rows.push(MeterIntervalRow {
            source: "meters".into(),
            device: "incomer".into(),
            start: t,
            seconds: 900.0,
            import_kwh: Some(kwh),
            export_kwh: Some(0.0),
            import_kvarh: Some(kvarh),
            demand_kw: Some(kw),
            max_kw: Some(kw * 1.1),
            power_factor: Some(0.9),
            thd_u_pct: Some(2.0 + (i % 7) as f64 / 10.0),
            samples: 90,
        });
        t += Duration::minutes(15);
        i += 1;
    }
    store.save_meter_intervals(&rows).unwrap();

    // Events and tickets: a dip every other day, a swell a week, a momentary interruption (with
    // its dip) every fortnight and a sustained outage a month, each outage with a repair ticket.
    let event = |kind: &str, start: DateTime<Utc>, secs: f64, extreme: f64| StoredEvent {
        source: "feeder-1".into(),
        source_key: format!("{kind}@{}", format_ts(start)),
        site_id: Some("SITE-1".into()),
        kind: kind.into(),
        start,
        end: Some(start + Duration::milliseconds((secs * 1e3) as i64)),
        duration_s: Some(secs),
        extreme_pct: Some(extreme),
        worst_channel: Some("VA".into()),
        open: false,
        json: json!({"kind": kind, "itic": "below", "semi_f47": "inside",
            "en50160": {"row": "70>u>=40", "column": "10-200ms"}}),
        profile_json: None,
        waveform: None,
    };
    for d in 0..365u32 {
        let day = from + Duration::days(i64::from(d)) + Duration::hours(9);
        if d.is_multiple_of(2) {
            store.upsert_event(&event("dip", day, 0.12, 62.0)).unwrap();
        }
        if d % 7 == 3 {
            store
                .upsert_event(&event("swell", day, 0.3, 114.0))
                .unwrap();
        }
        let outage = match d % 30 {
            5 | 20 => Some(1.5),
            12 => Some(1800.0),
            _ => None,
        };
        if let Some(secs) = outage {
            let at = day + Duration::hours(3);
            store
                .upsert_event(&event(
                    "dip",
                    at - Duration::milliseconds(10),
                    secs + 0.02,
                    0.2,
                ))
                .unwrap();
            let id = store
                .upsert_event(&event("interruption", at, secs, 0.2))
                .unwrap();
            store
                .save_ticket(&TicketWrite {
                    key: format!("SITE-1-outage-{}", at.format("%Y%m%dT%H%M%SZ")),
                    kind: "repair".into(),
                    state: TicketState::Closed,
                    priority: "P1".into(),
                    site_id: "SITE-1".into(),
                    customer_id: "CUST-1".into(),
                    title: "Supply restored".into(),
                    body_json: json!({"detail": {"failures": 1}}),
                    event_id: Some(id),
                    opened_at: Some(at),
                    closed_at: Some(at + Duration::milliseconds((secs * 1e3) as i64)),
                    duration_s: Some(secs),
                    deliver_to: vec![],
                })
                .unwrap();
        }
    }
}
