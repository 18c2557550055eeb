//! The store alarm (issue 11): a store that cannot write raises a maintenance ticket that needs
//! no disk to reach anyone.
//!
//! Raised at the first write the store refuses for want of a disk (or when the store reports a
//! failed write of another writer), it is:
//! - sent **straight from memory** to the endpoints routed for `maintenance` tickets
//!   ([`crate::actions::delivery::memory`]: same channels, same idempotency key `<key>:1`, a few
//!   tries), because the outbox is in the store that cannot write;
//! - logged at error level (stderr) and announced on the console and the API as a maintenance
//!   ticket marked "NOT STORED yet: waiting for disk";
//! - recorded like any ticket change: it waits in memory with the rest and is written when the
//!   store writes again, then closed (revision 2: "store … writes again"), both delivered by the
//!   outbox as usual (the receiver deduplicates revision 1, which it had from memory).
//!
//! One alarm at a time: further failures while it is open say nothing new to the desk.

use crate::actions::delivery::memory::send_from_memory;
use crate::actions::rules::{MaintenanceDetail, TicketDetail, TicketKind, TicketOp, TicketState};
use crate::pipeline::consumer::Outputs;
use chrono::{DateTime, Utc};

/// An open store alarm.
#[derive(Clone, Debug)]
pub(crate) struct StoreAlarm {
    key: String,
    since: DateTime<Utc>,
    problem: String,
}

/// The source named in the ticket's detail.
const SOURCE: &str = "store";

fn op(a: &StoreAlarm, back: Option<DateTime<Utc>>) -> TicketOp {
    let (state, title) = match back {
        None => (TicketState::Open, a.problem.clone()),
        Some(_) => (
            TicketState::Closed,
            format!(
                "the store writes again; what waited in memory is stored (it failed with: {})",
                a.problem
            ),
        ),
    };
    let closed_at = back.map(|b| b.max(a.since));
    TicketOp {
        key: a.key.clone(),
        kind: TicketKind::Maintenance,
        state,
        // As a failing delivery endpoint: the appliance cannot keep its record.
        priority: "P2".into(),
        title,
        opened_at: a.since,
        closed_at,
        duration_s: closed_at.map(|c| (c - a.since).num_milliseconds() as f64 / 1000.0),
        detail: TicketDetail::Maintenance(MaintenanceDetail::Source {
            source: SOURCE.into(),
            reason: a.problem.clone(),
        }),
    }
}

/// Store alarms raised by this process, for unique keys.
static ALARMS_RAISED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Outputs {
    /// Raises the alarm unless it is open: sends it from memory, says it on stderr, and returns
    /// its opening ticket change for the caller to record (it will wait in memory).
    pub(crate) fn raise_store_alarm(
        &self,
        problem: String,
        now: DateTime<Utc>,
    ) -> Option<TicketOp> {
        let mut g = self.alarm.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_some() {
            return None;
        }
        let a = StoreAlarm {
            // The counter: an alarm raised, cleared and raised again within one second is a
            // new ticket, not a duplicate the desk would drop.
            key: format!(
                "{}-store-{}-{}",
                self.site.id,
                now.format("%Y%m%dT%H%M%SZ"),
                ALARMS_RAISED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
            ),
            since: now,
            problem,
        };
        let open = op(&a, None);
        let (events, tickets) = (
            crate::pipeline::pending::MAX_EVENTS,
            crate::pipeline::pending::MAX_TICKET_CHANGES,
        );
        tracing::error!(
            "{}. Until then events and ticket changes wait in memory (up to {events} and \
             {tickets}) and are written when it can; the repair desk is told from memory",
            a.problem
        );
        let to = self
            .routes
            .by_kind
            .get(TicketKind::Maintenance.as_str())
            .cloned()
            .unwrap_or_default();
        match (&self.senders, to.is_empty()) {
            (Some(senders), false) => {
                let mut payload = crate::actions::record::payload(&open, &self.site, None, now);
                // A new key: revision 1 here and in the store. Id 0: not in the store yet.
                payload.revision = 1;
                payload.id = 0;
                let senders = senders.clone();
                tokio::spawn(async move {
                    send_from_memory(&senders, &to, &payload).await;
                });
            }
            _ => tracing::error!(
                "no endpoint is routed for maintenance tickets: nobody outside can be told that \
                 the store cannot write (set [routes] maintenance)"
            ),
        }
        *g = Some(a);
        Some(open)
    }

    /// Closes the alarm if it is open: returns its closing change, for the usual path.
    pub(crate) fn clear_store_alarm(&self, now: DateTime<Utc>) -> Option<TicketOp> {
        let a = self
            .alarm
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()?;
        tracing::warn!(
            "store {} writes again (it failed from {}); the alarm is closed",
            self.store.as_ref().map(|s| s.path()).unwrap_or_default(),
            a.since
        );
        Some(op(&a, Some(now)))
    }
}

/// A store alarm found open at start (the last run stopped before its store wrote again): its
/// closing change, since this run has just read and written the store. `None` for any other
/// ticket.
pub(crate) fn close_restored(
    t: &crate::store::TicketRow,
    detail: &TicketDetail,
    now: DateTime<Utc>,
) -> Option<TicketOp> {
    match detail {
        TicketDetail::Maintenance(MaintenanceDetail::Source { source, reason })
            if t.kind == TicketKind::Maintenance.as_str() && source == SOURCE =>
        {
            let a = StoreAlarm {
                key: t.key.clone(),
                since: t.opened_at,
                problem: reason.clone(),
            };
            tracing::warn!(key = %t.key, "store alarm left open by the last run: closed");
            Some(op(&a, Some(now)))
        }
        _ => None,
    }
}
