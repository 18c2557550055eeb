//! The tickets raised since start, as last changed, for the API and the console (the store is
//! the record).

use crate::actions::rules::TicketOp;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Whether a ticket change is on disk (issue 11: nothing is announced as a ticket that is not
/// stored, or it says so).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// In the store (or there is no store: tests, memory-only runs).
    #[default]
    Stored,
    /// Only in memory: the store cannot write; written (and announced again) when it can.
    WaitingForDisk,
    /// Written now, after waiting in memory: the announcement that follows a waiting one.
    StoredAfterWaiting,
    /// The store refused it for good (not a disk problem: see the log); never written.
    Refused,
}

impl Durability {
    /// What the console and the API add to a ticket that is not simply stored.
    pub fn note(self) -> Option<&'static str> {
        match self {
            Durability::Stored => None,
            Durability::WaitingForDisk => Some("NOT STORED yet: waiting for disk"),
            Durability::StoredAfterWaiting => Some("stored now, after waiting for disk"),
            Durability::Refused => Some("NOT STORED: refused by the store, see the log"),
        }
    }
}

/// One ticket as last changed, with its revision (1 for a new ticket, +1 per change).
#[derive(Clone, Debug, PartialEq)]
pub struct TicketRecord {
    /// The ticket's state after its latest change.
    pub op: TicketOp,
    /// Revision number.
    pub revision: u32,
    /// When kare last changed it.
    pub updated_at: DateTime<Utc>,
    /// On disk or only in memory.
    pub durability: Durability,
}

impl TicketRecord {
    /// The ticket as the API shows it.
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::to_value(&self.op).unwrap_or(Value::Null);
        v["revision"] = json!(self.revision);
        v["updated_at"] = json!(self.updated_at.to_rfc3339_opts(SecondsFormat::Millis, true));
        v["stored"] = json!(matches!(
            self.durability,
            Durability::Stored | Durability::StoredAfterWaiting
        ));
        v["durability"] = json!(self.durability);
        if let Some(note) = self.durability.note() {
            v["note"] = json!(note);
        }
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
            durability: Durability::Stored,
        };
        g.insert(rec.op.key.clone(), rec.clone());
        rec
    }

    /// Sets how a change already applied stands: its revision as the store numbered it (the
    /// store's count wins: it knows revisions from before a restart) and whether it is on disk.
    /// Changes later than `announced` are left alone: the book shows a ticket as last changed.
    pub fn settle(&self, key: &str, announced: u32, revision: u32, durability: Durability) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = g.get_mut(key).filter(|r| r.revision == announced) {
            r.revision = revision;
            r.durability = durability;
        }
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
