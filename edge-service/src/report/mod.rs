//! Reports: the key-account service report (design.md, contract "kare report") computed from
//! the store. This folder reads; it never writes the store and never renders HTML (`web/` does,
//! for the page and for `kare report --format html`).
//!
//! - [`model`]: the report as data (the JSON contract).
//! - [`period`]: `--from` / `--to`, the default month.
//! - [`build`]: plain inputs ([`ReportInputs`]) in, a [`Report`] out; pure, one file per
//!   section (`continuity`, `quality`, `steady`, `energy`, `service`).
//! - [`load`]: the inputs read from a [`crate::store::Store`].
//! - [`csv`]: the report's tables as CSV files.
//!
//! **The momentary / sustained threshold.** IEEE 1366-2012 puts it at 5 minutes, and kare's
//! default (`[rules] momentary_max_s = 300`) follows it; the report takes the site's setting.
//! DL/T 836.1-2016 (供电系统用户供电可靠性评价规程 第1部分：通用要求): what the project's search
//! corpora hold of its text is a partial copy (its contents list, which names an appendix
//! mapping its indices to the 2012 edition's; its scope; the definitions up to 停运持续时间);
//! the clause that fixes how long a loss must last to count as a 停电 in RS-1 and
//! AIHC-1 was not in it. Secondary sources put the Chinese threshold at 3 minutes (shorter
//! losses being 短时停电, outside the indices); that is unverified here and must be checked
//! against the standard before it is quoted. A utility reporting by DL/T 836.1 sets
//! `momentary_max_s` to its threshold (180 for 3 min); `aihc1_h` and `availability_pct` then
//! read as its AIHC-1 and RS-1 for this customer (planned outages included, as RS-1 counts them).

pub mod continuity;
pub mod csv;
pub mod energy;
pub mod load;
pub mod model;
pub mod period;
pub mod quality;
pub mod service;
pub mod steady;

pub use load::load;
pub use model::*;
pub use period::{Period, PeriodError};

use crate::store::{AggregateRow, EventRow, MeterIntervalRow, SiteRecord, TicketRow};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// What a report is computed from: the store's rows overlapping the period (and the meter
/// intervals of [`energy::LEAD_IN`] before it).
#[derive(Clone, Debug, Default)]
pub struct ReportInputs {
    /// The site as last saved; `None` in a store written before sites were saved.
    pub site: Option<SiteRecord>,
    /// Events overlapping the period.
    pub events: Vec<EventRow>,
    /// Tickets overlapping the period.
    pub tickets: Vec<TicketRow>,
    /// Ticket row id → when its first delivery was accepted.
    pub first_deliveries: HashMap<i64, DateTime<Utc>>,
    /// 10-minute aggregates in the period.
    pub aggregates: Vec<AggregateRow>,
    /// The 10-second frequency values starting in the period, folded as they are read.
    pub frequency: steady::FrequencyFold,
    /// 15-minute meter intervals from [`energy::LEAD_IN`] before the period to its end.
    pub meter_intervals: Vec<MeterIntervalRow>,
}

/// The report for `period`, made at `now`. A period running on past `now` (this month, or a
/// `--to` in the future) is reported over `[from, now)`: the hours not yet lived are no supply
/// and no measurement, and counting them as available would dilute every share (note
/// `period-clipped`; `period.to` in the report is then `now`, so `availability_pct` still reads
/// against `period.hours`). When the store holds records past `now` (an accelerated demo runs
/// its data clock ahead of the wall clock), the report runs to its last record instead, so that
/// nothing recorded in the period is left out.
pub fn build(inputs: &ReportInputs, period: &Period, now: DateTime<Utc>) -> Report {
    let asked = *period;
    let clipped_to_now = period.to > now;
    let covered = Period {
        from: period.from,
        to: if clipped_to_now {
            now.max(last_record(inputs).unwrap_or(now))
                .min(period.to)
                .max(period.from)
        } else {
            period.to
        },
    };
    let period = &covered;
    let (site, site_from_ticket) = site_record(inputs);
    let momentary_max_s = if site.momentary_max_s > 0.0 {
        site.momentary_max_s
    } else {
        SiteRecord::default().momentary_max_s
    };
    let (meter_name, meter, other_meters) = energy::choose_meter(&inputs.meter_intervals, period);
    let supply = continuity::supply(inputs, period, now, momentary_max_s, &meter);
    let losses = continuity::losses(&inputs.events);
    let power_quality = quality::power_quality(&inputs.events, &losses, period);
    let in_period: Vec<&MeterIntervalRow> = meter
        .iter()
        .copied()
        .filter(|r| period.from <= r.start && r.start < period.to)
        .collect();
    let aggregates: Vec<&AggregateRow> = inputs
        .aggregates
        .iter()
        .filter(|r| period.from <= r.start && r.start < period.to)
        .collect();
    let steady_state = steady::steady_state(&site, &aggregates, &inputs.frequency, &in_period);
    let energy = energy::energy(&site, period, meter_name.clone(), &meter);
    let service_tickets: Vec<TicketRow> = inputs
        .tickets
        .iter()
        .filter(|t| t.opened_at < period.to && t.closed_at.is_none_or(|c| c >= period.from))
        .cloned()
        .collect();
    let (service, clock_ahead) = service::service(&service_tickets, &inputs.first_deliveries);

    let mut notes = Vec::new();
    let mut note = |code: &str, text: String| {
        notes.push(Note {
            code: code.into(),
            text,
        })
    };
    let nothing = inputs.events.is_empty()
        && service.tickets.is_empty()
        && aggregates.is_empty()
        && inputs.frequency.intervals == 0
        && in_period.is_empty();
    if nothing {
        note(
            "no-data",
            "The store holds no events, tickets, measurements or meter readings for this period."
                .into(),
        );
    } else {
        if inputs.events.is_empty() {
            note(
                "no-events",
                "No voltage event was recorded in this period.".into(),
            );
        }
        if aggregates.is_empty() {
            note(
                "no-aggregates",
                "No 10-minute voltage aggregates in this period: steady-state voltage is not assessed."
                    .into(),
            );
        }
        if meter_name.is_none() {
            note(
                "no-meter",
                "No meter intervals in this period: energy, demand and energy not supplied are unknown."
                    .into(),
            );
        }
    }
    if site_from_ticket {
        note(
            "site-from-ticket",
            "The store has no site record (written by an older kare): the header is taken from its latest ticket."
                .into(),
        );
    } else if inputs.site.is_none() {
        note(
            "no-site",
            "The store has no site record: the report's header is empty.".into(),
        );
    }
    if !other_meters.is_empty() {
        note(
            "meters-left-out",
            format!(
                "Energy is from {}; not added: {} (meters on one site usually measure the same supply).",
                meter_name.as_deref().unwrap_or("-"),
                other_meters.join(", ")
            ),
        );
    }
    if clipped_to_now {
        note(
            "period-clipped",
            format!(
                "The period asked for ends in the future ({}): the figures run to the time of the report ({}), or to the last record when the data clock is ahead.",
                asked.to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                period.to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        );
    }
    if supply.interruptions.iter().any(|i| i.open) {
        note(
            "open-interruption",
            "An interruption was still in progress at the end of the period (or of the record)."
                .into(),
        );
    }
    if clock_ahead > 0 {
        note(
            "desk-clock",
            format!(
                "{clock_ahead} ticket(s) reached the desk before the failure's time stamp (an accelerated demo runs the data clock ahead of the wall clock): no desk time given."
            ),
        );
    }

    Report {
        site: SiteSummary {
            id: site.id.clone(),
            customer: site.customer_name.clone(),
            tier: site.tier.clone(),
            customer_id: site.customer_id.clone(),
            address: site.address.clone(),
            nominal_kv: site.nominal_kv,
            account_manager: site.account_manager.clone(),
        },
        period: PeriodSummary {
            from: period.from,
            to: period.to,
            hours: continuity::round5(period.hours()),
        },
        supply,
        power_quality,
        steady_state,
        energy,
        service,
        notes,
        generated_at: now,
    }
}

/// The latest time any input row reaches (an event's end or start, an aggregate's or a meter
/// interval's end, a ticket's close or open).
fn last_record(inputs: &ReportInputs) -> Option<DateTime<Utc>> {
    let ms = |s: f64| chrono::Duration::milliseconds((s * 1000.0) as i64);
    let events = inputs.events.iter().map(|e| e.end.unwrap_or(e.start));
    let aggregates = inputs.aggregates.iter().map(|r| r.start + ms(r.seconds));
    let meter = inputs
        .meter_intervals
        .iter()
        .map(|r| r.start + ms(r.seconds));
    let tickets = inputs
        .tickets
        .iter()
        .map(|t| t.closed_at.unwrap_or(t.opened_at));
    events.chain(aggregates).chain(meter).chain(tickets).max()
}

/// The site record; without one (a store from before sites were saved), the header of the
/// newest ticket's body (`site`, `customer`), flagged `true`.
fn site_record(inputs: &ReportInputs) -> (SiteRecord, bool) {
    if let Some(s) = &inputs.site {
        return (s.clone(), false);
    }
    let Some(t) = inputs.tickets.iter().max_by_key(|t| t.updated_at) else {
        return (SiteRecord::default(), false);
    };
    let b = &t.body_json;
    let s = |p: &str| {
        b.pointer(p)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let rec = SiteRecord {
        id: t.site_id.clone(),
        customer_id: t.customer_id.clone(),
        customer_name: s("/customer/name"),
        tier: s("/customer/tier"),
        address: s("/site/address"),
        nominal_kv: b
            .pointer("/site/nominal_kv")
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0),
        account_manager: s("/customer/account_manager/name"),
        ..SiteRecord::default()
    };
    (rec, true)
}

/// Rows for the report's unit tests.
#[cfg(test)]
pub(crate) mod test_rows {
    use crate::store::EventRow;
    use chrono::{DateTime, Duration, TimeZone, Utc};
    use serde_json::json;

    /// 2026-11-`d` `h`:`m`:`s` UTC plus `ms`.
    pub fn at(d: u32, h: u32, m: u32, s: u32, ms: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, d, h, m, s).unwrap() + Duration::milliseconds(ms)
    }

    /// A closed event of `kind` seen by `source`, `secs` long.
    pub fn ev(id: i64, kind: &str, source: &str, start: DateTime<Utc>, secs: f64) -> EventRow {
        EventRow {
            id,
            source: source.into(),
            source_key: format!("{kind}-{id}"),
            site_id: None,
            kind: kind.into(),
            start,
            end: Some(start + Duration::microseconds((secs * 1e6) as i64)),
            duration_s: Some(secs),
            extreme_pct: Some(0.5),
            worst_channel: None,
            open: false,
            json: json!({}),
            profile_json: None,
            has_waveform: false,
            created_at: start,
            updated_at: start,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_rows::{at, ev};
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_period_running_past_now_is_reported_to_now_and_says_so() {
        // "This month" on 4 November 00:00: 72 h have elapsed of November's 720. A 60-min
        // outage: 100 × (1 − 60 / (60 × 72)) = 98.61111 %, not 100 × (1 − 60 / 43 200) = 99.86111 %.
        let inputs = ReportInputs {
            events: vec![ev(1, "interruption", "n1", at(2, 10, 0, 0, 0), 3600.0)],
            ..ReportInputs::default()
        };
        let period = Period {
            from: at(1, 0, 0, 0, 0),
            to: Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
        };
        let now = at(4, 0, 0, 0, 0);
        let r = build(&inputs, &period, now);
        assert_eq!(r.period.to, now);
        assert_eq!(r.period.hours, 72.0);
        assert_eq!(r.supply.availability_pct, 98.61111);
        assert!(
            r.notes.iter().any(|n| n.code == "period-clipped"),
            "{:?}",
            r.notes
        );
        // A period that has ended is reported whole, without the note.
        let r = build(
            &inputs,
            &period,
            Utc.with_ymd_and_hms(2026, 12, 2, 0, 0, 0).unwrap(),
        );
        assert_eq!(r.period.to, period.to);
        assert!(r.notes.iter().all(|n| n.code != "period-clipped"));
    }
}
