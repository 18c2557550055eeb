//! The channels between the producers (the service's feed, the 1-s aggregation) and the
//! writer, and the sink's counters.
//!
//! - Fine readings ([`Class::Readings`]) go through a bounded channel with `try_send`: when it is
//!   full (the writer is stuck on a slow disk, or the producer runs wild) the reading is dropped
//!   and counted (`dropped_channel_full`); the producer never waits.
//! - Everything else (events, tickets, event profiles, interval data) goes through an
//!   unbounded channel, so it cannot be dropped. Its volume is set by events and 15-minute
//!   intervals, not by the sample rate, and the writer empties it at once (into memory, then the
//!   backlog), so it stays small.

use super::point::{Class, Point};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct InfluxStats {
    /// Whether the last request reached the server and was taken or refused (not failed).
    pub up: bool,
    /// Points taken by the channels.
    pub received_points: u64,
    /// Points the server took (live and from the backlog).
    pub written_points: u64,
    /// Requests the server took.
    pub written_batches: u64,
    /// Of `written_points`, those sent from the backlog.
    pub drained_points: u64,
    /// Requests that failed (and were kept for later).
    pub failed_requests: u64,
    /// The last failure.
    pub last_error: Option<String>,
    /// When the server last took a batch.
    pub last_write: Option<DateTime<Utc>>,
    /// Points encoded and waiting in memory (pending batches, sealed batches, the live batch
    /// in flight).
    pub memory_points: u64,
    /// Batches in the backlog.
    pub backlog_batches: u64,
    /// Points in the backlog.
    pub backlog_points: u64,
    /// Of them, event-class points (never evicted).
    pub backlog_event_points: u64,
    /// Stored bytes in the backlog (compressed).
    pub backlog_bytes: u64,
    /// The backlog's bound, bytes.
    pub backlog_max_bytes: u64,
    /// Points evicted from (or never admitted to) the full backlog, all classes.
    pub evicted_points: u64,
    /// Of them, fine readings.
    pub evicted_readings_points: u64,
    /// Of them, event profiles.
    pub evicted_profile_points: u64,
    /// Of them, interval data.
    pub evicted_interval_points: u64,
    /// Event batches stored over the bound (events are never evicted).
    pub event_batches_over_bound: u64,
    /// Readings dropped because the channel was full (or the writer had stopped).
    pub dropped_channel_full: u64,
    /// Half-cycle readings the 1-second aggregator missed (it fell behind the stream); the
    /// seconds concerned have a smaller `count`.
    pub lagged_readings: u64,
    /// Points that could not be encoded (no finite field, empty name, time out of range).
    pub dropped_unencodable: u64,
    /// Points in batches the server refused as bad data (kept in the `rejected` table).
    pub rejected_points: u64,
    /// Such batches.
    pub rejected_batches: u64,
    /// The server's message for the last refusal.
    pub last_rejection: Option<String>,
}

/// The producer's side: cheap to clone; `send` never blocks.
#[derive(Clone, Debug)]
pub struct InfluxSender {
    readings: mpsc::Sender<Point>,
    others: mpsc::UnboundedSender<Point>,
    stats: Arc<Mutex<InfluxStats>>,
}

/// The writer's side, for [`run`](super::run).
#[derive(Debug)]
pub struct InfluxReceiver {
    pub(super) readings: mpsc::Receiver<Point>,
    pub(super) others: mpsc::UnboundedReceiver<Point>,
}

#[cfg(test)]
impl InfluxReceiver {
    pub(crate) fn readings_mut(&mut self) -> &mut mpsc::Receiver<Point> {
        &mut self.readings
    }
    pub(crate) fn others_mut(&mut self) -> &mut mpsc::UnboundedReceiver<Point> {
        &mut self.others
    }
}

/// The channels between producers and [`run`](super::run): readings bounded to `capacity` points.
pub fn channel(capacity: usize, stats: Arc<Mutex<InfluxStats>>) -> (InfluxSender, InfluxReceiver) {
    let (rt, rr) = mpsc::channel(capacity.max(1));
    let (ot, or) = mpsc::unbounded_channel();
    (
        InfluxSender {
            readings: rt,
            others: ot,
            stats,
        },
        InfluxReceiver {
            readings: rr,
            others: or,
        },
    )
}

pub(super) fn lock(stats: &Mutex<InfluxStats>) -> std::sync::MutexGuard<'_, InfluxStats> {
    // Counters only: a panic elsewhere must not stop the sink.
    stats.lock().unwrap_or_else(|p| p.into_inner())
}

impl InfluxSender {
    /// Queues one point without waiting. Returns false when a reading was dropped (counted).
    pub fn send(&self, p: Point) -> bool {
        if p.class == Class::Readings {
            match self.readings.try_send(p) {
                Ok(()) => true,
                Err(_) => {
                    lock(&self.stats).dropped_channel_full += 1;
                    false
                }
            }
        } else {
            // Unbounded: fails only when the writer has stopped (shutdown).
            self.others.send(p).is_ok()
        }
    }

    /// Queues points; returns how many were queued.
    pub fn send_all(&self, points: impl IntoIterator<Item = Point>) -> usize {
        points
            .into_iter()
            .map(|p| self.send(p))
            .filter(|sent| *sent)
            .count()
    }
}
