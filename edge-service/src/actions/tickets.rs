//! The tickets raised since start, as last changed, for the API and the console (the store is
//! the record).

use crate::actions::rules::TicketOp;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// One ticket as last changed, with its revision (1 for a new ticket, +1 per change).
#[derive(Clone, Debug, PartialEq)]
pub struct TicketRecord {
    /// The ticket's state after its latest change.
    pub op: TicketOp,
    /// Revision number.
    pub revision: u32,
    /// When kare last changed it.
    pub updated_at: DateTime<Utc>,
}

impl TicketRecord {
    /// The ticket as the API shows it.
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::to_value(&self.op).unwrap_or(Value::Null);
        v["revision"] = json!(self.revision);
        v["updated_at"] = json!(self.updated_at.to_rfc3339_opts(SecondsFormat::Millis, true));
        v
    }
}

/// The tickets raised since start, by key (in memory; the durable store takes over behind the
/// same calls).
#[derive(Debug, Default)]
pub struct TicketBook {
    inner: Mutex<BTreeMap<String, TicketRecord>>,
}

impl TicketBook {
    /// Applies one change; returns the ticket as recorded.
    pub fn apply(&self, op: TicketOp, now: DateTime<Utc>) -> TicketRecord {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let revision = g.get(&op.key).map(|r| r.revision + 1).unwrap_or(1);
        let rec = TicketRecord {
            op,
            revision,
            updated_at: now,
        };
        g.insert(rec.op.key.clone(), rec.clone());
        rec
    }

    /// Every ticket, oldest opened first.
    pub fn all(&self) -> Vec<TicketRecord> {
        let mut v: Vec<_> = self
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by_key(|r| (r.op.opened_at, r.op.key.clone()));
        v
    }
}
