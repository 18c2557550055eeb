//! The engineering rule: `deep_dip_count` dips below `deep_dip_pct` within `deep_dip_window_h`
//! raise **one engineering ticket** for the utility's engineers; further deep dips belong to it
//! while it is open (each is a new revision listing it). It **closes after `engineering_quiet_h` without a deep dip**, stamped at the
//! moment the quiet period was complete (last deep dip + quiet period); counting then starts
//! afresh, so a new ticket needs a new run of deep dips.

use super::detail::{EngineeringDetail, TicketDetail};
use super::{human, secs, span, stamp, Rules, TicketKind, TicketOp, TicketState};
use chrono::{DateTime, Utc};
use std::collections::VecDeque;

/// The open ticket.
#[derive(Clone, Debug)]
struct Open {
    key: String,
    first: DateTime<Utc>,
    /// The latest deep dip it covers.
    last: DateTime<Utc>,
    /// The deep dips that raised it and those since (its detail).
    dips: Vec<DateTime<Utc>>,
}

/// The engineering rule's state.
#[derive(Debug, Default)]
pub(super) struct EngineeringRule {
    deep_dips: VecDeque<DateTime<Utc>>,
    open: Option<Open>,
}

impl EngineeringRule {
    pub(super) fn restore(&mut self, key: &str, opened: DateTime<Utc>, dips: Vec<DateTime<Utc>>) {
        let last = dips.iter().copied().max().unwrap_or(opened).max(opened);
        self.deep_dips = dips.iter().copied().collect();
        self.open = Some(Open {
            key: key.to_string(),
            first: opened,
            last,
            dips,
        });
    }
}

impl Rules {
    /// A deep dip starting at `start` (already known to be below `deep_dip_pct`).
    pub(super) fn deep_dip(&mut self, start: DateTime<Utc>, out: &mut Vec<TicketOp>) {
        let s = &self.settings;
        let window = span(s.deep_dip_window_h, 3_600_000.0);
        let e = &mut self.engineering;
        e.deep_dips.push_back(start);
        while e.deep_dips.front().is_some_and(|t| start - *t > window) {
            e.deep_dips.pop_front();
        }
        if let Some(o) = &mut e.open {
            // Recorded, not only remembered: the stored detail is what a restart restores the
            // quiet period from, and the engineers see the count grow.
            o.last = o.last.max(start);
            o.dips.push(start);
            let o = o.clone();
            out.push(self.engineering_op(&o, None));
            return;
        }
        if e.deep_dips.len() < s.deep_dip_count.max(1) {
            return;
        }
        let first = e.deep_dips.front().copied().unwrap_or(start);
        let dips: Vec<_> = e.deep_dips.iter().copied().collect();
        let o = Open {
            key: format!("{}-engineering-{}", self.site.id, stamp(first)),
            first,
            last: start,
            dips,
        };
        e.open = Some(o.clone());
        out.push(self.engineering_op(&o, None));
    }

    /// Closes the ticket after the quiet period.
    pub(super) fn engineering_quiet(&mut self, now: DateTime<Utc>, out: &mut Vec<TicketOp>) {
        let quiet = span(self.settings.engineering_quiet_h, 3_600_000.0);
        let Some(o) = &self.engineering.open else {
            return;
        };
        let over = o.last + quiet;
        if now < over {
            return;
        }
        let o = o.clone();
        self.engineering.open = None;
        self.engineering.deep_dips.clear();
        out.push(self.engineering_op(&o, Some(over)));
    }

    fn engineering_op(&self, o: &Open, closed: Option<DateTime<Utc>>) -> TicketOp {
        let s = &self.settings;
        let who = &self.site.customer_name;
        let (state, title) = match closed {
            None => (
                TicketState::Open,
                format!(
                    "{} deep dips (below {:.0} %) at {who} within {:.0} h",
                    o.dips.len(),
                    s.deep_dip_pct,
                    s.deep_dip_window_h
                ),
            ),
            Some(at) => (
                TicketState::Closed,
                format!(
                    "Deep dips at {who} quiet: none below {:.0} % for {}",
                    s.deep_dip_pct,
                    human(secs(at - o.last))
                ),
            ),
        };
        self.op(
            o.key.clone(),
            TicketKind::Engineering,
            state,
            "P3",
            title,
            o.first,
            closed,
            TicketDetail::Engineering(EngineeringDetail {
                deep_dips: o.dips.clone(),
            }),
        )
    }
}
