//! The service record: every repair ticket, generator request and planned outage in the period,
//! with when the supply failed, how long until the desk was told and until restoration.

use super::continuity::round3;
use crate::actions::rules::{GeneratorDetail, OutageDetail};
use crate::report::model::{Service, ServiceTicket};
use crate::store::TicketRow;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::HashMap;

/// Kinds in the service record.
pub const KINDS: [&str; 3] = ["repair", "generator", "planned"];

fn detail<T: serde::de::DeserializeOwned + Default>(t: &TicketRow) -> T {
    t.body_json
        .get("detail")
        .cloned()
        .and_then(|d| serde_json::from_value(d).ok())
        .unwrap_or_default()
}

fn ms(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e3
}

/// The section, and how many tickets were told to the desk "before" the failure (the desk's
/// clock is the wall clock; an accelerated demo's failures run on the data clock, ahead of it):
/// those get no `desk_told_ms`.
pub(crate) fn service(
    tickets: &[TicketRow],
    first_deliveries: &HashMap<i64, DateTime<Utc>>,
) -> (Service, u32) {
    let mut clock_ahead = 0;
    let generators: Vec<(&TicketRow, GeneratorDetail)> = tickets
        .iter()
        .filter(|t| t.kind == "generator")
        .map(|t| (t, detail::<GeneratorDetail>(t)))
        .collect();
    let mut out: Vec<ServiceTicket> = Vec::new();
    for t in tickets.iter().filter(|t| KINDS.contains(&t.kind.as_str())) {
        let (failed, failures, planned_reference, gen) = match t.kind.as_str() {
            "generator" => {
                let d = generators
                    .iter()
                    .find(|g| g.0.id == t.id)
                    .map(|g| g.1.clone())
                    .unwrap_or_default();
                let failed = if d.outage_started > DateTime::<Utc>::UNIX_EPOCH {
                    d.outage_started
                } else {
                    t.opened_at
                };
                (failed, None, None, Some(t))
            }
            _ => {
                let d = detail::<OutageDetail>(t);
                let gen = generators
                    .iter()
                    .find(|g| g.1.outage_key == t.key)
                    .map(|g| g.0);
                (
                    t.opened_at,
                    Some(d.failures.max(1)),
                    d.planned_reference,
                    gen,
                )
            }
        };
        let desk_told_ms = first_deliveries.get(&t.id).and_then(|d| {
            let v = ms(failed, *d);
            if v < 0.0 {
                clock_ahead += 1;
                None
            } else {
                Some(round3(v))
            }
        });
        let title = t
            .body_json
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or(&t.title)
            .to_string();
        out.push(ServiceTicket {
            key: t.key.clone(),
            kind: t.kind.clone(),
            state: t.state.as_str().to_string(),
            title,
            supply_failed: failed,
            desk_told_ms,
            ended: t.closed_at,
            duration_s: t.closed_at.map(|c| round3(ms(failed, c).max(0.0) / 1e3)),
            failures,
            generator_requested: gen.map(|g| g.opened_at),
            generator_cancelled: gen
                .filter(|g| g.state.as_str() == "cancelled")
                .and_then(|g| g.closed_at),
            planned_reference,
        });
    }
    out.sort_by(|a, b| {
        a.supply_failed
            .cmp(&b.supply_failed)
            .then(a.key.cmp(&b.key))
    });
    (Service { tickets: out }, clock_ahead)
}
