//! Supply continuity: IEEE 1366 reduced to one customer, with the DL/T 836.1 names beside.
//!
//! One interruption per loss of supply across witnesses, as the repair ticket counts it:
//! - half-cycle witnesses (`interruption` events of sensor nodes) time it; two nodes' overlapping
//!   interruptions are one loss;
//! - meters (`outage_coarse`, poll-bracketed) join the half-cycle interruption they overlap or
//!   nearly touch ([`JOIN_S`]), adding themselves as witnesses without changing its times;
//! - a loss only meters saw is timed by them (overlapping or nearly touching meter outages are
//!   one loss, from the earliest start to the latest end).
//!
//! Two half-cycle interruptions of one node never merge, however close: they are the separate
//! operations of a reclosing sequence, which MAIFIe then groups. Losses that still overlap after
//! grouping (one node's operation inside another node's longer interruption) are merged into
//! their union: no time without supply is counted twice.
//!
//! DL/T 836.1-2016's threshold: see [`super`] (the module documentation records what was found).

use super::{Period, ReportInputs};
use crate::actions::rules::OutageClass;
use crate::report::model::{Interruption, PlannedSummary, Supply};
use crate::store::{EventRow, MeterIntervalRow, TicketRow};
use chrono::{DateTime, Duration, Utc};

/// A meter's outage joins a half-cycle interruption it overlaps or ends/starts within this many
/// seconds of: a meter only brackets a change between two polls (5 s for the slowest DL/T 645
/// bus in the demo) and stamps it up to a second late. Meter-only outages closer than this are
/// one loss seen through polls.
pub const JOIN_S: f64 = 10.0;

/// A ticket's window names an outage starting within this tolerance of it (the ticket opens at
/// the witness's time; clocks of different witnesses differ by up to a poll).
const TICKET_TOLERANCE_S: f64 = 1.0;

/// Demand older than this before an outage is not "just before" it.
const DEMAND_MAX_AGE_S: i64 = 3600;

/// One loss of supply before clipping.
#[derive(Clone, Debug)]
pub(crate) struct Loss {
    pub start: DateTime<Utc>,
    /// `None` while open.
    pub end: Option<DateTime<Utc>>,
    pub half_cycle: bool,
    pub event_id: Option<i64>,
    pub witnesses: Vec<String>,
}

fn is_half_cycle(e: &EventRow) -> bool {
    e.kind == "interruption"
}

fn is_meter(e: &EventRow) -> bool {
    e.kind == "outage_coarse"
}

fn secs(d: Duration) -> f64 {
    d.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6
}

/// `a` and `b` overlap or lie within `gap_s` of each other; an open end is "forever".
fn near(
    a: (DateTime<Utc>, Option<DateTime<Utc>>),
    b: (DateTime<Utc>, Option<DateTime<Utc>>),
    gap_s: f64,
) -> bool {
    let gap = Duration::milliseconds((gap_s * 1000.0) as i64);
    let a_end_ok = a.1.is_none_or(|e| e + gap >= b.0);
    let b_end_ok = b.1.is_none_or(|e| e + gap >= a.0);
    a_end_ok && b_end_ok
}

fn later(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        _ => None,
    }
}

fn add_witness(w: &mut Vec<String>, s: &str) {
    if !w.iter().any(|x| x == s) {
        w.push(s.to_string());
        w.sort();
    }
}

/// The losses of supply among `events` (any order), oldest first, unclipped.
pub(crate) fn losses(events: &[EventRow]) -> Vec<Loss> {
    let mut hc: Vec<&EventRow> = events.iter().filter(|e| is_half_cycle(e)).collect();
    hc.sort_by_key(|e| (e.start, e.id));
    let mut out: Vec<Loss> = Vec::new();
    for e in hc {
        // Another node's interruption overlapping this one is the same loss; the same node's
        // next operation is not (a reclosing sequence).
        if let Some(l) = out.iter_mut().rev().find(|l| {
            !l.witnesses.iter().any(|w| w == &e.source)
                && near((l.start, l.end), (e.start, e.end), 0.0)
        }) {
            l.end = later(l.end, e.end);
            add_witness(&mut l.witnesses, &e.source);
            continue;
        }
        out.push(Loss {
            start: e.start,
            end: e.end,
            half_cycle: true,
            event_id: Some(e.id),
            witnesses: vec![e.source.clone()],
        });
    }
    // A node's operation can overlap a loss it was not first in (n1 [0, 0.5 s] and [5, 6 s] with
    // n2 [0.01, 6.01 s]: n2 joined the first, n1's second stands alone inside it). One loss of
    // supply at the site is the union: time is never added twice.
    let mut out = merge_overlapping(out);
    let n_hc = out.len();
    let mut meters: Vec<&EventRow> = events.iter().filter(|e| is_meter(e)).collect();
    meters.sort_by_key(|e| (e.start, e.id));
    for e in meters {
        let mut joined = false;
        for l in out[..n_hc].iter_mut() {
            if near((l.start, l.end), (e.start, e.end), JOIN_S) {
                add_witness(&mut l.witnesses, &e.source);
                joined = true;
            }
        }
        if joined {
            continue;
        }
        if let Some(l) = out[n_hc..]
            .iter_mut()
            .find(|l| near((l.start, l.end), (e.start, e.end), JOIN_S))
        {
            l.start = l.start.min(e.start);
            l.end = later(l.end, e.end);
            add_witness(&mut l.witnesses, &e.source);
            continue;
        }
        out.push(Loss {
            start: e.start,
            end: e.end,
            half_cycle: false,
            event_id: Some(e.id),
            witnesses: vec![e.source.clone()],
        });
    }
    let meter_only = merge_overlapping(out.split_off(n_hc));
    out.extend(meter_only);
    out.sort_by_key(|l| l.start);
    out
}

/// Losses that overlap (or touch) merged into their union, oldest first: the earliest start,
/// the latest end, every witness; the first one's event times it.
fn merge_overlapping(mut ls: Vec<Loss>) -> Vec<Loss> {
    ls.sort_by_key(|l| l.start);
    let mut out: Vec<Loss> = Vec::with_capacity(ls.len());
    for l in ls {
        if let Some(last) = out.last_mut() {
            if last.end.is_none_or(|e| e >= l.start) {
                last.end = later(last.end, l.end);
                for w in &l.witnesses {
                    add_witness(&mut last.witnesses, w);
                }
                continue;
            }
        }
        out.push(l);
    }
    out
}

/// The ticket of `kind` whose window holds `at`.
fn ticket_at<'a>(tickets: &'a [TicketRow], kind: &str, at: DateTime<Utc>) -> Option<&'a TicketRow> {
    let tol = Duration::milliseconds((TICKET_TOLERANCE_S * 1000.0) as i64);
    tickets.iter().find(|t| {
        t.kind == kind && t.opened_at - tol <= at && t.closed_at.is_none_or(|c| at <= c + tol)
    })
}

/// Demand just before `at` from the meter chosen for energy: the last 15-min interval that ended
/// by `at` (not older than an hour), else the one holding `at`.
fn demand_before(intervals: &[&MeterIntervalRow], at: DateTime<Utc>) -> Option<f64> {
    let ended = |r: &&&MeterIntervalRow| {
        let end = r.start + Duration::milliseconds((r.seconds * 1000.0) as i64);
        end <= at && at - end <= Duration::seconds(DEMAND_MAX_AGE_S)
    };
    let holding = |r: &&&MeterIntervalRow| {
        r.start <= at && at < r.start + Duration::milliseconds((r.seconds * 1000.0) as i64)
    };
    intervals
        .iter()
        .filter(ended)
        .filter(|r| r.demand_kw.is_some())
        .max_by_key(|r| r.start)
        .or_else(|| {
            intervals
                .iter()
                .filter(holding)
                .find(|r| r.demand_kw.is_some())
        })
        .and_then(|r| r.demand_kw)
}

/// The continuity section. `meter` holds the intervals of the meter chosen for energy (see
/// `energy.rs`), oldest first.
pub(crate) fn supply(
    inputs: &ReportInputs,
    period: &Period,
    now: DateTime<Utc>,
    momentary_max_s: f64,
    meter: &[&MeterIntervalRow],
) -> Supply {
    let all = losses(&inputs.events);
    // Still open: up to the period's end, or now when the period runs on past now.
    let end_of = |l: &Loss| l.end.unwrap_or_else(|| period.to.min(now).max(l.start));
    // IEEE 1366 classes the whole interruption, not the part inside the period: a 400-s outage
    // across midnight on the month's last day is sustained in both months.
    let class_of = |l: &Loss| {
        if secs(end_of(l) - l.start) <= momentary_max_s {
            OutageClass::Momentary
        } else {
            OutageClass::Sustained
        }
    };
    let planned_of = |l: &Loss| ticket_at(&inputs.tickets, "planned", l.start);
    // MAIFIe on the losses as they happened (not clipped to the period), planned ones left out.
    let (event_of, momentary_events) = group_momentary(
        &all.iter()
            .map(|l| (l.start, class_of(l), planned_of(l).is_some()))
            .collect::<Vec<_>>(),
        momentary_max_s,
        period,
    );
    let mut list = Vec::new();
    for (l, momentary_event) in all.into_iter().zip(event_of) {
        let open = l.end.is_none();
        let end_full = end_of(&l);
        if l.start >= period.to || end_full <= period.from {
            continue;
        }
        let start = l.start.max(period.from);
        let end = end_full.min(period.to).max(start);
        let clipped = start != l.start || end != end_full;
        let duration_s = secs(end - start);
        let class = class_of(&l);
        let planned = planned_of(&l);
        let ticket = planned
            .or_else(|| ticket_at(&inputs.tickets, "repair", l.start))
            .map(|t| t.key.clone());
        let energy_not_supplied_kwh =
            demand_before(meter, l.start).map(|kw| round3(kw * duration_s / 3600.0));
        list.push(Interruption {
            start,
            end,
            duration_s: round3(duration_s),
            class,
            planned: planned.is_some(),
            event_id: l.event_id,
            ticket,
            energy_not_supplied_kwh,
            witnesses: l.witnesses,
            timed_by: if l.half_cycle { "half-cycle" } else { "meter" }.into(),
            open,
            clipped,
            momentary_event,
        });
    }
    let sustained: Vec<&Interruption> = list
        .iter()
        .filter(|i| i.class == OutageClass::Sustained)
        .collect();
    let sustained_minutes: f64 = sustained.iter().map(|i| i.duration_s).sum::<f64>() / 60.0;
    let hours = period.hours();
    let availability_pct = if hours > 0.0 {
        100.0 * (1.0 - sustained_minutes / (60.0 * hours))
    } else {
        100.0
    };
    let ens: Vec<f64> = list
        .iter()
        .filter_map(|i| i.energy_not_supplied_kwh)
        .collect();
    let planned: Vec<&Interruption> = list.iter().filter(|i| i.planned).collect();
    Supply {
        momentary_max_s,
        sustained_interruptions: sustained.len() as u32,
        momentary_interruptions: list
            .iter()
            .filter(|i| i.class == OutageClass::Momentary)
            .count() as u32,
        momentary_events,
        sustained_minutes: round3(sustained_minutes),
        minutes_without_supply: round3(list.iter().map(|i| i.duration_s).sum::<f64>() / 60.0),
        longest_interruption_s: list.iter().map(|i| i.duration_s).fold(0.0, f64::max),
        availability_pct: round5(availability_pct),
        aihc1_h: round5(sustained_minutes / 60.0),
        planned: PlannedSummary {
            count: planned.len() as u32,
            minutes: round3(planned.iter().map(|i| i.duration_s).sum::<f64>() / 60.0),
        },
        energy_not_supplied_kwh: (!ens.is_empty()).then(|| round3(ens.iter().sum())),
        interruptions: list,
    }
}

/// MAIFIe over every loss as it happened, `(start, class, planned)` oldest first: an unplanned
/// interruption starting within `momentary_max_s` of the start of a group's first one joins the
/// group; a group is a momentary event unless it holds a sustained interruption (then it counts
/// only as that). Planned interruptions are left out (they are counted apart). A group belongs
/// to the period holding its first start, so a sequence across the period's end counts once, in
/// the period it began in. Returns, per loss, the index of its momentary event in `period`
/// (`None` for sustained, planned, and members of a group that began before the period) and the
/// count of momentary events in `period`.
fn group_momentary(
    losses: &[(DateTime<Utc>, OutageClass, bool)],
    momentary_max_s: f64,
    period: &Period,
) -> (Vec<Option<u32>>, u32) {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, (start, _, planned)) in losses.iter().enumerate() {
        if *planned {
            continue;
        }
        match groups.last_mut() {
            Some(g) if secs(*start - losses[g[0]].0) <= momentary_max_s => g.push(i),
            _ => groups.push(vec![i]),
        }
    }
    let mut event_of = vec![None; losses.len()];
    let mut n = 0;
    for g in groups {
        let first = losses[g[0]].0;
        let in_period = period.from <= first && first < period.to;
        if in_period && g.iter().all(|&i| losses[i].1 == OutageClass::Momentary) {
            for i in g {
                event_of[i] = Some(n);
            }
            n += 1;
        }
    }
    (event_of, n)
}

/// To 0.001; never `-0` (an empty `f64` sum is `-0.0`, which JSON would print).
pub(crate) fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3 + 0.0
}

/// To 0.00001; never `-0`.
pub(crate) fn round5(x: f64) -> f64 {
    (x * 1e5).round() / 1e5 + 0.0
}

#[cfg(test)]
mod tests {
    use super::super::test_rows::{at, ev};
    use super::*;

    fn november() -> Period {
        Period {
            from: at(1, 0, 0, 0, 0),
            to: at(30, 0, 0, 0, 0),
        }
    }

    fn supply_of(events: Vec<EventRow>, period: &Period) -> Supply {
        let inputs = ReportInputs {
            events,
            ..ReportInputs::default()
        };
        supply(&inputs, period, at(30, 0, 0, 0, 0), 300.0, &[])
    }

    #[test]
    fn a_reclosing_sequence_across_the_period_end_is_one_momentary_event_in_the_month_it_began() {
        // Operations at 23:59:50 on 30 November (0.5 s) and 00:00:10 on 1 December (1 s): one
        // sequence, begun in November. November counts it; December counts none, though its
        // second operation is December's interruption.
        let t0 = at(30, 23, 59, 50, 0);
        let ms = chrono::Duration::milliseconds;
        let events = vec![
            ev(1, "interruption", "n1", t0, 0.5),
            ev(2, "interruption", "n1", t0 + ms(20_000), 1.0),
        ];
        let nov = Period {
            from: at(1, 0, 0, 0, 0),
            to: at(30, 0, 0, 0, 0) + chrono::Duration::days(1),
        };
        let dec = Period {
            from: nov.to,
            to: nov.to + chrono::Duration::days(31),
        };
        let inputs = ReportInputs {
            events,
            ..ReportInputs::default()
        };
        let now = dec.to + chrono::Duration::days(1);
        let n = supply(&inputs, &nov, now, 300.0, &[]);
        let d = supply(&inputs, &dec, now, 300.0, &[]);
        assert_eq!((n.momentary_interruptions, n.momentary_events), (1, 1));
        assert_eq!((d.momentary_interruptions, d.momentary_events), (1, 0));
        assert_eq!(d.interruptions[0].momentary_event, None);
    }

    #[test]
    fn planned_momentary_interruptions_are_left_out_of_maifie() {
        // A planned 60-s switching at 10:00 inside its announced window, then an unplanned
        // 1-s interruption at 10:02: one momentary event (the unplanned one), not a group of two,
        // and a planned switching alone is no momentary event.
        let t0 = at(3, 10, 0, 0, 0);
        let ms = chrono::Duration::milliseconds;
        let inputs = ReportInputs {
            events: vec![
                ev(1, "interruption", "n1", t0, 60.0),
                ev(2, "interruption", "n1", t0 + ms(120_000), 1.0),
                ev(3, "interruption", "n1", at(4, 10, 0, 0, 0), 60.0),
            ],
            tickets: vec![
                planned_ticket(t0, t0 + ms(61_000)),
                planned_ticket(at(4, 10, 0, 0, 0), at(4, 10, 1, 1, 0)),
            ],
            ..ReportInputs::default()
        };
        let s = supply(&inputs, &november(), at(30, 0, 0, 0, 0), 300.0, &[]);
        let events: Vec<Option<u32>> = s.interruptions.iter().map(|i| i.momentary_event).collect();
        assert_eq!(events, [None, Some(0), None]);
        assert_eq!(s.momentary_events, 1);
        assert_eq!(s.planned.count, 2);
    }

    fn planned_ticket(opened: DateTime<Utc>, closed: DateTime<Utc>) -> TicketRow {
        TicketRow {
            id: 1,
            key: format!("planned-{opened}"),
            revision: 1,
            kind: "planned".into(),
            state: crate::store::TicketState::Closed,
            priority: "P3".into(),
            site_id: "S".into(),
            customer_id: "C".into(),
            title: "planned".into(),
            opened_at: opened,
            updated_at: closed,
            closed_at: Some(closed),
            duration_s: None,
            body_json: serde_json::json!({}),
            event_id: None,
        }
    }

    #[test]
    fn overlapping_half_cycle_losses_of_two_nodes_are_one_loss_and_never_add_time() {
        // n1 sees [0, 0.5 s], [5, 6 s], [60, 61 s]; n2 one interruption [0.01, 6.01 s]. The site
        // lost supply over [0, 6.01 s] and [60, 61 s]: 7.01 s, two interruptions.
        let t0 = at(3, 10, 0, 0, 0);
        let ms = chrono::Duration::milliseconds;
        let events = vec![
            ev(1, "interruption", "n1", t0, 0.5),
            ev(2, "interruption", "n1", t0 + ms(5000), 1.0),
            ev(3, "interruption", "n1", t0 + ms(60_000), 1.0),
            ev(4, "interruption", "n2", t0 + ms(10), 6.0),
        ];
        let s = supply_of(events, &november());
        let spans: Vec<(DateTime<Utc>, f64)> = s
            .interruptions
            .iter()
            .map(|i| (i.start, i.duration_s))
            .collect();
        assert_eq!(spans, vec![(t0, 6.01), (t0 + ms(60_000), 1.0)]);
        assert_eq!(s.interruptions[0].witnesses, ["n1", "n2"]);
        assert_eq!(s.momentary_interruptions, 2);
        assert_eq!(s.minutes_without_supply, round3(7.01 / 60.0));
    }
}
