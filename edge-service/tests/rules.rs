//! The ticket rules as the repair desk, the generator dispatcher and the account manager see them.

use chrono::{DateTime, Duration, Utc};
use kare::actions::rules::{
    GeneratorDetail, MaintenanceDetail, OpenTicket, PqEvent, PqNoticeDetail, RuleInput,
    RuleSettings, Rules, TicketDetail, TicketKind, TicketOp, TicketState,
};
use kare::actions::site::{PlannedOutage, Site};
use serde_json::json;

fn t(s: f64) -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
        + Duration::seconds(1_800_000_000)
        + Duration::milliseconds((s * 1000.0) as i64)
}

fn site() -> Site {
    let mut s = Site::demo();
    s.generator.after_minutes = 30.0;
    s
}

fn lost(src: &str, at: f64) -> RuleInput {
    RuleInput::SupplyLost {
        source: src.into(),
        at: t(at),
        via: "half-cycle".into(),
    }
}

fn back(src: &str, at: f64) -> RuleInput {
    RuleInput::SupplyBack {
        source: src.into(),
        at: t(at),
    }
}

fn dip(at: f64, pct: f64) -> RuleInput {
    RuleInput::Disturbance {
        source: "node".into(),
        kind: "dip".into(),
        start: t(at),
        duration_s: 0.1,
        extreme_pct: pct,
    }
}

fn run(rules: &mut Rules, inputs: Vec<(f64, RuleInput)>) -> Vec<TicketOp> {
    let mut ops = Vec::new();
    for (now, i) in inputs {
        ops.extend(rules.handle(i, t(now)));
    }
    ops
}

fn of(ops: &[TicketOp], kind: TicketKind) -> Vec<&TicketOp> {
    ops.iter().filter(|o| o.kind == kind).collect()
}

#[test]
fn an_interruption_is_one_repair_ticket_opened_at_once_and_closed_with_its_duration() {
    let mut r = Rules::new(site(), RuleSettings::default());
    let ops = run(
        &mut r,
        vec![(10.0, lost("node", 10.0)), (12.5, back("node", 12.5))],
    );
    let rep = of(&ops, TicketKind::Repair);
    assert_eq!(rep.len(), 2);
    assert_eq!(rep[0].state, TicketState::Open);
    assert_eq!(rep[0].priority, "P1", "a critical account");
    assert_eq!(rep[1].state, TicketState::Closed);
    assert_eq!(rep[0].key, rep[1].key, "one ticket");
    assert_eq!(rep[1].duration_s, Some(2.5));
    assert_eq!(rep[1].detail.to_json()["classification"], "momentary");
}

#[test]
fn a_restoration_stamped_before_the_loss_by_another_clock_is_never_a_negative_outage() {
    // The node saw the loss at 20 s; a meter's coarse detector, on the edge's clock a little
    // behind, reports the supply back at 18 s and is the last witness.
    let mut r = Rules::new(site(), RuleSettings::default());
    let ops = run(
        &mut r,
        vec![
            (20.0, lost("node", 20.0)),
            (20.5, lost("meter", 19.0)),
            (21.0, back("node", 21.0)),
            (21.5, back("meter", 18.0)),
        ],
    );
    let rep = of(&ops, TicketKind::Repair);
    let closed = rep.last().unwrap();
    assert_eq!(closed.state, TicketState::Closed);
    assert_eq!(closed.duration_s, Some(0.0), "{closed:?}");
    assert!(!closed.title.contains('-'), "{}", closed.title);
}

#[test]
fn a_sustained_outage_brings_a_generator_which_is_cancelled_when_supply_returns() {
    let mut r = Rules::new(site(), RuleSettings::default());
    let mut ops = run(&mut r, vec![(0.0, lost("node", 0.0))]);
    ops.extend(r.tick(t(29.0 * 60.0)));
    assert!(
        of(&ops, TicketKind::Generator).is_empty(),
        "not before the limit"
    );
    ops.extend(r.tick(t(30.0 * 60.0)));
    ops.extend(r.tick(t(31.0 * 60.0)));
    let gen = of(&ops, TicketKind::Generator);
    assert_eq!(gen.len(), 1, "requested once");
    assert_eq!(
        gen[0].detail.to_json()["size_kva"],
        800.0,
        "no demand data: the connection rating"
    );
    ops.extend(r.handle(back("node", 40.0 * 60.0), t(40.0 * 60.0)));
    let gen = of(&ops, TicketKind::Generator);
    assert_eq!(gen.last().unwrap().state, TicketState::Cancelled);
    let rep = of(&ops, TicketKind::Repair);
    assert_eq!(
        rep.last().unwrap().detail.to_json()["classification"],
        "sustained"
    );
}

#[test]
fn the_generator_is_sized_from_recent_peak_demand() {
    let mut r = Rules::new(site(), RuleSettings::default());
    let mut ops = run(
        &mut r,
        vec![
            (
                0.0,
                RuleInput::Demand {
                    at: t(0.0),
                    kw: 420.0,
                },
            ),
            (
                1.0,
                RuleInput::Demand {
                    at: t(900.0),
                    kw: 510.0,
                },
            ),
            (2.0, lost("node", 1000.0)),
        ],
    );
    ops.extend(r.tick(t(1000.0 + 1800.0)));
    let gen = of(&ops, TicketKind::Generator);
    let kva = gen[0].detail.to_json()["size_kva"].as_f64().unwrap();
    assert!((kva - 510.0 / 0.9 * 1.2).abs() < 1e-6, "{kva}");
    assert!(gen[0].detail.to_json()["sizing"]
        .as_str()
        .unwrap()
        .contains("510 kW"));
}

#[test]
fn a_flapping_supply_reopens_the_same_ticket_instead_of_a_storm() {
    let mut r = Rules::new(site(), RuleSettings::default());
    let mut inputs = Vec::new();
    for i in 0..5 {
        let s = i as f64 * 20.0;
        inputs.push((s, lost("node", s)));
        inputs.push((s + 5.0, back("node", s + 5.0)));
    }
    let ops = run(&mut r, inputs);
    let rep = of(&ops, TicketKind::Repair);
    let keys: std::collections::BTreeSet<_> = rep.iter().map(|o| &o.key).collect();
    assert_eq!(keys.len(), 1, "one ticket");
    assert_eq!(rep.last().unwrap().detail.to_json()["failures"], 5);
    assert!(rep.iter().any(|o| o.title.contains("failed 5 times")));
    // After the flap window, a new failure is a new outage.
    let later = run(&mut r, vec![(2000.0, lost("node", 2000.0))]);
    assert_ne!(
        &of(&later, TicketKind::Repair)[0].key,
        *keys.iter().next().unwrap()
    );
}

#[test]
fn a_planned_outage_is_recorded_as_planned_without_a_repair_ticket() {
    let mut s = site();
    s.planned_outage.push(PlannedOutage {
        start: t(0.0),
        end: t(3600.0),
        reference: "PO-42".into(),
    });
    let mut r = Rules::new(s, RuleSettings::default());
    let mut ops = run(&mut r, vec![(60.0, lost("node", 60.0))]);
    ops.extend(r.tick(t(60.0 + 3600.0)));
    ops.extend(r.handle(back("node", 1800.0), t(1800.0)));
    assert!(of(&ops, TicketKind::Repair).is_empty());
    assert!(
        of(&ops, TicketKind::Generator).is_empty(),
        "planned: no generator request"
    );
    let planned = of(&ops, TicketKind::Planned);
    assert_eq!(planned.len(), 2);
    assert!(planned[0].title.contains("PO-42"));
}

#[test]
fn several_witnesses_make_one_ticket_closed_when_all_see_the_supply_back() {
    let mut r = Rules::new(site(), RuleSettings::default());
    let ops = run(
        &mut r,
        vec![
            (0.0, lost("node", 0.0)),
            (
                0.2,
                RuleInput::SupplyLost {
                    source: "ups".into(),
                    at: t(0.2),
                    via: "UPS input".into(),
                },
            ),
            (8.0, back("node", 8.0)),
            (9.0, back("ups", 9.0)),
        ],
    );
    let rep = of(&ops, TicketKind::Repair);
    assert_eq!(rep.len(), 3, "opened, updated by the UPS, closed");
    assert!(rep[1].title.contains("appliance on battery"));
    assert_eq!(rep[2].state, TicketState::Closed);
    assert_eq!(rep[2].duration_s, Some(9.0));
}

#[test]
fn dips_become_one_daily_notice_and_repeated_deep_dips_an_engineering_ticket() {
    let mut r = Rules::new(site(), RuleSettings::default());
    let ops = run(
        &mut r,
        vec![
            (10.0, dip(10.0, 85.0)),
            (20.0, dip(20.0, 60.0)),
            (30.0, dip(30.0, 55.0)),
            (40.0, dip(40.0, 50.0)),
            (50.0, dip(50.0, 45.0)),
        ],
    );
    let notices = of(&ops, TicketKind::PqNotice);
    assert_eq!(notices.len(), 5);
    assert!(
        notices.iter().all(|o| o.key == notices[0].key),
        "one notice per day"
    );
    assert_eq!(notices[4].detail.to_json()["counts"]["dip"], 5);
    assert_eq!(notices[4].detail.to_json()["lowest_dip_pct"], 45.0);
    assert!(
        of(&ops, TicketKind::Repair).is_empty(),
        "dips are not for the repair desk"
    );
    let eng = of(&ops, TicketKind::Engineering);
    assert!(
        eng.iter().all(|o| o.key == eng[0].key),
        "raised once, on the third deep dip: one ticket"
    );
    assert_eq!(
        eng.len(),
        2,
        "raised on the third deep dip, updated by the one after it"
    );
    assert_eq!(
        eng[1].detail.to_json()["deep_dips"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

#[test]
fn the_dip_around_an_interruption_is_not_a_power_quality_notice() {
    let mut r = Rules::new(site(), RuleSettings::default());
    let ops = run(
        &mut r,
        vec![
            (0.0, lost("node", 0.05)),
            (2.0, back("node", 2.0)),
            (2.1, dip(0.0, 0.3)),
        ],
    );
    assert!(of(&ops, TicketKind::PqNotice).is_empty());
}

#[test]
fn a_silent_sensor_is_maintenance_but_not_during_an_outage() {
    let mut r = Rules::new(site(), RuleSettings::default());
    let lost_sensor = |at: f64| RuleInput::SensorLost {
        source: "node".into(),
        since: t(at),
        reason: "no frame for 2 s".into(),
    };
    let mut ops = run(&mut r, vec![(0.0, lost_sensor(0.0))]);
    ops.extend(r.tick(t(59.0)));
    assert!(ops.is_empty());
    ops.extend(r.tick(t(61.0)));
    let m = of(&ops, TicketKind::Maintenance);
    assert_eq!(m.len(), 1);
    assert!(m[0].title.contains("not the supply"));
    ops.extend(r.handle(
        RuleInput::SensorBack {
            source: "node".into(),
            at: t(70.0),
        },
        t(70.0),
    ));
    assert_eq!(
        of(&ops, TicketKind::Maintenance)[1].state,
        TicketState::Closed
    );

    // During an outage the sensor may be on the failed supply: nothing.
    let mut r = Rules::new(site(), RuleSettings::default());
    let mut ops = run(
        &mut r,
        vec![(0.0, lost("ups", 0.0)), (0.5, lost_sensor(0.5))],
    );
    ops.extend(r.tick(t(600.0)));
    assert!(of(&ops, TicketKind::Maintenance).is_empty());
}

#[test]
fn after_a_restart_the_open_outage_stays_one_ticket() {
    let mut r = Rules::new(site(), RuleSettings::default());
    r.restore_outage("SITE-DEMO-01-outage-X", t(0.0), 1);
    // Still out: the stream reports the interruption again: the same ticket is updated.
    let ops = run(
        &mut r,
        vec![(100.0, lost("node", 100.0)), (160.0, back("node", 160.0))],
    );
    let rep = of(&ops, TicketKind::Repair);
    assert!(rep.iter().all(|o| o.key == "SITE-DEMO-01-outage-X"));
    assert_eq!(rep.last().unwrap().state, TicketState::Closed);
    assert_eq!(rep.last().unwrap().duration_s, Some(160.0));

    // Back while the appliance was down: closed when a source first sees the supply.
    let mut r = Rules::new(site(), RuleSettings::default());
    r.restore_outage("K", t(0.0), 1);
    let ops = run(
        &mut r,
        vec![(
            300.0,
            RuleInput::SupplyPresent {
                source: "node".into(),
                at: t(300.0),
            },
        )],
    );
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].state, TicketState::Closed);
}

#[test]
fn the_generator_limit_counts_the_present_loss_not_the_first_flap() {
    let mut r = Rules::new(site(), RuleSettings::default());
    let mut ops = run(
        &mut r,
        vec![
            (0.0, lost("node", 0.0)),
            (60.0, back("node", 60.0)),
            (120.0, lost("node", 120.0)),
        ],
    );
    ops.extend(r.tick(t(120.0 + 29.0 * 60.0)));
    assert!(
        of(&ops, TicketKind::Generator).is_empty(),
        "29 min of the present loss"
    );
    ops.extend(r.tick(t(120.0 + 30.0 * 60.0)));
    let gen = of(&ops, TicketKind::Generator);
    assert_eq!(gen.len(), 1);
    assert!(gen[0].title.contains("30.0 min"), "{}", gen[0].title);
}

fn tick(r: &mut Rules, at: f64) -> Vec<TicketOp> {
    r.tick(t(at))
}

fn heard(src: &str, at: f64) -> RuleInput {
    RuleInput::Heard {
        source: src.into(),
        at: t(at),
    }
}

fn text(op: &TicketOp) -> String {
    serde_json::to_string(&op.detail).unwrap()
}

#[test]
fn the_ticket_detail_of_every_kind_is_the_json_the_webhook_contract_documents() {
    let mut r = Rules::new(site(), RuleSettings::default());
    let mut ops = run(&mut r, vec![(0.0, lost("node", 0.0))]);
    ops.extend(tick(&mut r, 1800.0));
    ops.extend(run(
        &mut r,
        vec![
            (2000.0, back("node", 2000.0)),
            (4000.0, dip(4000.0, 50.0)),
            (4100.0, dip(4100.0, 50.0)),
            (4200.0, dip(4200.0, 50.0)),
        ],
    ));
    let rep = of(&ops, TicketKind::Repair);
    assert_eq!(
        text(rep[0]),
        json!({"seen_by": {"node": "half-cycle"}, "failures": 1, "on_battery": false,
               "classification": null, "planned_reference": null, "note": null})
        .to_string()
    );
    assert_eq!(
        text(rep[1]),
        json!({"seen_by": {"node": "half-cycle"}, "failures": 1, "on_battery": false,
               "classification": "sustained", "planned_reference": null, "note": "supply restored"})
        .to_string()
    );
    let gen = of(&ops, TicketKind::Generator);
    assert_eq!(
        text(gen[0]),
        json!({"outage_key": rep[0].key, "size_kva": 800.0,
               "sizing": "no interval data: the generator connection's rating",
               "connection_point": "Generator inlet GC-1, east wall", "connection_kva": 800.0,
               "outage_started": "2027-01-15T08:00:00.000Z"})
        .to_string()
    );
    assert_eq!(text(gen[1]), text(gen[0]), "cancelled with the same detail");
    let pq = of(&ops, TicketKind::PqNotice);
    assert_eq!(
        text(pq[2]),
        json!({"counts": {"dip": 3}, "lowest_dip_pct": 50.0, "highest_swell_pct": null,
               "last": {"source": "node", "kind": "dip", "start": "2027-01-15T09:10:00.000Z",
                        "duration_s": 0.1, "extreme_pct": 50.0}})
        .to_string()
    );
    let eng = of(&ops, TicketKind::Engineering);
    assert_eq!(
        text(eng[0]),
        json!({"deep_dips": ["2027-01-15T09:06:40.000Z", "2027-01-15T09:08:20.000Z",
                             "2027-01-15T09:10:00.000Z"]})
        .to_string()
    );
    let mut r = Rules::new(site(), RuleSettings::default());
    let mut ops = run(
        &mut r,
        vec![(
            0.0,
            RuleInput::SensorLost {
                source: "node".into(),
                since: t(0.0),
                reason: "silent for 2 s".into(),
            },
        )],
    );
    ops.extend(run(
        &mut r,
        vec![(
            61.0,
            RuleInput::DeliveryDead {
                endpoint: "desk".into(),
                reason: "HTTP 400".into(),
                at: t(61.0),
            },
        )],
    ));
    let m = of(&ops, TicketKind::Maintenance);
    assert_eq!(
        text(m[0]),
        json!({"endpoint": "desk", "reason": "HTTP 400"}).to_string()
    );
    assert_eq!(
        text(m[1]),
        json!({"source": "node", "reason": "silent for 2 s"}).to_string()
    );
    // Read back by kind, it is the same detail.
    for op in &ops {
        assert_eq!(
            TicketDetail::from_json(op.kind, &op.detail.to_json()).unwrap(),
            op.detail
        );
    }
}

#[test]
fn the_daily_power_quality_notice_closes_at_the_end_of_the_sites_local_day() {
    let mut s = site();
    s.utc_offset_minutes = 480; // t(0) is 16:00 at the site; its midnight is t(8 h)
    let mut r = Rules::new(s, RuleSettings::default());
    let ops = run(&mut r, vec![(0.0, dip(0.0, 85.0))]);
    let key = &ops[0].key;
    assert_eq!(key, "SITE-DEMO-01-pq-2027-01-15");
    assert!(
        tick(&mut r, 8.0 * 3600.0 - 1.0).is_empty(),
        "not before midnight"
    );
    let closed = tick(&mut r, 8.0 * 3600.0);
    assert_eq!(closed.len(), 1);
    assert_eq!(&closed[0].key, key);
    assert_eq!(closed[0].state, TicketState::Closed);
    assert_eq!(closed[0].closed_at, Some(t(8.0 * 3600.0)));
    assert_eq!(
        closed[0].detail, ops[0].detail,
        "closed with the day's count"
    );
    assert!(tick(&mut r, 9.0 * 3600.0).is_empty(), "closed once");
    // The next local day is another notice.
    let next = run(
        &mut r,
        vec![(8.0 * 3600.0 + 60.0, dip(8.0 * 3600.0 + 60.0, 85.0))],
    );
    assert_eq!(next[0].key, "SITE-DEMO-01-pq-2027-01-16");
    assert_eq!(next[0].state, TicketState::Open);
}

#[test]
fn an_engineering_ticket_closes_after_the_quiet_period_and_a_new_run_of_deep_dips_raises_another() {
    let settings = RuleSettings {
        engineering_quiet_h: 24.0,
        ..RuleSettings::default()
    };
    let mut r = Rules::new(site(), settings);
    let day = 86400.0;
    let ops = run(
        &mut r,
        vec![
            (0.0, dip(0.0, 50.0)),
            (60.0, dip(60.0, 50.0)),
            (120.0, dip(120.0, 50.0)),
            (3600.0, dip(3600.0, 50.0)),
        ],
    );
    let eng = of(&ops, TicketKind::Engineering);
    assert_eq!(
        eng.len(),
        2,
        "raised, then updated by the deep dip while it is open"
    );
    assert_eq!(
        eng[1].key, eng[0].key,
        "a deep dip while it is open belongs to it"
    );
    assert_eq!(
        eng[1].detail.to_json()["deep_dips"]
            .as_array()
            .unwrap()
            .len(),
        4,
        "the later deep dip is recorded, so a restart restores the quiet period from it"
    );
    let key = eng[0].key.clone();
    assert!(of(&tick(&mut r, 3600.0 + day - 1.0), TicketKind::Engineering).is_empty());
    let closed = tick(&mut r, 3600.0 + day + 500.0);
    let closed = of(&closed, TicketKind::Engineering);
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].key, key);
    assert_eq!(closed[0].state, TicketState::Closed);
    assert_eq!(
        closed[0].closed_at,
        Some(t(3600.0 + day)),
        "stamped when the quiet period was complete"
    );
    let later = 3.0 * day;
    let ops = run(
        &mut r,
        vec![
            (later, dip(later, 50.0)),
            (later + 60.0, dip(later + 60.0, 50.0)),
        ],
    );
    assert!(
        of(&ops, TicketKind::Engineering).is_empty(),
        "counting starts afresh"
    );
    let ops = run(&mut r, vec![(later + 120.0, dip(later + 120.0, 50.0))]);
    let again = of(&ops, TicketKind::Engineering);
    assert_eq!(again.len(), 1);
    assert_ne!(again[0].key, key);
    assert_eq!(again[0].state, TicketState::Open);
}

#[test]
fn a_dead_endpoint_is_one_maintenance_ticket_until_it_delivers_again() {
    let mut r = Rules::new(site(), RuleSettings::default());
    let dead = |at: f64| RuleInput::DeliveryDead {
        endpoint: "desk".into(),
        reason: "HTTP 503".into(),
        at: t(at),
    };
    let ops = run(
        &mut r,
        vec![(0.0, dead(0.0)), (60.0, dead(60.0)), (120.0, dead(120.0))],
    );
    assert_eq!(ops.len(), 1, "one key per endpoint while open: {ops:?}");
    assert_eq!(ops[0].state, TicketState::Open);
    let other = run(
        &mut r,
        vec![(
            130.0,
            RuleInput::DeliveryDead {
                endpoint: "mail".into(),
                reason: "SMTP 550".into(),
                at: t(130.0),
            },
        )],
    );
    assert_eq!(other.len(), 1);
    assert_ne!(other[0].key, ops[0].key, "each endpoint its own ticket");
    let back = run(
        &mut r,
        vec![(
            300.0,
            RuleInput::Delivered {
                endpoint: "desk".into(),
                at: t(300.0),
            },
        )],
    );
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].key, ops[0].key);
    assert_eq!(back[0].state, TicketState::Closed);
    assert_eq!(back[0].duration_s, Some(300.0));
    let again = run(&mut r, vec![(400.0, dead(400.0))]);
    assert_ne!(
        again[0].key, ops[0].key,
        "a new failure after recovery: a new ticket"
    );
}

#[test]
fn after_a_restart_every_open_ticket_is_carried_on_and_ended() {
    let mut r = Rules::new(site(), RuleSettings::default());
    let pq = PqNoticeDetail {
        counts: [("dip".to_string(), 2)].into_iter().collect(),
        lowest_dip_pct: Some(60.0),
        highest_swell_pct: None,
        last: PqEvent {
            source: "node".into(),
            kind: "dip".into(),
            start: t(100.0),
            duration_s: 0.1,
            extreme_pct: 60.0,
        },
    };
    let gen = GeneratorDetail {
        outage_key: "K-outage".into(),
        size_kva: 500.0,
        sizing: "peak demand".into(),
        connection_point: "GC-1".into(),
        connection_kva: 800.0,
        outage_started: t(0.0),
    };
    let restore = |r: &mut Rules, key: &str, kind, detail| {
        r.restore(OpenTicket {
            key: key.into(),
            kind,
            opened_at: t(0.0),
            detail,
        })
    };
    restore(
        &mut r,
        "K-outage",
        TicketKind::Repair,
        TicketDetail::from_json(TicketKind::Repair, &json!({"failures": 2})).unwrap(),
    );
    restore(
        &mut r,
        "K-gen",
        TicketKind::Generator,
        TicketDetail::Generator(gen.clone()),
    );
    restore(
        &mut r,
        "K-pq",
        TicketKind::PqNotice,
        TicketDetail::PqNotice(pq.clone()),
    );
    restore(
        &mut r,
        "K-eng",
        TicketKind::Engineering,
        TicketDetail::from_json(
            TicketKind::Engineering,
            &json!({"deep_dips": ["2027-01-15T08:00:00.000Z"]}),
        )
        .unwrap(),
    );
    restore(
        &mut r,
        "K-meter",
        TicketKind::Maintenance,
        TicketDetail::Maintenance(MaintenanceDetail::Source {
            source: "rs485-1/incomer".into(),
            reason: "no answer".into(),
        }),
    );
    restore(
        &mut r,
        "K-desk",
        TicketKind::Maintenance,
        TicketDetail::Maintenance(MaintenanceDetail::Delivery {
            endpoint: "desk".into(),
            reason: "HTTP 503".into(),
        }),
    );
    // The appliance comes back: the supply is there, the meter answers, the desk accepts.
    let mut ops = run(
        &mut r,
        vec![
            (
                600.0,
                RuleInput::SupplyPresent {
                    source: "node".into(),
                    at: t(600.0),
                },
            ),
            (601.0, heard("rs485-1/incomer", 601.0)),
            (
                602.0,
                RuleInput::Delivered {
                    endpoint: "desk".into(),
                    at: t(602.0),
                },
            ),
        ],
    );
    // The day ends, then the quiet period.
    ops.extend(tick(&mut r, 86400.0));
    ops.extend(tick(&mut r, 4.0 * 86400.0));
    let end = |key: &str| {
        let mine: Vec<_> = ops.iter().filter(|o| o.key == key).collect();
        assert_eq!(mine.len(), 1, "{key}: one closing change, {ops:#?}");
        mine[0].clone()
    };
    let o = end("K-outage");
    assert_eq!(o.state, TicketState::Closed);
    assert_eq!(
        o.detail.to_json()["failures"],
        2,
        "its failure count carried over"
    );
    let g = end("K-gen");
    assert_eq!(g.state, TicketState::Cancelled);
    assert_eq!(
        g.detail,
        TicketDetail::Generator(gen),
        "cancelled with its detail"
    );
    let p = end("K-pq");
    assert_eq!(p.state, TicketState::Closed);
    assert_eq!(
        p.detail,
        TicketDetail::PqNotice(pq),
        "closed with the day's count"
    );
    assert_eq!(end("K-eng").state, TicketState::Closed);
    assert_eq!(end("K-meter").state, TicketState::Closed);
    assert_eq!(end("K-desk").state, TicketState::Closed);
    assert_eq!(ops.len(), 6);
}
