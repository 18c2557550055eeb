//! The power-quality notice rule: the dips and swells of one site-local day (the day as the
//! site's clock reads it, `[site] utc_offset_minutes`) make **one notice** for the account
//! manager, updated with each disturbance and **closed when the day is over** (at the site's
//! midnight, on the rules' clock). A disturbance of that day reported after its close (one that
//! ended just after midnight) reopens it, and the next tick closes it again.

use super::detail::{PqEvent, PqNoticeDetail, TicketDetail};
use super::{Rules, TicketKind, TicketOp, TicketState};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::BTreeMap;

/// One day's notice.
#[derive(Clone, Debug)]
struct PqDay {
    day: NaiveDate,
    key: String,
    counts: BTreeMap<String, u32>,
    lowest: f64,
    highest: f64,
    first: DateTime<Utc>,
    last: PqEvent,
    closed: bool,
}

/// The notice rule's state: the latest day's notice.
#[derive(Debug, Default)]
pub(super) struct PqRule {
    day: Option<PqDay>,
}

impl PqRule {
    pub(super) fn restore(
        &mut self,
        key: &str,
        day: NaiveDate,
        first: DateTime<Utc>,
        d: PqNoticeDetail,
    ) {
        self.day = Some(PqDay {
            day,
            key: key.to_string(),
            counts: d.counts,
            lowest: d.lowest_dip_pct.unwrap_or(f64::INFINITY),
            highest: d.highest_swell_pct.unwrap_or(f64::NEG_INFINITY),
            first,
            last: d.last,
            closed: false,
        });
    }
}

impl Rules {
    /// Counts a dip or swell (not one inside an outage) on its day's notice.
    pub(super) fn pq_notice(&mut self, ev: PqEvent, out: &mut Vec<TicketOp>) {
        let day = self.site.local_day(ev.start);
        match &self.pq.day {
            // A late report for a day already replaced: its notice is no longer kept.
            Some(d) if d.day > day => return,
            Some(d) if d.day == day => {}
            _ => {
                // A new day: the previous day's notice ends first, if the tick has not ended it.
                if let Some(prev) = self.pq.day.take() {
                    if !prev.closed {
                        out.push(self.pq_op(&prev, true));
                    }
                }
                self.pq.day = Some(PqDay {
                    day,
                    key: format!("{}-pq-{}", self.site.id, day.format("%Y-%m-%d")),
                    counts: BTreeMap::new(),
                    lowest: f64::INFINITY,
                    highest: f64::NEG_INFINITY,
                    first: ev.start,
                    last: ev.clone(),
                    closed: false,
                });
            }
        }
        let Some(entry) = self.pq.day.as_mut() else {
            return;
        };
        *entry.counts.entry(ev.kind.clone()).or_default() += 1;
        if ev.kind == "dip" {
            entry.lowest = entry.lowest.min(ev.extreme_pct);
        } else {
            entry.highest = entry.highest.max(ev.extreme_pct);
        }
        entry.last = ev;
        entry.closed = false;
        let entry = entry.clone();
        out.push(self.pq_op(&entry, false));
    }

    /// Closes the notice whose day is over at `now`.
    pub(super) fn pq_day_over(&mut self, now: DateTime<Utc>, out: &mut Vec<TicketOp>) {
        let Some(d) = &self.pq.day else {
            return;
        };
        if d.closed || now < self.site.local_day_end(d.day) {
            return;
        }
        let d = d.clone();
        out.push(self.pq_op(&d, true));
        if let Some(d) = &mut self.pq.day {
            d.closed = true;
        }
    }

    fn pq_op(&self, d: &PqDay, close: bool) -> TicketOp {
        let total: u32 = d.counts.values().sum();
        let deepest = if d.lowest.is_finite() {
            format!(", deepest dip to {:.0} %", d.lowest)
        } else {
            String::new()
        };
        let (state, closed_at, over) = if close {
            let end = self.site.local_day_end(d.day);
            (TicketState::Closed, Some(end.max(d.first)), " (day over)")
        } else {
            (TicketState::Open, None, "")
        };
        self.op(
            d.key.clone(),
            TicketKind::PqNotice,
            state,
            "P4",
            format!(
                "Power quality at {} on {}: {total} event(s){deepest}{over}",
                self.site.customer_name, d.day
            ),
            d.first,
            closed_at,
            TicketDetail::PqNotice(PqNoticeDetail {
                counts: d.counts.clone(),
                lowest_dip_pct: d.lowest.is_finite().then_some(d.lowest),
                highest_swell_pct: d.highest.is_finite().then_some(d.highest),
                last: d.last.clone(),
            }),
        )
    }
}
