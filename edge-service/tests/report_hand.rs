//! The report on a month whose answer was worked out by hand: rows written into a real store
//! (as the service writes them), read back with `report::load`, and the JSON compared with the
//! figures in the comments.
//!
//! November 2026, 720 h; site SITE-HAND, 10 kV, UTC+8, momentary/sustained at 300 s, PF 0.90.
//! Witnesses: the sensor node `feeder-1` (half-cycle) and the meter bus `meters` (device
//! `incomer`, coarse outages and 15-min intervals).

use chrono::{DateTime, Duration, TimeZone, Utc};
use kare::report::{self, Period};
use kare::store::*;
use serde_json::{json, Value};

fn at(d: u32, h: u32, m: u32, s: u32, ms: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, d, h, m, s).unwrap() + Duration::milliseconds(ms)
}

/// itic, semi_f47, en50160 (row, column) as the pipeline writes them.
type Class<'a> = (&'a str, Option<&'a str>, Option<(&'a str, &'a str)>);

struct Ev<'a> {
    kind: &'a str,
    source: &'a str,
    start: DateTime<Utc>,
    secs: f64,
    extreme: f64,
    /// itic, semi_f47, en50160 (row, column) as the pipeline writes them; `None`: not written.
    class: Option<Class<'a>>,
}

fn put(store: &mut Store, e: Ev) -> i64 {
    let end = e.start + Duration::microseconds((e.secs * 1e6) as i64);
    let mut json = json!({"kind": e.kind, "start": format_ts(e.start), "duration_s": e.secs,
        "extreme_pct": e.extreme, "worst_channel": "VA",
        "channel_extremes_pct": {"VA": e.extreme, "VB": e.extreme, "VC": e.extreme}});
    if let Some((itic, semi, cell)) = e.class {
        json["itic"] = json!(itic);
        json["semi_f47"] = json!(semi);
        json["en50160"] = cell.map_or(Value::Null, |(r, c)| json!({"row": r, "column": c}));
    }
    store
        .upsert_event(&StoredEvent {
            source: e.source.into(),
            source_key: format!("{}@{}", e.kind, format_ts(e.start)),
            site_id: Some("SITE-HAND".into()),
            kind: e.kind.into(),
            start: e.start,
            end: Some(end),
            duration_s: Some(e.secs),
            extreme_pct: Some(e.extreme),
            worst_channel: (e.source == "feeder-1").then(|| "VA".into()),
            open: false,
            json,
            profile_json: None,
            waveform: None,
        })
        .unwrap()
}

/// A closed ticket with one webhook delivery, accepted at `told` (if any).
#[allow(clippy::too_many_arguments)]
fn ticket(
    store: &mut Store,
    key: &str,
    kind: &str,
    state: TicketState,
    opened: DateTime<Utc>,
    closed: DateTime<Utc>,
    detail: Value,
    told: Option<DateTime<Utc>>,
) {
    let saved = store
        .save_ticket(&TicketWrite {
            key: key.into(),
            kind: kind.into(),
            state,
            priority: "P1".into(),
            site_id: "SITE-HAND".into(),
            customer_id: "CUST-H".into(),
            title: format!("{kind} {key}"),
            body_json: json!({"title": format!("{kind} {key}"), "detail": detail}),
            event_id: None,
            opened_at: Some(opened),
            closed_at: Some(closed),
            duration_s: Some((closed - opened).num_milliseconds() as f64 / 1e3),
            deliver_to: vec![DeliverTo {
                channel: Channel::Webhook,
                endpoint: "desk".into(),
                payload_json: json!({}),
            }],
        })
        .unwrap();
    if let Some(told) = told {
        store
            .record_attempt(&Attempt {
                outbox_id: saved.outbox_ids[0],
                at: told,
                detail: "HTTP 200 OK".into(),
                latency: std::time::Duration::from_millis(5),
                outcome: AttemptOutcome::Delivered,
            })
            .unwrap();
    }
}

fn interval(start: DateTime<Utc>, kwh: f64, kvarh: f64, kw: f64, thd: f64) -> MeterIntervalRow {
    MeterIntervalRow {
        source: "meters".into(),
        device: "incomer".into(),
        start,
        seconds: 900.0,
        import_kwh: Some(kwh),
        export_kwh: None,
        import_kvarh: Some(kvarh),
        demand_kw: Some(kw),
        max_kw: Some(kw),
        power_factor: None,
        thd_u_pct: Some(thd),
        samples: 90,
    }
}

fn aggregate(start: DateTime<Utc>, mean_v: f64, flagged: bool) -> AggregateRow {
    AggregateRow {
        source: "feeder-1".into(),
        channel: "VA".into(),
        start,
        seconds: 600.0,
        udin_v: 230.0,
        mean_v,
        min_v: mean_v,
        max_v: mean_v,
        windows: 60_000,
        flagged,
    }
}

fn frequency(start: DateTime<Utc>, mean_hz: f64, flagged: bool) -> FrequencyRow {
    FrequencyRow {
        source: "feeder-1".into(),
        start,
        seconds: 10.0,
        nominal_hz: 50.0,
        mean_hz,
        min_hz: mean_hz,
        max_hz: mean_hz,
        windows: 500,
        flagged,
    }
}

struct Month {
    report: Value,
    sustained_id: i64,
    reclose_ids: [i64; 3],
    meter_only_id: i64,
    planned_id: i64,
    pq_ids: [i64; 5],
}

fn november() -> Month {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&StoreConfig::at(dir.path().join("kare.db"))).unwrap();
    store
        .save_site(&SiteRecord {
            id: "SITE-HAND".into(),
            customer_id: "CUST-H".into(),
            customer_name: "Hand Worked Hospital".into(),
            tier: "critical".into(),
            address: "1 Test Road".into(),
            nominal_kv: 10.0,
            utc_offset_minutes: 480,
            momentary_max_s: 300.0,
            nominal_hz: 50.0,
            pf_standard: 0.90,
            account_manager: "A. Manager".into(),
        })
        .unwrap();
    let node = "feeder-1";
    let ev = |kind, source, start, secs, extreme| Ev {
        kind,
        source,
        start,
        secs,
        extreme,
        class: Some(("below", Some("inside"), None)),
    };

    // 1. A sustained outage on 10 Nov, 02:00:00–02:10:00 (600 s), seen by the node and, a
    //    poll later, by the meter (02:00:03–02:10:04): one interruption, timed by the node. The
    //    dip around it (01:59:59.990–02:10:00.020) is the interruption seen from above.
    put(
        &mut store,
        ev("dip", node, at(10, 1, 59, 59, 990), 600.03, 0.4),
    );
    let sustained_id = put(
        &mut store,
        ev("interruption", node, at(10, 2, 0, 0, 0), 600.0, 0.4),
    );
    put(
        &mut store,
        ev("outage_coarse", "meters", at(10, 2, 0, 3, 0), 601.0, 0.3),
    );
    // The repair ticket: told at +850 ms; a generator requested at 02:05, cancelled at 02:10,
    // told at 02:05:00.400 (300 400 ms after the failure it is for).
    let repair1 = "SITE-HAND-outage-20261110T020000Z";
    ticket(
        &mut store,
        repair1,
        "repair",
        TicketState::Closed,
        at(10, 2, 0, 0, 0),
        at(10, 2, 10, 0, 0),
        json!({"seen_by": {"feeder-1": "half-cycle", "meters/incomer": "meter"}, "failures": 1}),
        Some(at(10, 2, 0, 0, 850)),
    );
    ticket(
        &mut store,
        "SITE-HAND-generator-20261110T020000Z",
        "generator",
        TicketState::Cancelled,
        at(10, 2, 5, 0, 0),
        at(10, 2, 10, 0, 0),
        json!({"outage_key": repair1, "outage_started": "2026-11-10T02:00:00.000Z"}),
        Some(at(10, 2, 5, 0, 400)),
    );

    // 2. A reclosing sequence on 15 Nov: three interruptions 08:00:00 (0.5 s), 08:00:05 (1 s),
    //    08:00:20 (2 s), each inside its dip; one repair ticket, 3 failures, told at +500 ms.
    let mut reclose_ids = [0; 3];
    for (i, (s, secs)) in [(0, 0.5), (5, 1.0), (20, 2.0)].into_iter().enumerate() {
        put(
            &mut store,
            ev("dip", node, at(15, 8, 0, s, -10), secs + 0.03, 0.2),
        );
        reclose_ids[i] = put(
            &mut store,
            ev("interruption", node, at(15, 8, 0, s, 0), secs, 0.2),
        );
    }
    ticket(
        &mut store,
        "SITE-HAND-outage-20261115T080000Z",
        "repair",
        TicketState::Closed,
        at(15, 8, 0, 0, 0),
        at(15, 8, 0, 22, 0),
        json!({"failures": 3}),
        Some(at(15, 8, 0, 0, 500)),
    );

    // 3. A 30-s loss on 20 Nov 12:00 that only the meter saw (the node was away): timed by the meter.
    let meter_only_id = put(
        &mut store,
        ev("outage_coarse", "meters", at(20, 12, 0, 0, 0), 30.0, 0.1),
    );

    // 4. The planned outage on 25 Nov, 01:00–03:00 (7 200 s), inside planned ticket PO-2026-11-25.
    let planned_id = put(
        &mut store,
        ev("interruption", node, at(25, 1, 0, 0, 0), 7200.0, 0.1),
    );
    ticket(
        &mut store,
        "SITE-HAND-planned-20261125T010000Z",
        "planned",
        TicketState::Closed,
        at(25, 1, 0, 0, 0),
        at(25, 3, 0, 0, 0),
        json!({"failures": 1, "planned_reference": "PO-2026-11-25"}),
        None,
    );

    // 5. Dips and swells in known cells (ITIC and SEMI F47 worked from domain.md §3):
    //    A dip 85 %, 0.15 s: 90>u>=80 × 10-200ms; ITIC inside (70 % from 20 ms); F47 inside (50 %).
    //    B dip 60 %, 0.3 s: 70>u>=40 × 200-500ms; ITIC below (70 %); F47 below (70 % to 0.5 s).
    //    C dip 75 %, 2 s: 80>u>=70 × 1-5s; ITIC below (80 % from 0.5 s); F47 inside (none after 1 s).
    //    D swell 115 %, 0.3 s: 120>u>110 × 10-500ms; ITIC inside (120 % to 0.5 s).
    //    E swell 125 %, 1 s: u>=120 × 0.5-5s; ITIC above (110 % after 0.5 s). Its JSON has no
    //      classification (an older kare): the cell is worked out from duration and maximum.
    //    And a dip from 31 Oct 23:59:59.900 (0.2 s) that overlaps the month but is October's.
    let c = |itic, semi, row, col| Some((itic, semi, Some((row, col))));
    let a = put(
        &mut store,
        Ev {
            class: c("inside", Some("inside"), "90>u>=80", "10-200ms"),
            ..ev("dip", node, at(5, 10, 0, 0, 0), 0.15, 85.0)
        },
    );
    let b = put(
        &mut store,
        Ev {
            class: c("below", Some("below"), "70>u>=40", "200-500ms"),
            ..ev("dip", node, at(6, 10, 0, 0, 0), 0.3, 60.0)
        },
    );
    let cc = put(
        &mut store,
        Ev {
            class: c("below", Some("inside"), "80>u>=70", "1-5s"),
            ..ev("dip", node, at(7, 10, 0, 0, 0), 2.0, 75.0)
        },
    );
    let d = put(
        &mut store,
        Ev {
            class: c("inside", None, "120>u>110", "10-500ms"),
            ..ev("swell", node, at(8, 10, 0, 0, 0), 0.3, 115.0)
        },
    );
    let e = put(
        &mut store,
        Ev {
            class: None,
            ..ev("swell", node, at(9, 10, 0, 0, 0), 1.0, 125.0)
        },
    );
    put(
        &mut store,
        Ev {
            class: c("inside", Some("inside"), "90>u>=80", "10-200ms"),
            ..ev(
                "dip",
                node,
                at(1, 0, 0, 0, 0) - Duration::milliseconds(100),
                0.2,
                85.0,
            )
        },
    );

    // 6. The meter's 15-min intervals on 10 Nov (registers at each interval's end):
    //    start  kWh   kvarh  demand kW  THD %
    //    01:30  1000  500    600        2.5
    //    01:45  1150  580    600        2.5
    //    02:00  1200  620    200        3.0   (the outage took 10 of its 15 minutes)
    //    02:15  1350  700    600        4.5
    //    The 01:30 interval has no predecessor: its energy is unknown. Then 150 + 50 + 150 =
    //    350 kWh and 80 + 40 + 80 = 200 kvarh, all on the local day 2026-11-10 (UTC+8).
    store
        .save_meter_intervals(&[
            interval(at(10, 1, 30, 0, 0), 1000.0, 500.0, 600.0, 2.5),
            interval(at(10, 1, 45, 0, 0), 1150.0, 580.0, 600.0, 2.5),
            interval(at(10, 2, 0, 0, 0), 1200.0, 620.0, 200.0, 3.0),
            interval(at(10, 2, 15, 0, 0), 1350.0, 700.0, 600.0, 4.5),
        ])
        .unwrap();

    // 7. Six 10-min voltage means of VA on 5 Nov (Udin 230 V): 230, 240 (+4.3 %), 250 (+8.7 %),
    //    200 (−13 %), 231 flagged, 230.
    let volts = [
        (230.0, false),
        (240.0, false),
        (250.0, false),
        (200.0, false),
        (231.0, true),
        (230.0, false),
    ];
    let rows: Vec<AggregateRow> = volts
        .iter()
        .enumerate()
        .map(|(i, (v, f))| aggregate(at(5, 0, 0, 0, 0) + Duration::minutes(10 * i as i64), *v, *f))
        .collect();
    store.save_aggregates(&rows).unwrap();

    // 8. Ten 10-s frequency values: 50.00 × 6, 50.15, 50.25, 49.40, and 45.00 flagged.
    let hz = [50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.15, 50.25, 49.4, 45.0];
    let rows: Vec<FrequencyRow> = hz
        .iter()
        .enumerate()
        .map(|(i, f)| {
            frequency(
                at(5, 0, 0, 0, 0) + Duration::seconds(10 * i as i64),
                *f,
                i == 9,
            )
        })
        .collect();
    store.save_frequency(&rows).unwrap();

    let period = Period {
        from: at(1, 0, 0, 0, 0),
        to: Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
    };
    let inputs = report::load(&store, &period).unwrap();
    let r = report::build(
        &inputs,
        &period,
        Utc.with_ymd_and_hms(2026, 12, 2, 0, 0, 0).unwrap(),
    );
    Month {
        report: serde_json::to_value(&r).unwrap(),
        sustained_id,
        reclose_ids,
        meter_only_id,
        planned_id,
        pq_ids: [a, b, cc, d, e],
    }
}

#[test]
fn continuity_is_one_interruption_per_outage_with_maifie_and_planned_apart() {
    let m = november();
    let s = &m.report["supply"];
    let list = s["interruptions"].as_array().unwrap();
    // 1 sustained + 3 reclosing + 1 meter-only + 1 planned = 6 interruptions.
    let summary: Vec<Value> = list
        .iter()
        .map(|i| {
            json!([
                i["start"],
                i["duration_s"],
                i["class"],
                i["planned"],
                i["event_id"],
                i["ticket"],
                i["energy_not_supplied_kwh"],
                i["timed_by"],
                i["momentary_event"]
            ])
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            // ENS: 600 kW (the 01:45 interval, the last that ended by 02:00) × 600 s = 100 kWh.
            json!([
                "2026-11-10T02:00:00.000Z",
                600.0,
                "sustained",
                false,
                m.sustained_id,
                "SITE-HAND-outage-20261110T020000Z",
                100.0,
                "half-cycle",
                null
            ]),
            json!([
                "2026-11-15T08:00:00.000Z",
                0.5,
                "momentary",
                false,
                m.reclose_ids[0],
                "SITE-HAND-outage-20261115T080000Z",
                null,
                "half-cycle",
                0
            ]),
            json!([
                "2026-11-15T08:00:05.000Z",
                1.0,
                "momentary",
                false,
                m.reclose_ids[1],
                "SITE-HAND-outage-20261115T080000Z",
                null,
                "half-cycle",
                0
            ]),
            json!([
                "2026-11-15T08:00:20.000Z",
                2.0,
                "momentary",
                false,
                m.reclose_ids[2],
                "SITE-HAND-outage-20261115T080000Z",
                null,
                "half-cycle",
                0
            ]),
            json!([
                "2026-11-20T12:00:00.000Z",
                30.0,
                "momentary",
                false,
                m.meter_only_id,
                null,
                null,
                "meter",
                1
            ]),
            json!([
                "2026-11-25T01:00:00.000Z",
                7200.0,
                "sustained",
                true,
                m.planned_id,
                "SITE-HAND-planned-20261125T010000Z",
                null,
                "half-cycle",
                null
            ]),
        ]
    );
    assert_eq!(list[0]["witnesses"], json!(["feeder-1", "meters"]));
    // Totals, by hand:
    //   sustained: 600 s + 7 200 s = 7 800 s = 130 min (planned included, as RS-1 counts it);
    //   without supply: 7 800 + 0.5 + 1 + 2 + 30 = 7 833.5 s = 130.558 min;
    //   momentary events: {08:00:00, :05, :20} (all within 300 s of the first) and {20 Nov} = 2;
    //   availability: 100 × (1 − 130 / (60 × 720)) = 99.69907 %; AIHC-1: 130 / 60 = 2.16667 h.
    let mut totals = s.clone();
    totals.as_object_mut().unwrap().remove("interruptions");
    assert_eq!(
        totals,
        json!({
            "momentary_max_s": 300.0,
            "sustained_interruptions": 2,
            "momentary_interruptions": 4,
            "momentary_events": 2,
            "sustained_minutes": 130.0,
            "minutes_without_supply": 130.558,
            "longest_interruption_s": 7200.0,
            "availability_pct": 99.69907,
            "aihc1_h": 2.16667,
            "planned": {"count": 1, "minutes": 120.0},
            "energy_not_supplied_kwh": 100.0
        })
    );
}

#[test]
fn dips_and_swells_fill_their_en50160_cells_and_dips_around_interruptions_are_not_counted() {
    let m = november();
    let pq = &m.report["power_quality"];
    // Dips A, B, C (the 4 dips around interruptions and October's are not counted); swells D, E.
    // Below ITIC: B, C = 2; above ITIC: E = 1 (counted apart since the review's F4: `below_itic`
    // means below, and E is a swell over the upper edge). Below F47: B = 1.
    assert_eq!(
        [
            &pq["dips"],
            &pq["swells"],
            &pq["below_itic"],
            &pq["above_itic"],
            &pq["below_semi_f47"]
        ],
        [&json!(3), &json!(2), &json!(2), &json!(1), &json!(1)]
    );
    assert_eq!(
        pq["en50160_dips"],
        json!({
            "90>u>=80": {"10-200ms": 1, "200-500ms": 0, "0.5-1s": 0, "1-5s": 0, "5-60s": 0},
            "80>u>=70": {"10-200ms": 0, "200-500ms": 0, "0.5-1s": 0, "1-5s": 1, "5-60s": 0},
            "70>u>=40": {"10-200ms": 0, "200-500ms": 1, "0.5-1s": 0, "1-5s": 0, "5-60s": 0},
            "40>u>=5": {"10-200ms": 0, "200-500ms": 0, "0.5-1s": 0, "1-5s": 0, "5-60s": 0},
            "5>u": {"10-200ms": 0, "200-500ms": 0, "0.5-1s": 0, "1-5s": 0, "5-60s": 0}
        })
    );
    assert_eq!(
        pq["en50160_swells"],
        json!({
            "u>=120": {"10-500ms": 0, "0.5-5s": 1, "5-60s": 0},
            "120>u>110": {"10-500ms": 1, "0.5-5s": 0, "5-60s": 0}
        })
    );
    let ids: Vec<i64> = pq["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, m.pq_ids);
    // Worst first, by distance from 100 %, then the longer: B (40), C (25, 2 s), E (25, 1 s),
    // D (15, 0.3 s), A (15, 0.15 s).
    let worst: Vec<i64> = pq["worst"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        worst,
        vec![
            m.pq_ids[1],
            m.pq_ids[2],
            m.pq_ids[4],
            m.pq_ids[3],
            m.pq_ids[0]
        ]
    );
}

#[test]
fn steady_state_leaves_flagged_intervals_out_and_judges_by_the_10kv_limits() {
    let m = november();
    // Voltage, 5 unflagged of 6: GB/T 12325 at 10 kV is ±7 %: 230, 240, 230 in = 3/5 = 60 %;
    // EN 50160 ±10 %: 230, 240, 250, 230 = 4/5 = 80 % < 95 %: not compliant.
    // VA ranges 200/230 = 86.957 % to 250/230 = 108.696 %. One channel: it is the worst one,
    // and its shares are the headline shares (per channel since the review's F2).
    // Frequency, 9 unflagged of 10: ±0.2 Hz: 6 × 50.00 + 50.15 = 7/9 = 77.778 %; ±0.5 Hz: 8/9 =
    // 88.889 %. THD at 10 kV (GB/T 14549: 4 %): 2.5, 2.5, 3.0, 4.5: 3/4 in; 95 % value (nearest
    // rank 4 of 4) 4.5.
    assert_eq!(
        m.report["steady_state"],
        json!({
            "voltage": {
                "gbt12325_level": "20kV-3ph", "gbt12325_low_pct": -7.0, "gbt12325_high_pct": 7.0,
                "intervals": 6, "flagged": 1, "gbt12325_in_limits_pct": 60.0,
                "gbt12325_worst_channel": "feeder-1/VA",
                "gbt12325_deviation_sum_pct": null, "gbt12325_sum_within_limit": null,
                "en50160_in_limits_pct": 80.0, "en50160_compliant": false,
                "worst_channel": "feeder-1/VA",
                "channels": [{"channel": "feeder-1/VA", "min_pct": 86.957, "max_pct": 108.696, "intervals": 5,
                    "gbt12325_in_limits_pct": 60.0, "en50160_in_limits_pct": 80.0,
                    "gbt12325_deviation_sum_pct": null}]
            },
            "frequency": {
                "nominal_hz": 50.0, "gbt15945_limit_hz": 0.2, "intervals": 10, "flagged": 1,
                "gbt15945_in_limits_pct": 77.778, "en50160_in_limits_pct": 88.889,
                "min_hz": 49.4, "max_hz": 50.25
            },
            "thd": {"limit_pct": 4.0, "intervals": 4, "max_pct": 4.5, "p95_pct": 4.5, "in_limits_pct": 75.0}
        })
    );
}

#[test]
fn energy_power_factor_and_the_service_record() {
    let m = november();
    // 350 kWh, 200 kvarh: PF = 350 / √(350² + 200²) = 350 / 403.113 = 0.8682 → 0.87, three
    // hundredths under 0.90: +1.5 % on the bill. Peak 600 kW, first at 01:30.
    assert_eq!(
        m.report["energy"],
        json!({
            "meters": ["meters/incomer"],
            "days": [{"date": "2026-11-10", "kwh": 350.0}],
            "total_kwh": 350.0,
            "peak_demand_kw": 600.0,
            "peak_at": "2026-11-10T01:30:00.000Z",
            "months": [{"month": "2026-11", "kwh": 350.0, "kvarh": 200.0, "power_factor": 0.8682,
                "standard": 0.9, "meets_standard": false, "adjustment_pct": 1.5}]
        })
    );
    let t: Vec<Value> = m.report["service"]["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            json!([
                t["kind"],
                t["state"],
                t["supply_failed"],
                t["desk_told_ms"],
                t["duration_s"],
                t["failures"],
                t["generator_requested"],
                t["generator_cancelled"],
                t["planned_reference"]
            ])
        })
        .collect();
    assert_eq!(
        t,
        vec![
            // The generator request: for the failure at 02:00, told at 02:05:00.400.
            json!([
                "generator",
                "cancelled",
                "2026-11-10T02:00:00.000Z",
                300400.0,
                600.0,
                null,
                "2026-11-10T02:05:00.000Z",
                "2026-11-10T02:10:00.000Z",
                null
            ]),
            json!([
                "repair",
                "closed",
                "2026-11-10T02:00:00.000Z",
                850.0,
                600.0,
                1,
                "2026-11-10T02:05:00.000Z",
                "2026-11-10T02:10:00.000Z",
                null
            ]),
            json!([
                "repair",
                "closed",
                "2026-11-15T08:00:00.000Z",
                500.0,
                22.0,
                3,
                null,
                null,
                null
            ]),
            json!([
                "planned",
                "closed",
                "2026-11-25T01:00:00.000Z",
                null,
                7200.0,
                1,
                null,
                null,
                "PO-2026-11-25"
            ]),
        ]
    );
    assert_eq!(m.report["site"]["customer"], "Hand Worked Hospital");
    assert_eq!(m.report["period"]["hours"], 720.0);
}

#[test]
fn an_empty_store_gives_a_report_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreConfig::at(dir.path().join("kare.db"))).unwrap();
    let period = Period {
        from: at(1, 0, 0, 0, 0),
        to: at(2, 0, 0, 0, 0),
    };
    let r = report::build(&report::load(&store, &period).unwrap(), &period, Utc::now());
    let codes: Vec<&str> = r.notes.iter().map(|n| n.code.as_str()).collect();
    assert_eq!(codes, ["no-data", "no-site"]);
    assert_eq!(r.supply.availability_pct, 100.0);
    assert_eq!(r.power_quality.en50160_dips.counts.len(), 5);
    assert!(r.steady_state.voltage.is_none() && r.energy.total_kwh.is_none());
}

#[test]
fn a_reclosing_sequence_begun_in_the_previous_month_is_no_momentary_event_in_this_one() {
    // Operations at 23:58:00 on 31 October and 00:01:00 on 1 November: 180 s apart, one
    // reclosing sequence (within momentary_max_s = 300 s of its first start), begun in October.
    // November has one momentary interruption and no momentary event of its own; October has
    // the event. The October operation must be read even though it ends before November.
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&StoreConfig::at(dir.path().join("kare.db"))).unwrap();
    for start in [at(1, 0, 1, 0, 0) - Duration::minutes(3), at(1, 0, 1, 0, 0)] {
        put(
            &mut store,
            Ev {
                kind: "interruption",
                source: "feeder-1",
                start,
                secs: 1.0,
                extreme: 0.5,
                class: None,
            },
        );
    }
    let november = Period {
        from: at(1, 0, 0, 0, 0),
        to: at(1, 0, 0, 0, 0) + Duration::days(30),
    };
    let r = report::build(
        &report::load(&store, &november).unwrap(),
        &november,
        november.to,
    );
    assert_eq!(r.supply.momentary_interruptions, 1);
    assert_eq!(
        r.supply.momentary_events, 0,
        "the sequence began in October"
    );
    let october = Period {
        from: november.from - Duration::days(31),
        to: november.from,
    };
    let r = report::build(
        &report::load(&store, &october).unwrap(),
        &october,
        october.to,
    );
    assert_eq!(r.supply.momentary_interruptions, 1);
    assert_eq!(r.supply.momentary_events, 1);
}
