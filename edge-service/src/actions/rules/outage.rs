//! The outage rule: supply lost → **one repair ticket per outage**, whatever the number of
//! witnesses (half-cycle stream, coarse meter, UPS input); updated as witnesses report, closed
//! with its duration and IEEE 1366 class when every witness sees the supply back. A failure within
//! the flap window reopens the same ticket, counting failures. After a restart the open ticket
//! is the outage still in progress, closed by the first source that sees the supply.

use super::detail::{OutageClass, OutageDetail, TicketDetail};
use super::{human, secs, stamp, Rules, TicketKind, TicketOp, TicketState};
use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub(super) struct Outage {
    pub(super) key: String,
    pub(super) start: DateTime<Utc>,
    /// Start of the present continuous loss (after a flap, the latest failure): the generator
    /// limit counts from here.
    pub(super) since: DateTime<Utc>,
    pub(super) planned: Option<String>,
    vias: BTreeMap<String, String>,
    failures: u32,
    on_battery: bool,
    /// Restored from the store after a restart: not yet confirmed by a live source.
    restored: bool,
}

#[derive(Clone, Debug)]
pub(super) struct Closed {
    pub(super) outage: Outage,
    pub(super) at: DateTime<Utc>,
}

/// The outage rule's state.
#[derive(Debug, Default)]
pub(super) struct OutageRule {
    /// Sources seeing the supply gone, since when.
    down: BTreeMap<String, DateTime<Utc>>,
    pub(super) open: Option<Outage>,
    /// The last outage closed, for the flap window and for the dip around it.
    pub(super) recent: Option<Closed>,
}

impl Rules {
    /// Whether an outage is open.
    pub fn outage_open(&self) -> bool {
        self.outage.open.is_some()
    }

    /// After a restart: an open repair ticket found in the store is the outage still in progress
    /// (one ticket per outage, across restarts). Closed when a source sees the supply.
    pub fn restore_outage(&mut self, key: &str, start: DateTime<Utc>, failures: u32) {
        self.restore_outage_detail(
            key,
            start,
            OutageDetail {
                failures,
                ..Default::default()
            },
        )
    }

    pub(super) fn restore_outage_detail(
        &mut self,
        key: &str,
        start: DateTime<Utc>,
        d: OutageDetail,
    ) {
        self.outage.open = Some(Outage {
            key: key.to_string(),
            start,
            since: start,
            planned: d.planned_reference,
            vias: BTreeMap::new(),
            failures: d.failures.max(1),
            on_battery: false,
            restored: true,
        });
    }

    pub(super) fn supply_present(
        &mut self,
        source: &str,
        at: DateTime<Utc>,
        out: &mut Vec<TicketOp>,
    ) {
        let restored = self.outage.open.as_ref().is_some_and(|o| o.restored);
        if restored && !self.outage.down.contains_key(source) && self.outage.down.is_empty() {
            // The supply came back while the appliance was not watching.
            self.close_outage(at, out, "supply found present after a restart");
        }
    }

    pub(super) fn battery_low(&mut self, at: DateTime<Utc>, out: &mut Vec<TicketOp>) {
        if let Some(o) = self.outage.open.clone() {
            out.push(self.outage_op(
                &o,
                TicketState::Open,
                None,
                Some(format!(
                    "appliance battery low at {}: the appliance shuts down now and reports again when power returns",
                    at.to_rfc3339_opts(SecondsFormat::Secs, true)
                )),
            ));
        }
    }

    pub(super) fn supply_lost(
        &mut self,
        source: String,
        at: DateTime<Utc>,
        via: String,
        out: &mut Vec<TicketOp>,
    ) {
        let first_source = self.outage.down.is_empty();
        self.outage.down.entry(source.clone()).or_insert(at);
        if let Some(o) = &mut self.outage.open {
            // Already open: a new witness (the UPS, a meter) updates the same ticket.
            let new_via = o.vias.insert(source.clone(), via.clone()).is_none();
            if via.contains("UPS") {
                o.on_battery = true;
            }
            o.restored = false;
            if new_via {
                let o = o.clone();
                out.push(self.outage_op(&o, TicketState::Open, None, None));
            }
            return;
        }
        if !first_source {
            return;
        }
        let flap = self.outage.recent.take().filter(|c| {
            secs(at - c.at) <= self.settings.flap_window_s && c.outage.planned.is_none()
        });
        let mut o = match flap {
            Some(c) => {
                let mut o = c.outage;
                o.failures += 1;
                o.vias.clear();
                o.since = at;
                o
            }
            None => {
                let planned = self.planned_reference(at);
                let what = if planned.is_some() {
                    "planned"
                } else {
                    "outage"
                };
                Outage {
                    key: format!("{}-{what}-{}", self.site.id, stamp(at)),
                    start: at,
                    since: at,
                    planned,
                    vias: BTreeMap::new(),
                    failures: 1,
                    on_battery: false,
                    restored: false,
                }
            }
        };
        o.vias.insert(source, via.clone());
        o.on_battery |= via.contains("UPS");
        self.outage.open = Some(o.clone());
        out.push(self.outage_op(&o, TicketState::Open, None, None));
    }

    pub(super) fn supply_back(&mut self, source: &str, at: DateTime<Utc>, out: &mut Vec<TicketOp>) {
        self.outage.down.remove(source);
        if self.outage.down.is_empty() && self.outage.open.is_some() {
            self.close_outage(at, out, "supply restored");
        }
    }

    fn close_outage(&mut self, at: DateTime<Utc>, out: &mut Vec<TicketOp>, why: &str) {
        let Some(o) = self.outage.open.take() else {
            return;
        };
        // Witnesses keep different clocks (a node's sample clock, a meter stamped at its poll,
        // the UPS input): a restoration stamped before the last loss it ends is read as at it,
        // never as a negative outage.
        let at = at.max(o.since);
        out.push(self.outage_op(&o, TicketState::Closed, Some(at), Some(why.to_string())));
        self.cancel_generator(at, why, out);
        self.outage.recent = Some(Closed { outage: o, at });
    }

    fn outage_op(
        &self,
        o: &Outage,
        state: TicketState,
        closed: Option<DateTime<Utc>>,
        note: Option<String>,
    ) -> TicketOp {
        let duration = closed.map(|c| secs(c - o.start));
        let class = duration.map(|d| {
            if d <= self.settings.momentary_max_s {
                OutageClass::Momentary
            } else {
                OutageClass::Sustained
            }
        });
        let who = &self.site.customer_name;
        let (kind, priority, title) = match &o.planned {
            Some(r) => (
                TicketKind::Planned,
                "P4",
                Self::planned_title(who, r, state, duration),
            ),
            None => {
                let title = match (state, duration) {
                    (TicketState::Open, _) if o.on_battery => {
                        format!("Supply lost at {who}: appliance on battery")
                    }
                    (TicketState::Open, _) if o.failures > 1 => {
                        format!("Supply lost at {who} (failed {} times)", o.failures)
                    }
                    (TicketState::Open, _) => format!("Supply lost at {who}"),
                    (_, Some(d)) => format!(
                        "Supply restored at {who} after {} ({})",
                        human(d),
                        class.map(OutageClass::as_str).unwrap_or_default()
                    ),
                    _ => format!("Supply at {who}"),
                };
                (TicketKind::Repair, self.site.tier.priority(), title)
            }
        };
        self.op(
            o.key.clone(),
            kind,
            state,
            priority,
            title,
            o.start,
            closed,
            TicketDetail::Outage(OutageDetail {
                seen_by: o.vias.clone(),
                failures: o.failures,
                on_battery: o.on_battery,
                classification: class,
                planned_reference: o.planned.clone(),
                note,
            }),
        )
    }

    /// Whether `[start, end]` overlaps the open outage or the last one closed (up to a second
    /// after it): the dip around an interruption is the interruption.
    pub(super) fn within_outage(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        let overlaps = |from: DateTime<Utc>, to: Option<DateTime<Utc>>| {
            start <= to.unwrap_or(end) && end >= from
        };
        self.outage
            .open
            .as_ref()
            .is_some_and(|o| overlaps(o.start, None))
            || self.outage.recent.as_ref().is_some_and(|c| {
                overlaps(c.outage.start, Some(c.at + chrono::Duration::seconds(1)))
            })
    }
}
