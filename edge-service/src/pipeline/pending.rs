//! Writes waiting for the store: events and ticket changes the store could not take (a full
//! disk, an I/O error), kept **in memory, in their original order**, and written, then
//! delivered by the outbox as usual, when it writes again (issue 11).
//!
//! Once anything waits, every later write waits behind it (the consumer does not try the store
//! out of turn), so ticket revisions reach the store, and the desk, in the order they were made.
//!
//! **Bounds.** At most [`MAX_EVENTS`] events and, separately, [`MAX_TICKET_CHANGES`] ticket
//! changes wait: an event storm can never push a ticket change out (ticket changes are what
//! the desk acts on; events stay in the live log and the API even when dropped from here).
//! - An event already waiting is replaced by its newer state (an upsert would overwrite it
//!   anyway), in its first place.
//! - Past the event bound the oldest waiting event is dropped, counted and logged.
//! - Past the ticket bound a change is merged into the newest waiting change of the same ticket
//!   (the desk gets the latest state, one revision fewer: counted, logged); a change of a ticket
//!   with nothing waiting is dropped, counted and logged at error level. Never silently.
//!
//! Nothing here survives a restart: that is what the store is for. At a stop, what still waits
//! is reported as lost (the run then fails).

use crate::actions::rules::TicketOp;
use crate::pipeline::event_log::LoggedEvent;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Most events waiting in memory (each a few hundred bytes plus its shared RMS profile).
pub const MAX_EVENTS: usize = 10_000;
/// Most ticket changes waiting in memory (a few per outage: this is days of a failed disk).
pub const MAX_TICKET_CHANGES: usize = 10_000;

/// What the status page and the health report show of the queue.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PendingStats {
    /// Events waiting for the store.
    pub events: usize,
    /// Ticket changes waiting for the store.
    pub ticket_changes: usize,
    /// Since when the oldest has waited.
    pub oldest: Option<DateTime<Utc>>,
    /// Events dropped past the bound since start.
    pub events_dropped: u64,
    /// Ticket changes merged into a later waiting change of their ticket past the bound.
    pub ticket_changes_merged: u64,
    /// Ticket changes dropped past the bound (nothing of their ticket was waiting).
    pub ticket_changes_dropped: u64,
    /// The bounds.
    pub max_events: usize,
    /// The bounds.
    pub max_ticket_changes: usize,
}

/// A ticket change as the consumer made it, waiting to be saved.
#[derive(Clone, Debug, PartialEq)]
pub struct TicketChange {
    /// The ticket after the change.
    pub op: TicketOp,
    /// The event behind it: its log id (its store id is known only once it is written).
    pub cause: Option<u64>,
    /// When it was made (the payload's `updated_at`, kept when written late).
    pub at: DateTime<Utc>,
    /// The revision announced for it (the store's own number follows when written).
    pub revision: u32,
}

/// One write.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// Upsert an event.
    Event(LoggedEvent),
    /// Save a ticket change with its deliveries.
    Ticket(TicketChange),
}

/// What [`Pending::push`] did beyond queuing.
#[derive(Clone, Debug, PartialEq)]
pub enum Pushed {
    /// Queued at the end.
    Queued,
    /// An event already waiting was replaced by its newer state.
    Coalesced,
    /// Queued; the oldest waiting event (this log id) was dropped to make room.
    DroppedEvent(u64),
    /// Past the bound: merged into the newest waiting change of the same ticket.
    Merged,
    /// Past the bound, nothing of its ticket waiting: dropped.
    DroppedTicket,
}

/// The queue. The consumer owns it; [`PendingStats`] is shared with the status page.
#[derive(Debug)]
pub struct Pending {
    q: VecDeque<(Write, DateTime<Utc>)>,
    max_events: usize,
    max_tickets: usize,
    events: usize,
    tickets: usize,
    stats: Arc<Mutex<PendingStats>>,
}

impl Pending {
    /// An empty queue with the default bounds, publishing into `stats`.
    pub fn new(stats: Arc<Mutex<PendingStats>>) -> Pending {
        Pending::with_bounds(stats, MAX_EVENTS, MAX_TICKET_CHANGES)
    }

    /// An empty queue with other bounds (tests).
    pub fn with_bounds(
        stats: Arc<Mutex<PendingStats>>,
        max_events: usize,
        max_tickets: usize,
    ) -> Pending {
        let p = Pending {
            q: VecDeque::new(),
            max_events: max_events.max(1),
            max_tickets: max_tickets.max(1),
            events: 0,
            tickets: 0,
            stats,
        };
        p.publish(|_| {});
        p
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    /// Whether the event with this log id waits.
    pub fn has_event(&self, id: u64) -> bool {
        self.q
            .iter()
            .any(|(w, _)| matches!(w, Write::Event(e) if e.id == id))
    }

    /// Queues a write at the end (see the module's bounds).
    pub fn push(&mut self, w: Write, now: DateTime<Utc>) -> Pushed {
        let done = match w {
            Write::Event(ev) => {
                if let Some(slot) = self.q.iter_mut().find_map(|(w, _)| match w {
                    Write::Event(e) if e.id == ev.id => Some(e),
                    _ => None,
                }) {
                    *slot = ev;
                    Pushed::Coalesced
                } else {
                    let mut pushed = Pushed::Queued;
                    if self.events >= self.max_events {
                        if let Some(i) = self
                            .q
                            .iter()
                            .position(|(w, _)| matches!(w, Write::Event(_)))
                        {
                            if let Some((Write::Event(old), _)) = self.q.remove(i) {
                                pushed = Pushed::DroppedEvent(old.id);
                            }
                            self.events -= 1;
                        }
                    }
                    self.q.push_back((Write::Event(ev), now));
                    self.events += 1;
                    pushed
                }
            }
            Write::Ticket(t) if self.tickets >= self.max_tickets => {
                let newest = self.q.iter_mut().rev().find_map(|(w, _)| match w {
                    Write::Ticket(old) if old.op.key == t.op.key => Some(old),
                    _ => None,
                });
                match newest {
                    Some(old) => {
                        *old = t;
                        Pushed::Merged
                    }
                    None => Pushed::DroppedTicket,
                }
            }
            Write::Ticket(t) => {
                self.q.push_back((Write::Ticket(t), now));
                self.tickets += 1;
                Pushed::Queued
            }
        };
        self.publish(|s| match &done {
            Pushed::DroppedEvent(_) => s.events_dropped += 1,
            Pushed::Merged => s.ticket_changes_merged += 1,
            Pushed::DroppedTicket => s.ticket_changes_dropped += 1,
            Pushed::Queued | Pushed::Coalesced => {}
        });
        done
    }

    /// The oldest write, to try.
    pub fn front(&self) -> Option<&Write> {
        self.q.front().map(|(w, _)| w)
    }

    /// Removes the oldest write (it was written).
    pub fn pop_front(&mut self) -> Option<Write> {
        let (w, _) = self.q.pop_front()?;
        match &w {
            Write::Event(_) => self.events -= 1,
            Write::Ticket(_) => self.tickets -= 1,
        }
        self.publish(|_| {});
        Some(w)
    }

    /// How many events and ticket changes wait.
    pub fn counts(&self) -> (usize, usize) {
        (self.events, self.tickets)
    }

    fn publish(&self, f: impl FnOnce(&mut PendingStats)) {
        let mut s = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        s.events = self.events;
        s.ticket_changes = self.tickets;
        s.oldest = self.q.front().map(|(_, at)| *at);
        s.max_events = self.max_events;
        s.max_ticket_changes = self.max_tickets;
        f(&mut s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::rules::{TicketDetail, TicketKind, TicketState};
    use crate::pipeline::event_log::EventBody;

    fn ev(id: u64, reason: &str) -> Write {
        let t = Utc::now();
        Write::Event(LoggedEvent {
            id,
            source: "n".into(),
            body: EventBody::SensorLost {
                start: t,
                end: None,
                reason: reason.into(),
            },
            profile: None,
            waveform: None,
        })
    }

    fn tk(key: &str, revision: u32) -> Write {
        let t = Utc::now();
        Write::Ticket(TicketChange {
            op: TicketOp {
                key: key.into(),
                kind: TicketKind::Maintenance,
                state: TicketState::Open,
                priority: "P3".into(),
                title: format!("{key} rev {revision}"),
                opened_at: t,
                closed_at: None,
                duration_s: None,
                detail: TicketDetail::from_json(TicketKind::Maintenance, &serde_json::Value::Null)
                    .unwrap_or(TicketDetail::Outage(Default::default())),
            },
            cause: None,
            at: t,
            revision,
        })
    }

    fn order(p: &mut Pending) -> Vec<String> {
        let mut v = Vec::new();
        while let Some(w) = p.pop_front() {
            v.push(match w {
                Write::Event(e) => format!("e{}", e.id),
                Write::Ticket(t) => format!("{}:{}", t.op.key, t.revision),
            });
        }
        v
    }

    #[test]
    fn pending_keeps_order_and_coalesces_an_event_in_its_first_place() {
        let stats = Arc::new(Mutex::new(PendingStats::default()));
        let mut p = Pending::new(stats.clone());
        let now = Utc::now();
        assert_eq!(p.push(ev(1, "a"), now), Pushed::Queued);
        assert_eq!(p.push(tk("k", 1), now), Pushed::Queued);
        assert_eq!(p.push(ev(2, "b"), now), Pushed::Queued);
        assert_eq!(p.push(ev(1, "a, ended"), now), Pushed::Coalesced);
        assert_eq!(p.push(tk("k", 2), now), Pushed::Queued);
        assert_eq!(stats.lock().unwrap().events, 2);
        assert_eq!(stats.lock().unwrap().ticket_changes, 2);
        assert_eq!(stats.lock().unwrap().oldest, Some(now));
        match p.front() {
            Some(Write::Event(e)) => assert!(matches!(&e.body,
                EventBody::SensorLost { reason, .. } if reason == "a, ended")),
            other => panic!("{other:?}"),
        }
        assert_eq!(order(&mut p), ["e1", "k:1", "e2", "k:2"]);
        assert_eq!(stats.lock().unwrap().events, 0);
        assert!(p.is_empty());
    }

    #[test]
    fn pending_past_its_bounds_drops_events_first_and_never_a_ticket_change_silently() {
        let stats = Arc::new(Mutex::new(PendingStats::default()));
        let mut p = Pending::with_bounds(stats.clone(), 2, 2);
        let now = Utc::now();
        p.push(ev(1, ""), now);
        p.push(tk("a", 1), now);
        p.push(ev(2, ""), now);
        // The event bound drops the oldest event, never a ticket change.
        assert_eq!(p.push(ev(3, ""), now), Pushed::DroppedEvent(1));
        p.push(tk("b", 1), now);
        // Ticket bound: merged into the newest waiting change of its ticket…
        assert_eq!(p.push(tk("a", 2), now), Pushed::Merged);
        // …or, with none waiting, dropped: said by the return value and counted.
        assert_eq!(p.push(tk("c", 1), now), Pushed::DroppedTicket);
        let s = stats.lock().unwrap().clone();
        assert_eq!(
            (
                s.events_dropped,
                s.ticket_changes_merged,
                s.ticket_changes_dropped
            ),
            (1, 1, 1)
        );
        assert_eq!(order(&mut p), ["a:2", "e2", "e3", "b:1"]);
    }
}
