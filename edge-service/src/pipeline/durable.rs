//! Durable before told, and what happens when the store cannot write (issue 11).
//!
//! The consumer's writes: events are upserted and ticket changes saved with their deliveries
//! before anyone hears of them. When the store cannot write (a full disk, an I/O error), the
//! write waits in memory ([`super::pending`]), in order, and every later write waits behind
//! it; the ticket change is announced **marked as not stored** ("NOT STORED yet: waiting for
//! disk"), and the store alarm is raised ([`super::store_alarm`]: straight from memory to the
//! maintenance endpoints, and on the console). Once a second the consumer tries the oldest
//! waiting write again; when it succeeds the queue is written out in order, each ticket change
//! announced again as stored (the outbox then delivers it as usual), and the alarm closes.

use crate::actions::rules::TicketOp;
use crate::actions::tickets::{Durability, TicketRecord};
use crate::pipeline::consumer::Outputs;
use crate::pipeline::event_log::{EventBody, LoggedEvent};
use crate::pipeline::pending::{Pushed, TicketChange, Write};
use crate::sinks::Sink;
use crate::store::{alarm_line, cannot_write, free_bytes, StoreError, StoreHandle};
use chrono::{DateTime, Utc};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How long one round of writing out the queue may hold the consumer (the rest waits for the
/// next round, a second later): sources keep their own outboxes, but not for ever.
const FLUSH_ROUND: Duration = Duration::from_millis(250);

/// How long a stop keeps writing out what waited for the disk, while the disk takes it: well
/// inside systemd's default 90 s stop timeout.
const FINISH_LIMIT: Duration = Duration::from_secs(30);

impl Outputs {
    fn stored_event(&self, ev: &LoggedEvent) -> crate::store::StoredEvent {
        let json = ev.to_json();
        let kind = ev.body.kind().to_string();
        let start = ev.body.start();
        let end = ev.body.end();
        let duration_s = match &ev.body {
            EventBody::Voltage(e) => e.duration_s,
            _ => end.map(|e| (e - start).num_microseconds().unwrap_or(0) as f64 / 1e6),
        };
        crate::store::StoredEvent {
            source: ev.source.clone(),
            source_key: format!("{kind}@{}", crate::store::format_ts(start)),
            site_id: Some(self.site.id.clone()),
            kind,
            start,
            end,
            duration_s,
            extreme_pct: json["extreme_pct"].as_f64(),
            worst_channel: json["worst_channel"].as_str().map(str::to_string),
            open: ev.is_open(),
            json,
            profile_json: ev
                .profile
                .as_ref()
                .and_then(|p| serde_json::to_value(&**p).ok()),
            waveform: None,
        }
    }

    /// The store id of a logged event, once it is written.
    pub(crate) fn stored_id(&self, log_id: u64) -> Option<i64> {
        self.stored
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&log_id)
            .copied()
    }

    fn waiting(&self) -> bool {
        !self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// Queues a write the store cannot take yet; says what the bound did, if anything.
    fn queue(&self, w: Write, now: DateTime<Utc>) {
        let what = match &w {
            Write::Event(e) => format!("event {}", e.id),
            Write::Ticket(t) => format!("ticket {} rev {}", t.op.key, t.revision),
        };
        let mut p = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let pushed = p.push(w, now);
        let (events, tickets) = p.counts();
        drop(p);
        match pushed {
            Pushed::Queued | Pushed::Coalesced => tracing::debug!(
                "{what} waits in memory for the store ({events} events, {tickets} ticket changes)"
            ),
            Pushed::DroppedEvent(id) => tracing::error!(
                "memory queue full ({events} events waiting): event {id} dropped (it stays in \
                 the live log and the API, it will not be in the store)"
            ),
            Pushed::Merged => tracing::error!(
                "memory queue full ({tickets} ticket changes waiting): {what} merged into the \
                 waiting change of its ticket; the desk gets its latest state, one revision fewer"
            ),
            Pushed::DroppedTicket => tracing::error!(
                "memory queue full ({tickets} ticket changes waiting): {what} DROPPED: it will \
                 not be stored nor delivered"
            ),
        }
    }

    fn announce(&self, rec: TicketRecord) {
        tracing::info!(key = %rec.op.key, revision = rec.revision, "ticket: {}", rec.op.title);
        self.sinks.ticket(&rec);
        let _ = self.ticket_updates.send(rec);
    }

    /// The alarm's line for a failed write.
    fn problem(store: &StoreHandle, e: &StoreError) -> String {
        alarm_line(
            store.path(),
            e,
            free_bytes(std::path::Path::new(store.path())),
        )
    }

    /// Upserts an event before anyone hears of it; if the store cannot write, it waits in memory.
    pub(crate) async fn store_event(&self, ev: &LoggedEvent, now: DateTime<Utc>) {
        let Some(store) = &self.store else {
            return;
        };
        if self.waiting() {
            // Behind what already waits: the store gets everything in its original order.
            self.queue(Write::Event(ev.clone()), now);
            return;
        }
        match store.upsert_event(self.stored_event(ev)).await {
            Ok(id) => {
                self.stored
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(ev.id, id);
                self.log.set_store_id(ev.id, id);
            }
            Err(e) if cannot_write(&e) => {
                tracing::error!(event = ev.id, "event NOT stored yet, kept in memory: {e}");
                self.queue(Write::Event(ev.clone()), now);
                if let Some(op) = self.raise_store_alarm(Self::problem(store, &e), now) {
                    self.tickets(vec![op], None, now).await;
                }
            }
            Err(e) => tracing::error!(event = ev.id, "event NOT stored: {e}"),
        }
    }

    /// Stores the RMS profiles and waveform captures that arrived for stored events.
    pub(crate) async fn store_attachments(&self) {
        let Some(store) = &self.store else {
            return;
        };
        let ids: Vec<u64> =
            std::mem::take(&mut *self.attached.lock().unwrap_or_else(|p| p.into_inner()));
        for id in ids {
            let (Some(ev), Some(sid)) = (self.log.get(id), self.stored_id(id)) else {
                // Not written yet: its profile goes with the event when it is (see `flush`).
                continue;
            };
            if ev.profile.is_some() {
                self.sinks.event(&ev);
            }
            if let Some(p) = &ev.profile {
                if let Ok(json) = serde_json::to_value(&**p) {
                    if let Err(e) = store.attach_profile(sid, json).await {
                        tracing::error!(event = id, "RMS profile NOT stored: {e}");
                    }
                }
            }
            if let Some(w) = &ev.waveform {
                // The capture as JSON (channels, rate, start, volts): readable without kare.
                if let Ok(bytes) = serde_json::to_vec(&**w) {
                    if let Err(e) = store.attach_waveform(sid, bytes).await {
                        tracing::error!(event = id, "waveform NOT stored: {e}");
                    }
                }
            }
        }
    }

    /// Records ticket changes: durably (ticket and its deliveries in one transaction) before the
    /// API, the console or anyone else hears of them; when the store cannot write, kept in
    /// memory and announced as such. `cause`: the log id of the event whose rule input produced
    /// `ops`, if any (linked to the ticket once both are stored).
    pub(crate) async fn tickets(&self, ops: Vec<TicketOp>, cause: Option<u64>, now: DateTime<Utc>) {
        let mut ops: VecDeque<(TicketOp, Option<u64>)> =
            ops.into_iter().map(|op| (op, cause)).collect();
        while let Some((op, cause)) = ops.pop_front() {
            let Some(store) = &self.store else {
                self.announce(self.tickets.apply(op, now));
                continue;
            };
            if !self.waiting() {
                let event = cause.and_then(|c| self.stored_id(c));
                match crate::actions::record::save(store, &self.routes, &self.site, &op, event, now)
                    .await
                {
                    Ok(r) => {
                        let mut rec = self.tickets.apply(op, now);
                        let announced = rec.revision;
                        rec.revision = r as u32;
                        self.tickets.settle(
                            &rec.op.key,
                            announced,
                            rec.revision,
                            Durability::Stored,
                        );
                        self.announce(rec);
                        continue;
                    }
                    Err(e) if cannot_write(&e) => {
                        tracing::error!(key = %op.key, "ticket NOT stored yet, kept in memory: {e}");
                        if let Some(alarm) = self.raise_store_alarm(Self::problem(store, &e), now) {
                            ops.push_back((alarm, None));
                        }
                    }
                    Err(e) => {
                        // Refused for good (not the disk): said in the log and on the ticket.
                        tracing::error!(key = %op.key, "ticket NOT stored: {e}");
                        let mut rec = self.tickets.apply(op, now);
                        rec.durability = Durability::Refused;
                        self.tickets.settle(
                            &rec.op.key,
                            rec.revision,
                            rec.revision,
                            Durability::Refused,
                        );
                        self.announce(rec);
                        continue;
                    }
                }
            }
            let mut rec = self.tickets.apply(op.clone(), now);
            rec.durability = Durability::WaitingForDisk;
            self.tickets.settle(
                &rec.op.key,
                rec.revision,
                rec.revision,
                Durability::WaitingForDisk,
            );
            self.queue(
                Write::Ticket(TicketChange {
                    op,
                    cause,
                    at: now,
                    revision: rec.revision,
                }),
                now,
            );
            self.announce(rec);
        }
    }

    /// Writes out what waits, oldest first, for at most [`FLUSH_ROUND`]; stops at the first
    /// write the store still cannot take. Raises the store alarm when the store reports it
    /// cannot write, and closes it when nothing waits and the store writes again.
    pub(crate) async fn flush(&self, now: DateTime<Utc>) {
        let Some(store) = &self.store else {
            return;
        };
        let round = Instant::now() + FLUSH_ROUND;
        let mut written = 0usize;
        while Instant::now() < round {
            let front = self
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .front()
                .cloned();
            let Some(w) = front else { break };
            let result = match w {
                Write::Event(ev) => {
                    // Its newest state: a profile or an end may have come while it waited.
                    let ev = self.log.get(ev.id).unwrap_or(ev);
                    match store.upsert_event(self.stored_event(&ev)).await {
                        Ok(id) => {
                            self.stored
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .insert(ev.id, id);
                            self.log.set_store_id(ev.id, id);
                            if ev.waveform.is_some() {
                                self.attached
                                    .lock()
                                    .unwrap_or_else(|p| p.into_inner())
                                    .push(ev.id);
                            }
                            Ok(())
                        }
                        Err(e) => Err((e, format!("event {}", ev.id))),
                    }
                }
                Write::Ticket(t) => {
                    let event = t.cause.and_then(|c| self.stored_id(c));
                    let saved = crate::actions::record::save(
                        store,
                        &self.routes,
                        &self.site,
                        &t.op,
                        event,
                        t.at,
                    )
                    .await;
                    match saved {
                        Ok(r) => {
                            let r = r as u32;
                            self.tickets
                                .settle(&t.op.key, t.revision, r, Durability::Stored);
                            self.announce(TicketRecord {
                                op: t.op,
                                revision: r,
                                updated_at: t.at,
                                durability: Durability::StoredAfterWaiting,
                            });
                            Ok(())
                        }
                        Err(e) => Err((e, format!("ticket {} rev {}", t.op.key, t.revision))),
                    }
                }
            };
            match result {
                Err((e, _)) if cannot_write(&e) => break,
                Err((e, what)) => tracing::error!("{what} NOT stored: {e}"),
                Ok(()) => written += 1,
            }
            self.pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop_front();
        }
        if written > 0 {
            let (events, tickets) = self
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .counts();
            tracing::warn!(
                "store writes again: {written} waiting writes stored; {events} events and \
                 {tickets} ticket changes still wait"
            );
        }
        let health = store.health();
        if self.waiting() {
            return;
        }
        if health.writable {
            if let Some(op) = self.clear_store_alarm(now) {
                self.tickets(vec![op], None, now).await;
            }
        } else if let Some(problem) = health.problem() {
            // Another writer (the outbox, retention) found the store failing: say so now, not
            // when the next event comes.
            if let Some(op) = self.raise_store_alarm(problem, now) {
                self.tickets(vec![op], None, now).await;
            }
        }
    }

    /// On the way out: write out what waits for as long as the store takes it (up to
    /// [`FINISH_LIMIT`]), then what never reached the store is said to be lost.
    pub(crate) async fn finish(&self) {
        let limit = Instant::now() + FINISH_LIMIT;
        let waiting = || {
            let (e, t) = self
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .counts();
            e + t
        };
        // One round is 250 ms: a queue of thousands (each a synchronous commit) needs many.
        // Stop as soon as a round writes nothing (the disk is still full) or time is up.
        loop {
            let before = waiting();
            self.flush(Utc::now()).await;
            let after = waiting();
            if after == 0 || after >= before || Instant::now() >= limit {
                break;
            }
        }
        self.store_attachments().await;
        let (events, tickets) = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .counts();
        if events + tickets > 0 {
            tracing::error!(
                "{events} events and {tickets} ticket changes waited for the store and are LOST \
                 with this stop: {}",
                self.store
                    .as_ref()
                    .and_then(|s| s.health().problem())
                    .unwrap_or_default()
            );
        }
    }
}
