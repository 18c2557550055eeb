//! The generator rule: at a generator-eligible site, an outage lasting past the site's limit
//! (counted from the present continuous loss) raises one **mobile-generator request**, sized
//! from the recent peak demand (or the connection's rating); it is cancelled when the supply
//! returns first. Planned outages get none.

use super::detail::{GeneratorDetail, TicketDetail};
use super::{human, secs, span, stamp, RuleSettings, Rules, TicketKind, TicketOp, TicketState};
use chrono::{DateTime, Utc};
use std::collections::VecDeque;

/// An open request.
#[derive(Clone, Debug)]
struct Request {
    key: String,
    opened: DateTime<Utc>,
    detail: GeneratorDetail,
}

/// The generator rule's state.
#[derive(Debug, Default)]
pub(super) struct GeneratorRule {
    open: Option<Request>,
    /// Recent active demand, kW, for sizing.
    demand: VecDeque<(DateTime<Utc>, f64)>,
}

impl GeneratorRule {
    pub(super) fn restore(&mut self, key: &str, opened: DateTime<Utc>, detail: GeneratorDetail) {
        self.open = Some(Request {
            key: key.to_string(),
            opened,
            detail,
        });
    }

    pub(super) fn demand(&mut self, at: DateTime<Utc>, kw: f64, s: &RuleSettings) {
        self.demand.push_back((at, kw));
        let horizon = at - span(s.demand_window_h, 3_600_000.0);
        while self.demand.front().is_some_and(|(t, _)| *t < horizon) {
            self.demand.pop_front();
        }
    }
}

impl Rules {
    /// After a restart: an open generator request found in the store.
    pub fn restore_generator(&mut self, key: &str, opened: DateTime<Utc>) {
        self.generator
            .restore(key, opened, GeneratorDetail::default());
    }

    pub(super) fn generator_due(&mut self, now: DateTime<Utc>, out: &mut Vec<TicketOp>) {
        let Some(o) = self.outage.open.clone() else {
            return;
        };
        let gen = &self.site.generator;
        let due = o.since + span(gen.after_minutes, 60_000.0);
        if o.planned.is_some() || !gen.eligible || self.generator.open.is_some() || now < due {
            return;
        }
        let (kva, sizing) = self.generator_size();
        let key = format!("{}-generator-{}", self.site.id, stamp(o.start));
        let detail = GeneratorDetail {
            outage_key: o.key.clone(),
            size_kva: kva,
            sizing,
            connection_point: gen.connection_point.clone(),
            connection_kva: gen.connection_kva,
            outage_started: o.start,
        };
        let title = format!(
            "Mobile generator {kva:.0} kVA needed at {}: supply lost for {}",
            self.site.customer_name,
            human(secs(now - o.since))
        );
        self.generator.open = Some(Request {
            key: key.clone(),
            opened: now,
            detail: detail.clone(),
        });
        out.push(self.op(
            key,
            TicketKind::Generator,
            TicketState::Open,
            self.site.tier.priority(),
            title,
            now,
            None,
            TicketDetail::Generator(detail),
        ));
    }

    /// The outage ended before the generator was done with: the request is cancelled.
    pub(super) fn cancel_generator(
        &mut self,
        at: DateTime<Utc>,
        why: &str,
        out: &mut Vec<TicketOp>,
    ) {
        if let Some(r) = self.generator.open.take() {
            out.push(self.op(
                r.key,
                TicketKind::Generator,
                TicketState::Cancelled,
                self.site.tier.priority(),
                format!(
                    "Mobile generator no longer needed at {}: {why}",
                    self.site.customer_name
                ),
                r.opened,
                Some(at),
                TicketDetail::Generator(r.detail),
            ));
        }
    }

    /// Generator size in kVA and how it was found.
    fn generator_size(&self) -> (f64, String) {
        let gen = &self.site.generator;
        let peak = self
            .generator
            .demand
            .iter()
            .map(|(_, kw)| *kw)
            .fold(f64::NAN, f64::max);
        if peak.is_finite() && peak > 0.0 {
            let s = &self.settings;
            let kva = peak / s.power_factor * s.generator_margin;
            let capped = kva.min(gen.connection_kva);
            (
                capped,
                format!(
                    "peak demand {peak:.0} kW over the last {:.0} h / power factor {} × margin {}{}",
                    s.demand_window_h,
                    s.power_factor,
                    s.generator_margin,
                    if capped < kva {
                        format!(", capped at the connection's {:.0} kVA", gen.connection_kva)
                    } else {
                        String::new()
                    }
                ),
            )
        } else {
            (
                gen.connection_kva,
                "no interval data: the generator connection's rating".to_string(),
            )
        }
    }
}
