//! The reports' side of the store on a real SQLite file: the site record, the recorded history
//! (an interval written twice merges, what "overlapping a period" means), tickets with their first delivery, and the
//! event list's pages.

use chrono::{DateTime, Duration as CDuration, TimeZone, Utc};
use kare::store::*;
use serde_json::json;
use std::time::Duration;

fn cfg(dir: &tempfile::TempDir) -> StoreConfig {
    StoreConfig {
        synchronous: Synchronous::Normal,
        ..StoreConfig::at(dir.path().join("kare.db"))
    }
}

fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, h, m, s).unwrap()
}

fn aggregate(channel: &str, start: DateTime<Utc>, mean_v: f64) -> AggregateRow {
    AggregateRow {
        source: "feeder-1".into(),
        channel: channel.into(),
        start,
        seconds: 600.0,
        udin_v: 230.0,
        mean_v,
        min_v: mean_v - 2.0,
        max_v: mean_v + 2.0,
        windows: 60_000,
        flagged: false,
    }
}

fn frequency(start: DateTime<Utc>, mean_hz: f64) -> FrequencyRow {
    FrequencyRow {
        source: "feeder-1".into(),
        start,
        seconds: 10.0,
        nominal_hz: 50.0,
        mean_hz,
        min_hz: mean_hz - 0.01,
        max_hz: mean_hz + 0.01,
        windows: 1000,
        flagged: false,
    }
}

fn interval(start: DateTime<Utc>, import_kwh: f64) -> MeterIntervalRow {
    MeterIntervalRow {
        source: "meters".into(),
        device: "incomer".into(),
        start,
        seconds: 900.0,
        import_kwh: Some(import_kwh),
        export_kwh: None,
        import_kvarh: Some(10.0),
        demand_kw: Some(400.0),
        max_kw: Some(420.0),
        power_factor: Some(0.93),
        thd_u_pct: Some(2.1),
        samples: 90,
    }
}

fn event(
    key: &str,
    kind: &str,
    source: &str,
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
) -> StoredEvent {
    StoredEvent {
        source: source.into(),
        source_key: key.into(),
        site_id: Some("SITE-1".into()),
        kind: kind.into(),
        start,
        end,
        duration_s: end.map(|e| (e - start).num_milliseconds() as f64 / 1e3),
        extreme_pct: Some(40.0),
        worst_channel: Some("VA".into()),
        open: end.is_none(),
        json: json!({"kind": kind, "key": key}),
        profile_json: None,
        waveform: None,
    }
}

fn ticket(key: &str, opened: DateTime<Utc>, closed: Option<DateTime<Utc>>) -> TicketWrite {
    TicketWrite {
        key: key.into(),
        kind: "repair".into(),
        state: if closed.is_some() {
            TicketState::Closed
        } else {
            TicketState::Open
        },
        priority: "P1".into(),
        site_id: "SITE-1".into(),
        customer_id: "C-1".into(),
        title: key.into(),
        body_json: json!({"id": 0, "key": "", "revision": 0}),
        event_id: None,
        opened_at: Some(opened),
        closed_at: closed,
        duration_s: closed.map(|c| (c - opened).num_seconds() as f64),
        deliver_to: vec![DeliverTo {
            channel: Channel::Webhook,
            endpoint: "desk".into(),
            payload_json: json!({"title": key}),
        }],
    }
}

#[test]
fn store_site_is_empty_until_saved_then_the_newest_record_wins() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&cfg(&dir)).unwrap();
    assert_eq!(s.site().unwrap(), None);
    let mut site = SiteRecord {
        id: "SITE-1".into(),
        customer_name: "仁济医院 <east>".into(),
        nominal_kv: 10.0,
        momentary_max_s: 180.0,
        ..SiteRecord::default()
    };
    s.save_site(&site).unwrap();
    assert_eq!(s.site().unwrap(), Some(site.clone()));
    // The next start saves it again with changed settings: one row, the new values.
    site.momentary_max_s = 300.0;
    s.save_site(&site).unwrap();
    assert_eq!(s.site().unwrap(), Some(site.clone()));
    // A site renamed in the configuration: the newest saved is the one the report uses.
    let renamed = SiteRecord {
        id: "SITE-2".into(),
        ..site
    };
    s.save_site(&renamed).unwrap();
    assert_eq!(s.site().unwrap().unwrap().id, "SITE-2");
}

/// A restart inside an interval writes it twice: the stop writes the part before (here a dip at
/// 08:02, a restart at 08:05), the next start the part after. The second write merges into the
/// row, never replaces it (the dip's flag, the extremes and the windows before the restart
/// stayed lost) and never doubles it.
#[test]
fn store_history_an_interval_written_again_after_a_restart_merges_both_parts() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&cfg(&dir)).unwrap();
    let before = AggregateRow {
        mean_v: 220.0,
        min_v: 180.0,
        max_v: 231.0,
        windows: 15_000,
        flagged: true,
        ..aggregate("VA", t(8, 0, 0), 0.0)
    };
    let after = AggregateRow {
        mean_v: 230.0,
        min_v: 228.0,
        max_v: 232.0,
        windows: 45_000,
        flagged: false,
        ..aggregate("VA", t(8, 0, 0), 0.0)
    };
    s.save_aggregates(std::slice::from_ref(&before)).unwrap();
    s.save_aggregates(std::slice::from_ref(&after)).unwrap();
    let rows = s.aggregates_between(t(0, 0, 0), t(23, 0, 0)).unwrap();
    assert_eq!(
        rows,
        vec![AggregateRow {
            mean_v: 227.5, // (220 × 15 000 + 230 × 45 000) / 60 000
            min_v: 180.0,
            max_v: 232.0,
            windows: 60_000,
            flagged: true,
            ..after.clone()
        }]
    );

    let f_before = FrequencyRow {
        mean_hz: 49.90,
        min_hz: 49.70,
        max_hz: 50.00,
        windows: 250,
        flagged: true,
        ..frequency(t(8, 0, 0), 0.0)
    };
    let f_after = FrequencyRow {
        mean_hz: 50.02,
        min_hz: 50.01,
        max_hz: 50.03,
        windows: 750,
        flagged: false,
        ..frequency(t(8, 0, 0), 0.0)
    };
    s.save_frequency(std::slice::from_ref(&f_before)).unwrap();
    s.save_frequency(std::slice::from_ref(&f_after)).unwrap();
    let f = s.frequency_between(t(8, 0, 0), t(8, 0, 10)).unwrap();
    assert_eq!(f.len(), 1);
    assert!((f[0].mean_hz - 49.99).abs() < 1e-9, "{f:?}");
    assert_eq!(
        (f[0].min_hz, f[0].max_hz, f[0].windows, f[0].flagged),
        (49.70, 50.03, 1000, true)
    );
    // The hourly roll-up is recomputed from the merged row: one value, flagged.
    let hour = kare::report::Period {
        from: t(8, 0, 0),
        to: t(9, 0, 0),
    };
    let inputs = kare::report::load(&s, &hour).unwrap();
    assert_eq!(
        (inputs.frequency.intervals, inputs.frequency.flagged),
        (1, 1)
    );

    let m_before = MeterIntervalRow {
        import_kwh: Some(1000.0),
        import_kvarh: Some(10.0),
        demand_kw: Some(400.0),
        max_kw: Some(500.0),
        power_factor: Some(0.90),
        thd_u_pct: Some(3.0),
        samples: 30,
        ..interval(t(8, 0, 0), 0.0)
    };
    let m_after = MeterIntervalRow {
        import_kwh: Some(1001.5),
        import_kvarh: None,
        demand_kw: Some(300.0),
        max_kw: Some(420.0),
        power_factor: None,
        thd_u_pct: Some(2.1),
        samples: 60,
        ..interval(t(8, 0, 0), 0.0)
    };
    s.save_meter_intervals(std::slice::from_ref(&m_before))
        .unwrap();
    s.save_meter_intervals(std::slice::from_ref(&m_after))
        .unwrap();
    let m = s.meter_intervals_between(t(8, 0, 0), t(8, 15, 0)).unwrap();
    assert_eq!(m.len(), 1);
    let m = &m[0];
    // Registers: the later reading where it has one, else the earlier.
    assert_eq!(
        (m.import_kwh, m.import_kvarh, m.power_factor),
        (Some(1001.5), Some(10.0), Some(0.90))
    );
    // Demand weighted by polls: (400 × 30 + 300 × 60) / 90.
    assert!((m.demand_kw.unwrap() - 1000.0 / 3.0).abs() < 1e-9, "{m:?}");
    assert_eq!(
        (m.max_kw, m.thd_u_pct, m.samples),
        (Some(500.0), Some(3.0), 90)
    );
}

#[test]
fn store_history_reads_what_overlaps_the_period_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&cfg(&dir)).unwrap();
    // 07:50 ends at 08:00 (outside [08:05, 08:25)); 08:00 and 08:10 and 08:20 overlap;
    // 08:30 starts after the period.
    let rows: Vec<AggregateRow> = [(7, 50), (8, 30), (8, 20), (8, 0), (8, 10)]
        .iter()
        .flat_map(|&(h, m)| {
            [
                aggregate("VB", t(h, m, 0), 230.0),
                aggregate("VA", t(h, m, 0), 230.0),
            ]
        })
        .collect();
    s.save_aggregates(&rows).unwrap();
    let got: Vec<(DateTime<Utc>, String)> = s
        .aggregates_between(t(8, 5, 0), t(8, 25, 0))
        .unwrap()
        .into_iter()
        .map(|a| (a.start, a.channel))
        .collect();
    let want: Vec<(DateTime<Utc>, String)> = [(8, 0), (8, 10), (8, 20)]
        .iter()
        .flat_map(|&(h, m)| [(t(h, m, 0), "VA".into()), (t(h, m, 0), "VB".into())])
        .collect();
    assert_eq!(got, want);

    // An interval ending exactly at `from` is not in the period; one starting at `to` neither.
    s.save_frequency(&[
        frequency(t(8, 0, 0), 50.0),
        frequency(t(8, 0, 10), 50.0),
        frequency(t(8, 0, 20), 50.0),
    ])
    .unwrap();
    let starts: Vec<_> = s
        .frequency_between(t(8, 0, 10), t(8, 0, 20))
        .unwrap()
        .into_iter()
        .map(|f| f.start)
        .collect();
    assert_eq!(starts, vec![t(8, 0, 10)]);

    // Folding without collecting sees the same rows.
    let mut n = 0;
    s.for_each_aggregate(t(8, 5, 0), t(8, 25, 0), |_| n += 1)
        .unwrap();
    assert_eq!(n, 6);
}

#[test]
fn store_history_refuses_what_it_cannot_store_honestly() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&cfg(&dir)).unwrap();
    let mut bad = aggregate("VA", t(8, 0, 0), f64::NAN);
    assert!(matches!(
        s.save_aggregates(&[aggregate("VA", t(7, 50, 0), 230.0), bad.clone()]),
        Err(StoreError::Invalid(m)) if m.contains("mean_v")
    ));
    // The whole batch is one transaction: nothing of it was written.
    assert!(s
        .aggregates_between(t(0, 0, 0), t(23, 0, 0))
        .unwrap()
        .is_empty());
    bad.mean_v = 230.0;
    bad.seconds = 0.0;
    assert!(matches!(
        s.save_aggregates(&[bad]),
        Err(StoreError::Invalid(m)) if m.contains("length")
    ));
    // A meter value that is not a number is "not read", not a refusal.
    let mut odd = interval(t(8, 0, 0), f64::INFINITY);
    odd.power_factor = Some(f64::NAN);
    s.save_meter_intervals(&[odd]).unwrap();
    let got = &s.meter_intervals_between(t(8, 0, 0), t(9, 0, 0)).unwrap()[0];
    assert_eq!((got.import_kwh, got.power_factor), (None, None));
    assert_eq!(got.demand_kw, Some(400.0));
}

#[test]
fn store_events_overlapping_include_those_begun_before_and_those_still_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&cfg(&dir)).unwrap();
    let src = "feeder-1";
    // Ended exactly at `from`: out. Begun before, ended inside: in. Inside: in. Open since
    // before: in. Starting at `to`: out.
    s.upsert_event(&event("a", "dip", src, t(7, 0, 0), Some(t(8, 0, 0))))
        .unwrap();
    let b = s
        .upsert_event(&event(
            "b",
            "interruption",
            src,
            t(7, 59, 0),
            Some(t(8, 1, 0)),
        ))
        .unwrap();
    let c = s
        .upsert_event(&event("c", "swell", src, t(8, 30, 0), Some(t(8, 30, 1))))
        .unwrap();
    let d = s
        .upsert_event(&event("d", "sensor_lost", src, t(6, 0, 0), None))
        .unwrap();
    s.upsert_event(&event("e", "dip", src, t(9, 0, 0), Some(t(9, 0, 1))))
        .unwrap();
    let ids: Vec<i64> = s
        .events_overlapping(t(8, 0, 0), t(9, 0, 0))
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, vec![d, b, c]);
}

#[test]
fn store_tickets_overlapping_with_when_the_desk_was_first_told() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&cfg(&dir)).unwrap();
    // Closed before the period: out. Closed exactly at `from`: in (its closing is in it).
    // Opened inside, still open: in. Opened at `to`: out.
    s.save_ticket(&ticket("old", t(6, 0, 0), Some(t(7, 0, 0))))
        .unwrap();
    let edge = s
        .save_ticket(&ticket("edge", t(7, 0, 0), Some(t(8, 0, 0))))
        .unwrap();
    let open = s.save_ticket(&ticket("open", t(8, 30, 0), None)).unwrap();
    s.save_ticket(&ticket("later", t(9, 0, 0), None)).unwrap();
    let keys: Vec<String> = s
        .tickets_overlapping(t(8, 0, 0), t(9, 0, 0))
        .unwrap()
        .into_iter()
        .map(|t| t.key)
        .collect();
    assert_eq!(keys, vec!["edge", "open"]);

    // `open` is delivered twice (two revisions); its first delivery is the earlier one. `edge`
    // failed once and was never delivered.
    let first = t(8, 30, 1) + CDuration::milliseconds(250);
    s.record_attempt(&Attempt {
        outbox_id: open.outbox_ids[0],
        at: first,
        detail: "HTTP 200".into(),
        latency: Duration::from_millis(40),
        outcome: AttemptOutcome::Delivered,
    })
    .unwrap();
    let mut again = ticket("open", t(8, 30, 0), None);
    again.title = "open, failure 2".into();
    let rev2 = s.save_ticket(&again).unwrap();
    s.record_attempt(&Attempt {
        outbox_id: rev2.outbox_ids[0],
        at: t(8, 40, 0),
        detail: "HTTP 200".into(),
        latency: Duration::from_millis(40),
        outcome: AttemptOutcome::Delivered,
    })
    .unwrap();
    s.record_attempt(&Attempt {
        outbox_id: edge.outbox_ids[0],
        at: t(7, 0, 1),
        detail: "HTTP 503".into(),
        latency: Duration::from_millis(40),
        outcome: AttemptOutcome::RetryAt(t(7, 0, 5)),
    })
    .unwrap();
    assert_eq!(s.first_delivery(open.id).unwrap(), Some(first));
    assert_eq!(s.first_delivery(edge.id).unwrap(), None);
    let all = s.first_deliveries(&[open.id, edge.id, 9999]).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[&open.id], first);
}

#[test]
fn store_events_page_newest_first_with_keyset_paging_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&cfg(&dir)).unwrap();
    let mut ids = Vec::new();
    for i in 0..25u32 {
        let kind = ["dip", "swell", "interruption"][i as usize % 3];
        let source = if i % 2 == 0 { "feeder-1" } else { "feeder-2" };
        let start = t(8, i, 0);
        ids.push(
            s.upsert_event(&event(
                &format!("k{i}"),
                kind,
                source,
                start,
                Some(start + CDuration::seconds(1)),
            ))
            .unwrap(),
        );
    }
    let page =
        |f: EventFilter| -> Vec<i64> { s.events_page(&f).unwrap().iter().map(|e| e.id).collect() };
    let newest: Vec<i64> = ids.iter().rev().copied().collect();
    // Three pages of 10, 10 and 5, each following the last id of the one before.
    let p1 = page(EventFilter {
        limit: 10,
        ..EventFilter::default()
    });
    assert_eq!(p1, newest[..10]);
    let p2 = page(EventFilter {
        limit: 10,
        before_id: p1.last().copied(),
        ..EventFilter::default()
    });
    assert_eq!(p2, newest[10..20]);
    let p3 = page(EventFilter {
        limit: 10,
        before_id: p2.last().copied(),
        ..EventFilter::default()
    });
    assert_eq!(p3, newest[20..]);
    // Back from page 3: the ten just newer than its first, still newest first.
    let back = page(EventFilter {
        limit: 10,
        after_id: p3.first().copied(),
        ..EventFilter::default()
    });
    assert_eq!(back, p2);

    // Filters combine: dips of feeder-1 (i = 0, 6, 12, 18, 24) that overlap [08:05, 08:20).
    let dips = page(EventFilter {
        kinds: vec!["dip".into()],
        source: Some("feeder-1".into()),
        from: Some(t(8, 5, 0)),
        to: Some(t(8, 20, 0)),
        ..EventFilter::default()
    });
    assert_eq!(dips, vec![ids[18], ids[12], ids[6]]);
    let two_kinds = page(EventFilter {
        kinds: vec!["swell".into(), "interruption".into()],
        to: Some(t(8, 3, 0)),
        ..EventFilter::default()
    });
    assert_eq!(two_kinds, vec![ids[2], ids[1]]);
    assert!(page(EventFilter {
        kinds: vec!["no-such-kind".into()],
        ..EventFilter::default()
    })
    .is_empty());
}

#[tokio::test]
async fn store_handle_writes_history_and_reads_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let h = StoreHandle::open(&cfg(&dir)).unwrap();
    let site = SiteRecord {
        id: "SITE-1".into(),
        ..SiteRecord::default()
    };
    h.save_site(site.clone()).await.unwrap();
    h.save_aggregates(vec![aggregate("VA", t(8, 0, 0), 230.0)])
        .await
        .unwrap();
    h.save_frequency(vec![frequency(t(8, 0, 0), 50.0)])
        .await
        .unwrap();
    h.save_meter_intervals(vec![interval(t(8, 0, 0), 5.0)])
        .await
        .unwrap();
    assert_eq!(h.site().await.unwrap(), Some(site));
    assert_eq!(
        h.aggregates_between(t(8, 0, 0), t(9, 0, 0))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        h.frequency_between(t(8, 0, 0), t(9, 0, 0))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        h.meter_intervals_between(t(8, 0, 0), t(9, 0, 0))
            .await
            .unwrap()
            .len(),
        1
    );
    let id = h
        .upsert_event(event("x", "dip", "feeder-1", t(8, 1, 0), None))
        .await
        .unwrap();
    let page = h.events_page(EventFilter::default()).await.unwrap();
    assert_eq!(page.iter().map(|e| e.id).collect::<Vec<_>>(), vec![id]);
    h.close().await;
}

/// Retention's cut-off at 08:30 keeps the whole hour 08:00–09:00 in every history table: the
/// hourly frequency roll-up of 08:00 (which a report of whole hours reads instead of the 10-s
/// values) went, while the 10-s values after 08:30 stayed, and the hour counted nothing.
#[test]
fn store_retention_cuts_history_at_the_hour_its_cutoff_falls_in() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&cfg(&dir)).unwrap();
    let rows: Vec<FrequencyRow> = (0..360)
        .map(|i| frequency(t(8, 0, 0) + CDuration::seconds(10 * i), 50.0))
        .collect();
    s.save_frequency(&rows).unwrap();
    s.save_aggregates(&[aggregate("VA", t(8, 20, 0), 230.0)])
        .unwrap();
    s.save_frequency(&[frequency(t(7, 59, 50), 50.0)]).unwrap();
    // Five days of retention, run at 08:30 five days later: the cut-off is 08:30.
    s.prune_as_of(
        t(8, 30, 0) + CDuration::days(5),
        Duration::from_secs(5 * 86_400),
        u64::MAX,
    )
    .unwrap();
    // 07:59:50 is before the hour: gone. The hour 08:00 is whole in every table.
    assert_eq!(s.frequency_between(t(7, 0, 0), t(8, 0, 0)).unwrap(), vec![]);
    assert_eq!(
        s.frequency_between(t(8, 0, 0), t(9, 0, 0)).unwrap().len(),
        360
    );
    assert_eq!(
        s.aggregates_between(t(8, 0, 0), t(9, 0, 0)).unwrap().len(),
        1
    );
    let hour = kare::report::Period {
        from: t(8, 0, 0),
        to: t(9, 0, 0),
    };
    let inputs = kare::report::load(&s, &hour).unwrap();
    assert_eq!(inputs.frequency.intervals, 360);
}

#[test]
fn store_retention_ages_out_history_and_prunes_it_before_records_for_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&cfg(&dir)).unwrap();
    let day = |d: i64| t(0, 0, 0) + CDuration::days(d);
    // Ten days of history, one row a day in each table.
    for d in 0..10 {
        s.save_aggregates(&[aggregate("VA", day(d), 230.0)])
            .unwrap();
        s.save_frequency(&[frequency(day(d), 50.0)]).unwrap();
        s.save_meter_intervals(&[interval(day(d), 100.0 + d as f64)])
            .unwrap();
    }
    let all = |s: &Store| {
        (
            s.aggregates_between(day(-1), day(20)).unwrap().len(),
            s.frequency_between(day(-1), day(20)).unwrap().len(),
            s.meter_intervals_between(day(-1), day(20)).unwrap().len(),
        )
    };
    assert_eq!(all(&s), (10, 10, 10));

    // Retention of 5 days at day 10: days 0–4 are gone, 5–9 kept.
    let r = s
        .prune_as_of(day(10), Duration::from_secs(5 * 86_400), u64::MAX)
        .unwrap();
    assert_eq!(all(&s), (5, 5, 5));
    assert!(r.history >= 15, "{r}");
    assert_eq!(
        s.aggregates_between(day(-1), day(20)).unwrap()[0].start,
        day(5)
    );

    // Over its size with nothing old enough by age: history goes, a day at a time, and no
    // record with it.
    s.upsert_event(&StoredEvent {
        source: "feeder-1".into(),
        source_key: "dip@1".into(),
        site_id: Some("S".into()),
        kind: "dip".into(),
        start: day(6),
        end: Some(day(6)),
        duration_s: Some(0.1),
        extreme_pct: Some(60.0),
        worst_channel: Some("VA".into()),
        open: false,
        json: json!({"kind": "dip"}),
        profile_json: None,
        waveform: None,
    })
    .unwrap();
    // Days 5–9 hold a 10-s value every 10 s (8 640 a day): megabytes.
    for d in 5..10 {
        let rows: Vec<FrequencyRow> = (1..8_640)
            .map(|i| frequency(day(d) + CDuration::seconds(10 * i), 50.0))
            .collect();
        s.save_frequency(&rows).unwrap();
    }
    let used = s.used_bytes().unwrap();
    let r = s
        .prune_as_of(day(10), Duration::MAX, used - 200 * 1024)
        .unwrap();
    assert!(r.history > 0 && !r.still_over_limit, "{r}");
    assert_eq!(r.events, 0, "history goes before records: {r}");
    assert_eq!(s.events(day(0), day(20)).unwrap().len(), 1);
    // The oldest day went; the newest is whole.
    assert!(s.frequency_between(day(5), day(6)).unwrap().is_empty());
    assert_eq!(s.frequency_between(day(9), day(10)).unwrap().len(), 8_640);
}
