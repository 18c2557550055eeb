//! Liveness for the watchdog: a [`Heartbeat`] is one atomic "last seen alive" instant that a
//! loop stamps on its own timer (the consumer every 250 ms, the store writer every time it wakes,
//! at least every 250 ms) and the watchdog (`crate::watchdog`) reads. A loop that stops
//! stamping, stuck on an await or in a transaction that never ends, stops the pings, and systemd
//! restarts kare.
//!
//! It never blocks and never allocates after it is made: stamping is one relaxed store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a loop stamps its heartbeat when nothing else wakes it.
pub const BEAT_EVERY: Duration = Duration::from_millis(250);

/// One loop's "last seen alive".
#[derive(Debug)]
pub struct Heartbeat {
    name: &'static str,
    origin: Instant,
    /// Milliseconds since `origin` at the last beat.
    last_ms: AtomicU64,
}

impl Heartbeat {
    /// A heartbeat that counts as fresh now.
    pub fn new(name: &'static str) -> Arc<Heartbeat> {
        Arc::new(Heartbeat {
            name,
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
        })
    }

    /// The loop is alive now.
    pub fn beat(&self) {
        let ms = self.origin.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Time since the last beat.
    pub fn age(&self) -> Duration {
        let now = self.origin.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }

    /// The loop's name, for the log when it stalls.
    pub fn name(&self) -> &'static str {
        self.name
    }
}
