//! Every dashboard panel's query runs on a real InfluxDB 1.x and returns what the panel needs.
//!
//! Two appliances write representative data through the sink (the producers, the buffered
//! writer, v1 `/write`): site S1 (critical, CUST-A) with readings, meter values, events of
//! every kind, closed and open outages, and its supply lost now; site S2 (standard, CUST-B),
//! healthy. Then every target of every panel of every `dashboards/json/*.json` (and every
//! template variable) is taken in raw InfluxQL, Grafana's macros are substituted
//! (`$timeFilter` → `time > now() - 1h`, `$__interval` → `10s`, `$__range_s` → `3600`, and the
//! template variables as Grafana writes them into `=~ /^$var$/`: one value, then "All" as
//! `(a|b)`), run, and must come back without error and with at least one value.
//! A few panels' numbers are checked against what was written.

mod influx_support;

use chrono::{DateTime, Duration, Utc};
use influx_support::*;
use kare::actions::rules::{TicketKind, TicketOp, TicketState};
use kare::actions::tickets::TicketBook;
use kare::pipeline::event_log::EventLog;
use kare::pipeline::events::ReportedEvent;
use kare::sinks::influx::producers::*;
use kare::sinks::influx::{Health, Point};
use kare::sources::meters::readings::{MeterReading, Quantity};
use kare::sources::pqlink::{ProfileRecord, Reading, RmsProfile};
use kare_firmware::classify;
use kare_firmware::detector::EventKind;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

fn event(kind: EventKind, start: DateTime<Utc>, dur: Option<f64>, pct: f64) -> ReportedEvent {
    let judged = dur.unwrap_or(0.05) as f32;
    ReportedEvent {
        kind,
        start,
        offset_s: 0.0,
        duration_s: dur,
        extreme_pct: pct,
        worst_channel: "VA".into(),
        channel_extremes_pct: vec![
            ("VA".into(), Some(pct)),
            ("VB".into(), Some(pct + 5.0)),
            ("VC".into(), None),
        ],
        itic: classify::itic(kind, judged, pct as f32),
        semi_f47: classify::semi_f47(kind, judged, pct as f32),
        en50160: classify::en50160_cell(kind, judged, pct as f32),
        ieee1159: classify::ieee1159(kind, judged, 50.0),
    }
}

fn ticket(
    book: &TicketBook,
    key: &str,
    kind: TicketKind,
    state: TicketState,
    opened: DateTime<Utc>,
    dur: Option<f64>,
    class: Option<&str>,
) -> kare::actions::tickets::TicketRecord {
    book.apply(
        TicketOp {
            key: key.into(),
            kind,
            state,
            priority: "P1".into(),
            title: format!("{key} title"),
            opened_at: opened,
            closed_at: dur.map(|d| opened + Duration::milliseconds((d * 1000.0) as i64)),
            duration_s: dur,
            detail: kare::actions::rules::TicketDetail::from_json(
                TicketKind::Repair,
                &serde_json::json!({"classification": class, "failures": 1, "on_battery": false}),
            )
            .unwrap(),
        },
        opened,
    )
}

/// Everything site S1 writes (its supply is lost now).
fn site1(now: DateTime<Utc>) -> Vec<Point> {
    let mut out = Vec::new();
    let t0 = now - Duration::minutes(30);

    // Two minutes of half cycles from one three-phase node, with a dip in the middle.
    let mut agg = SecondAggregator::new();
    agg.set_udin("node-1", 57.7);
    for i in 0..12_000i64 {
        let start = t0 + Duration::milliseconds(i * 10);
        let in_dip = (6000..6012).contains(&i);
        if i == 6000 {
            agg.set_event_active("node-1", true);
        }
        if i == 6012 {
            agg.set_event_active("node-1", false);
        }
        let v = if in_dip {
            37.5
        } else {
            57.7 + (i % 7) as f32 * 0.05
        };
        agg.push(
            &Reading {
                source: Arc::from("node-1"),
                seq: i as u32,
                start,
                end: start + Duration::milliseconds(20),
                frequency_hz: 50.0 + (i % 11) as f32 * 0.002,
                volts: [v, v + 0.2, v - 0.2, 0.0],
                channels: 3,
                locked: true,
            },
            &mut out,
        );
    }
    agg.finish(&mut out);

    // Meter polls every 10 s for 20 minutes; 15-minute interval data.
    let mut demand = DemandTracker::default();
    for k in 0..120 {
        let at = t0 + Duration::seconds(10 * k);
        let r = |q, v| MeterReading {
            source: Arc::from("rs485"),
            device: Arc::from("incomer"),
            at,
            quantity: q,
            value: v,
        };
        let polled = vec![
            r(Quantity::VoltageA, 10_050.0 + k as f64),
            r(Quantity::VoltageB, 10_020.0),
            r(Quantity::VoltageC, 10_080.0),
            r(Quantity::ThdUA, 2.1),
            r(Quantity::ThdUB, 2.4),
            r(Quantity::ThdUC, 4.6),
            r(Quantity::VoltageUnbalance, 1.1),
            r(Quantity::PowerFactorTotal, 0.92),
            r(Quantity::DemandKw, 600.0),
        ];
        polled.iter().for_each(|m| demand.observe(m));
        out.extend(points_from_meter_readings(&polled));
    }
    out.extend(points_from_interval(&[MeterReading {
        source: Arc::from("rs485"),
        device: Arc::from("interval"),
        at: t0,
        quantity: Quantity::EnergyImportKwh,
        value: 123_456.5,
    }]));

    // Events: a dip (with its profile), a swell, an interruption, a deep dip (below ITIC and
    // SEMI F47), a lost sensor, a dip going on.
    let log = EventLog::default();
    let dip_start = t0 + Duration::seconds(60);
    let dip = log.voltage_ended(
        "node-1",
        1,
        event(EventKind::Dip, dip_start, Some(0.12), 65.0),
    );
    let profile = RmsProfile {
        pre_records: 2,
        skipped_records: 0,
        records: (0..20)
            .map(|i| ProfileRecord {
                start: dip_start + Duration::milliseconds(10 * i - 20),
                end: dip_start + Duration::milliseconds(10 * i),
                pct: vec![if (2..14).contains(&i) { 65.0 } else { 100.0 }, 99.0, 101.0],
            })
            .collect(),
    };
    let dip = log.attach_profile("node-1", 1, profile).unwrap_or(dip);
    out.extend(points_from_event(&dip));
    out.extend(points_from_event(&log.voltage_ended(
        "node-1",
        2,
        event(
            EventKind::Swell,
            t0 + Duration::seconds(90),
            Some(0.3),
            115.0,
        ),
    )));
    out.extend(points_from_event(&log.voltage_ended(
        "node-1",
        3,
        event(
            EventKind::Interruption,
            t0 + Duration::seconds(100),
            Some(1.5),
            2.0,
        ),
    )));
    out.extend(points_from_event(&log.voltage_ended(
        "node-1",
        5,
        event(EventKind::Dip, t0 + Duration::seconds(105), Some(0.3), 45.0),
    )));
    log.sensor_lost("node-1", t0 + Duration::seconds(110), "silent 2 s".into());
    if let Some(back) = log.sensor_back("node-1", t0 + Duration::seconds(115)) {
        out.extend(points_from_event(&back));
    }
    out.extend(points_from_event(&log.voltage_started(
        "node-1",
        4,
        event(EventKind::Dip, now - Duration::seconds(30), None, 40.0),
    )));

    // Tickets: a sustained and a momentary outage (closed), a planned one, one open now.
    let book = TicketBook::default();
    let sustained = t0 + Duration::minutes(5);
    out.push(points_from_ticket(
        &ticket(
            &book,
            "S1-outage-1",
            TicketKind::Repair,
            TicketState::Closed,
            sustained,
            Some(600.0),
            Some("sustained"),
        ),
        demand.before(sustained),
    ));
    out.push(points_from_ticket(
        &ticket(
            &book,
            "S1-outage-2",
            TicketKind::Repair,
            TicketState::Closed,
            t0 + Duration::minutes(20),
            Some(30.0),
            Some("momentary"),
        ),
        demand.before(t0 + Duration::minutes(20)),
    ));
    out.push(points_from_ticket(
        &ticket(
            &book,
            "S1-planned-1",
            TicketKind::Planned,
            TicketState::Closed,
            t0 + Duration::minutes(25),
            Some(120.0),
            None,
        ),
        None,
    ));
    out.push(points_from_ticket(
        &ticket(
            &book,
            "S1-outage-3",
            TicketKind::Repair,
            TicketState::Open,
            now - Duration::minutes(2),
            None,
            None,
        ),
        None,
    ));

    // Health every 20 s for 40 minutes; the supply went two minutes ago.
    for k in 0..120 {
        let at = now - Duration::seconds(2400) + Duration::seconds(20 * k);
        let lost = at >= now - Duration::minutes(2);
        out.push(points_from_health(&Health {
            at,
            uptime_s: 10_000.0 + 20.0 * k as f64,
            supply_ok: Some(!lost),
            outage_open: lost,
            sources: 2,
            sources_connected: 2,
            clock_synced: Some(true),
            on_battery: Some(lost),
            version: "0.1.0".into(),
            ..Default::default()
        }));
    }
    out
}

/// Site S2: healthy, a few readings.
fn site2(now: DateTime<Utc>) -> Vec<Point> {
    let mut out = Vec::new();
    for k in 0..120 {
        out.push(points_from_health(&Health {
            at: now - Duration::seconds(2400) + Duration::seconds(20 * k),
            uptime_s: 500.0 + 20.0 * k as f64,
            supply_ok: Some(true),
            sources: 1,
            sources_connected: 1,
            ..Default::default()
        }));
    }
    out
}

/// Every target and variable query of a dashboard, with where it came from.
fn queries(d: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    fn panels(list: &Value, out: &mut Vec<(String, String)>) {
        for p in list.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("?").to_string();
            if p["type"] != "row" {
                assert_eq!(
                    p["datasource"]["uid"], "kare-influxdb",
                    "panel {title}: datasource"
                );
                let targets = p["targets"].as_array().expect("targets");
                assert!(!targets.is_empty(), "panel {title} has no query");
                for t in targets {
                    assert_eq!(t["rawQuery"], true, "panel {title}: raw InfluxQL expected");
                    let q = t["query"].as_str().expect("query").to_string();
                    out.push((format!("panel '{title}' ({})", t["refId"]), q));
                }
            }
            panels(&p["panels"], out);
        }
    }
    panels(&d["panels"], &mut out);
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] == "query" {
            out.push((
                format!("variable ${}", v["name"].as_str().unwrap()),
                v["query"].as_str().unwrap().to_string(),
            ));
        }
    }
    out
}

fn substitute(q: &str, vars: &BTreeMap<&str, &str>) -> String {
    let mut s = q
        .replace("$timeFilter", "time > now() - 1h")
        .replace("$__interval", "10s")
        .replace("$__range_s", "3600");
    for (k, v) in vars {
        s = s.replace(&format!("${k}"), v);
    }
    s
}

fn first_number(v: &Value) -> Option<f64> {
    series(v).first()?["values"]
        .as_array()?
        .iter()
        .find_map(|row| row.as_array()?.iter().skip(1).find_map(|x| x.as_f64()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influx_every_dashboard_query_runs_and_returns_data() {
    let server = Server::influx1();
    let url = server.url();
    create_db(&url, "kare").await;
    let now = Utc::now() - Duration::seconds(5);

    let mut cfg1 = v1_config(&url, "kare", "S1", "CUST-A", "critical");
    cfg1.stats_interval_s = 0.2; // the sink's own kare_influx points, for the backlog panel
    let s1 = Sink::start(cfg1);
    let s2 = Sink::start(v1_config(&url, "kare", "S2", "CUST-B", "standard"));
    let n1 = s1.send(site1(now));
    s2.send(site2(now));
    s1.wait(
        "kare_influx points",
        std::time::Duration::from_secs(10),
        |s| s.received_points >= n1 as u64 + 2,
    )
    .await;
    s1.wait_all_written(std::time::Duration::from_secs(30))
        .await;
    s2.wait_all_written(std::time::Duration::from_secs(30))
        .await;
    for s in [s1.stop().await, s2.stop().await] {
        assert_eq!(s.rejected_points + s.dropped_unencodable, 0, "{s:#?}");
    }

    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dashboards/json");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("dashboards/json")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        3,
        "three dashboards expected in {}",
        dir.display()
    );

    let one: BTreeMap<&str, &str> =
        [("tier", "critical"), ("customer", "CUST-A"), ("site", "S1")].into();
    let all: BTreeMap<&str, &str> = [
        ("tier", "(critical|standard)"),
        ("customer", "(CUST-A|CUST-B)"),
        ("site", "(S1|S2)"),
    ]
    .into();
    let mut ran = 0;
    let mut numbers: BTreeMap<String, f64> = BTreeMap::new();
    let mut uids = Vec::new();
    for f in &files {
        let d: Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        uids.push(d["uid"].as_str().unwrap().to_string());
        let names: Vec<&str> = d["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["tier", "customer", "site"], "{}", f.display());
        for (what, q) in queries(&d) {
            for vars in [&one, &all] {
                let sq = substitute(&q, vars);
                assert!(
                    !sq.contains("$tier")
                        && !sq.contains("$site")
                        && !sq.contains("$customer")
                        && !sq.contains("$__"),
                    "{what}: macro left in {sq}"
                );
                let v = influxql(&url, "kare", &sq).await;
                let r = &v["results"][0];
                assert!(
                    r.get("error").is_none(),
                    "{}: {what}: {sq}\n-> {r}",
                    f.display()
                );
                let rows: usize = series(&v)
                    .iter()
                    .map(|s| s["values"].as_array().map_or(0, |a| a.len()))
                    .sum();
                assert!(rows > 0, "{}: {what}: no data for\n{sq}", f.display());
                ran += 1;
                if std::ptr::eq(vars, &one) {
                    if let Some(x) = first_number(&v) {
                        assert!(
                            numbers.insert(what.clone(), x).is_none(),
                            "two panels {what}"
                        );
                    }
                }
            }
        }
    }
    uids.sort();
    assert_eq!(uids, ["kare-fleet", "kare-pq", "kare-reliability"]);

    // Numbers the panels must show for what S1 wrote.
    let num = |what: &str| {
        *numbers
            .get(what)
            .unwrap_or_else(|| panic!("no number for {what}; have {:?}", numbers.keys()))
    };
    assert_eq!(num("panel 'Sustained interruptions' (\"A\")"), 1.0);
    assert_eq!(num("panel 'Momentary interruptions' (\"A\")"), 1.0);
    assert_eq!(num("panel 'Time without supply' (\"A\")"), 630.0);
    assert!((num("panel 'Availability' (\"A\")") - (100.0 - 630.0 / 3600.0 * 100.0)).abs() < 1e-9);
    assert!((num("panel 'Energy not supplied' (\"A\")") - 600.0 * 630.0 / 3600.0).abs() < 1e-9);
    assert_eq!(num("panel 'Planned outages' (\"A\")"), 1.0);
    assert_eq!(num("panel 'Outages open' (\"A\")"), 1.0);
    assert_eq!(num("panel 'Sites with supply lost now' (\"A\")"), 1.0);
    assert_eq!(num("panel 'Events in progress' (\"A\")"), 1.0);
    assert_eq!(num("panel 'Dips by EN 50160 cell' (\"A\")"), 1.0);
    // The 65 % dip of 120 ms is under ITIC's 70 % edge too; the swell (115 %, 0.3 s) is inside.
    assert_eq!(
        num("panel 'Events outside ITIC' (\"A\")"),
        3.0,
        "dips and interruption"
    );
    assert_eq!(num("panel 'Dips below SEMI F47' (\"A\")"), 1.0);
    eprintln!("{ran} dashboard queries ran, each with data");
}
