//! What every source hands to the service, and the one policy for when the service is slow.
//!
//! A source never waits for the service: a reading loop that stalls on a full channel misses
//! half cycles or meter replies. So each message goes out with `try_send`, and what does not fit
//! waits here, by class ([`MessageClass`]):
//!
//! - **events** are kept, however many (an outage report must never be lost);
//! - **readings** are kept up to a bound, and beyond it the *oldest* are dropped (a status page
//!   wants the newest value), counted, and warned about at most every [`WARN_EVERY`];
//! - **stats** are only ever the latest (an older set of counters is worth nothing).
//!
//! Queued messages keep their order (events and readings in one queue); stats go last. While a
//! source has nothing to do it [`Outbox::idle_until`] a deadline, handing queued messages over
//! as the channel makes room. At shutdown, [`Outbox::drain`] gives them a bounded time.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Readings kept for a slow service before the oldest are dropped, unless a source says.
pub const DEFAULT_MAX_QUEUED_READINGS: usize = 1000;

/// How long a stopping source may still hand queued messages over: a service that no longer
/// reads must not hold a shutdown up.
pub const DRAIN_AT_SHUTDOWN: Duration = Duration::from_secs(1);

/// Dropped readings are warned about at most this often (a slow service would otherwise fill
/// the log with one line per poll).
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// How a message is treated when the service is slow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageClass {
    /// Never dropped: queued in the source for as long as it takes.
    Event,
    /// Queued up to a bound; beyond it the oldest reading is dropped and counted.
    Reading,
    /// Only the newest is kept.
    Stats,
}

/// Says which class a message is.
pub trait Classify {
    /// This message's class.
    fn class(&self) -> MessageClass;
}

/// Why [`Outbox::idle_until`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idle {
    /// The deadline came: carry on.
    Due,
    /// Shutdown was asked for: stop.
    Cancelled,
    /// The service has gone (its receiver was dropped): stop, nobody will listen again.
    ServiceGone,
}

impl Idle {
    /// Whether the source should stop.
    pub fn stops(self) -> bool {
        self != Idle::Due
    }
}

/// A source's messages on their way to the service.
#[derive(Debug)]
pub struct Outbox<M> {
    source: Arc<str>,
    tx: mpsc::Sender<M>,
    queue: VecDeque<M>,
    stats: Option<M>,
    queued_readings: usize,
    max_readings: usize,
    dropped_readings: u64,
    /// Dropped since the last warning, and when that was.
    unwarned: u64,
    warned_at: Option<Instant>,
    closed: bool,
}

impl<M: Classify> Outbox<M> {
    /// An outbox for `source` (named in its log lines) keeping up to
    /// [`DEFAULT_MAX_QUEUED_READINGS`] readings.
    pub fn new(source: impl Into<Arc<str>>, tx: mpsc::Sender<M>) -> Outbox<M> {
        Outbox::with_reading_bound(source, tx, DEFAULT_MAX_QUEUED_READINGS)
    }

    /// An outbox keeping up to `max_readings` reading messages (at least one).
    pub fn with_reading_bound(
        source: impl Into<Arc<str>>,
        tx: mpsc::Sender<M>,
        max_readings: usize,
    ) -> Outbox<M> {
        Outbox {
            source: source.into(),
            tx,
            queue: VecDeque::new(),
            stats: None,
            queued_readings: 0,
            max_readings: max_readings.max(1),
            dropped_readings: 0,
            unwarned: 0,
            warned_at: None,
            closed: false,
        }
    }

    /// Hands `m` over now if the channel has room, else keeps it by its class's rule.
    pub fn send(&mut self, m: M) {
        if self.closed {
            return;
        }
        match m.class() {
            MessageClass::Event => self.queue.push_back(m),
            MessageClass::Reading => {
                if self.queued_readings >= self.max_readings {
                    self.drop_oldest_reading();
                }
                self.queue.push_back(m);
                self.queued_readings += 1;
            }
            MessageClass::Stats => self.stats = Some(m),
        }
        self.flush();
    }

    /// Readings dropped so far because the service was slow.
    pub fn dropped_readings(&self) -> u64 {
        self.dropped_readings
    }

    /// Whether anything waits to be handed over.
    pub fn pending(&self) -> bool {
        !self.queue.is_empty() || self.stats.is_some()
    }

    /// Whether the service has gone.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Hands over as much as the channel takes now, without waiting.
    pub fn flush(&mut self) {
        while let Some(m) = self.pop() {
            match self.tx.try_send(m) {
                Ok(()) => {}
                Err(TrySendError::Full(m)) => {
                    self.unpop(m);
                    return;
                }
                Err(TrySendError::Closed(_)) => {
                    self.close();
                    return;
                }
            }
        }
    }

    /// Waits until `deadline`, handing queued messages over as the channel makes room, or
    /// until shutdown is asked for, or the service goes.
    pub async fn idle_until(&mut self, deadline: Instant, shutdown: &CancellationToken) -> Idle {
        loop {
            if shutdown.is_cancelled() {
                return Idle::Cancelled;
            }
            if self.closed {
                return Idle::ServiceGone;
            }
            // Checked here too: a service that keeps making room must not keep us past it.
            if Instant::now() >= deadline {
                return Idle::Due;
            }
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Idle::Cancelled,
                _ = self.hand_over() => {}
                _ = tokio::time::sleep_until(deadline) => return Idle::Due,
            }
        }
    }

    /// Waits until the channel has room, then hands over what it takes. Never finishes while
    /// nothing is queued, so a source can `select!` on it beside its own I/O. Cancel-safe.
    pub async fn hand_over(&mut self) {
        if !self.pending() || self.closed {
            return std::future::pending().await;
        }
        match self.tx.clone().reserve_owned().await {
            Ok(permit) => {
                if let Some(m) = self.pop() {
                    permit.send(m);
                }
                self.flush();
            }
            Err(_) => self.close(),
        }
    }

    /// At shutdown: hands over what is queued, waiting for room up to `within` (a service that
    /// no longer reads must not hold a shutdown up). Events left behind are logged.
    pub async fn drain(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        while self.pending() && !self.closed {
            match tokio::time::timeout_at(deadline, self.tx.clone().reserve_owned()).await {
                Ok(Ok(permit)) => {
                    if let Some(m) = self.pop() {
                        permit.send(m);
                    }
                }
                Ok(Err(_)) => self.close(),
                Err(_) => break,
            }
        }
        let events = self
            .queue
            .iter()
            .filter(|m| m.class() == MessageClass::Event)
            .count();
        if events > 0 {
            tracing::warn!(source = %self.source, events,
                "stopping with events the service did not take: they are lost");
        }
    }

    fn pop(&mut self) -> Option<M> {
        let m = self.queue.pop_front().or_else(|| self.stats.take())?;
        if m.class() == MessageClass::Reading {
            self.queued_readings -= 1;
        }
        Some(m)
    }

    /// Puts back what [`Outbox::pop`] took, where it came from.
    fn unpop(&mut self, m: M) {
        match m.class() {
            // Stats are popped only from an empty queue; a newer set may have come since.
            MessageClass::Stats => {
                if self.stats.is_none() {
                    self.stats = Some(m);
                }
            }
            class => {
                if class == MessageClass::Reading {
                    self.queued_readings += 1;
                }
                self.queue.push_front(m);
            }
        }
    }

    fn drop_oldest_reading(&mut self) {
        let Some(i) = self
            .queue
            .iter()
            .position(|m| m.class() == MessageClass::Reading)
        else {
            return;
        };
        self.queue.remove(i);
        self.queued_readings -= 1;
        self.dropped_readings += 1;
        self.unwarned += 1;
        let now = Instant::now();
        if self.warned_at.is_none_or(|t| now >= t + WARN_EVERY) {
            tracing::warn!(source = %self.source, dropped = self.unwarned,
                total = self.dropped_readings,
                "service is slow: oldest readings dropped");
            self.unwarned = 0;
            self.warned_at = Some(now);
        }
    }

    fn close(&mut self) {
        self.closed = true;
        self.queue.clear();
        self.queued_readings = 0;
        self.stats = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    enum Msg {
        Event(u32),
        Reading(u32),
        Stats(u32),
    }

    impl Classify for Msg {
        fn class(&self) -> MessageClass {
            match self {
                Msg::Event(_) => MessageClass::Event,
                Msg::Reading(_) => MessageClass::Reading,
                Msg::Stats(_) => MessageClass::Stats,
            }
        }
    }

    fn received(rx: &mut mpsc::Receiver<Msg>, out: &mut Outbox<Msg>) -> Vec<Msg> {
        let mut all = Vec::new();
        loop {
            while let Ok(m) = rx.try_recv() {
                all.push(m);
            }
            out.flush();
            if !out.pending() && rx.is_empty() {
                return all;
            }
        }
    }

    #[test]
    fn events_are_never_dropped_however_slow_the_service() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut out = Outbox::with_reading_bound("t", tx, 2);
        for i in 0..5000 {
            out.send(Msg::Event(i));
        }
        let got = received(&mut rx, &mut out);
        assert_eq!(got, (0..5000).map(Msg::Event).collect::<Vec<_>>());
    }

    #[test]
    fn readings_beyond_the_bound_drop_the_oldest_and_are_counted() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut out = Outbox::with_reading_bound("t", tx, 3);
        for i in 0..10 {
            out.send(Msg::Reading(i));
        }
        assert_eq!(out.dropped_readings(), 6);
        // 0 went straight into the channel; 1..=6 were dropped; the newest three stayed.
        let got = received(&mut rx, &mut out);
        assert_eq!(got, [0, 7, 8, 9].map(Msg::Reading));
    }

    #[test]
    fn events_keep_their_place_among_readings_and_never_count_against_the_bound() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut out = Outbox::with_reading_bound("t", tx, 2);
        out.send(Msg::Reading(0));
        out.send(Msg::Reading(1));
        out.send(Msg::Event(100));
        out.send(Msg::Reading(2));
        out.send(Msg::Reading(3));
        assert_eq!(out.dropped_readings(), 1);
        let got = received(&mut rx, &mut out);
        assert_eq!(
            got,
            [
                Msg::Reading(0),
                Msg::Event(100),
                Msg::Reading(2),
                Msg::Reading(3)
            ]
        );
    }

    #[test]
    fn only_the_latest_stats_are_kept_and_they_go_after_the_queue() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut out = Outbox::new("t", tx);
        out.send(Msg::Event(0));
        out.send(Msg::Stats(1));
        out.send(Msg::Event(2));
        out.send(Msg::Stats(3));
        let got = received(&mut rx, &mut out);
        assert_eq!(got, [Msg::Event(0), Msg::Event(2), Msg::Stats(3)]);
    }

    #[test]
    fn a_gone_service_is_noticed_and_nothing_is_kept_for_it() {
        let (tx, rx) = mpsc::channel(1);
        let mut out = Outbox::new("t", tx);
        drop(rx);
        out.send(Msg::Event(0));
        assert!(out.is_closed());
        assert!(!out.pending());
    }

    #[tokio::test]
    async fn idling_hands_queued_messages_over_as_room_is_made_and_returns_when_due() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut out = Outbox::new("t", tx);
        for i in 0..20 {
            out.send(Msg::Event(i));
        }
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while got.len() < 20 {
                got.push(rx.recv().await.unwrap());
            }
            (got, rx)
        });
        let shutdown = CancellationToken::new();
        let mut idle = Idle::Due;
        while out.pending() {
            idle = out
                .idle_until(Instant::now() + Duration::from_secs(5), &shutdown)
                .await;
            assert_eq!(idle, Idle::Due);
        }
        let (got, _rx) = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, (0..20).map(Msg::Event).collect::<Vec<_>>());
        assert!(!idle.stops());
    }

    #[tokio::test]
    async fn idling_stops_at_once_when_cancelled_and_when_the_service_goes() {
        let (tx, rx) = mpsc::channel(1);
        let mut out = Outbox::new("t", tx);
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let far = Instant::now() + Duration::from_secs(3600);
        let idle = tokio::time::timeout(Duration::from_secs(2), out.idle_until(far, &shutdown))
            .await
            .unwrap();
        assert_eq!(idle, Idle::Cancelled);
        assert!(idle.stops());

        out.send(Msg::Event(0));
        out.send(Msg::Event(1));
        drop(rx);
        let running = CancellationToken::new();
        let idle = tokio::time::timeout(Duration::from_secs(2), out.idle_until(far, &running))
            .await
            .unwrap();
        assert_eq!(idle, Idle::ServiceGone);
    }

    #[tokio::test]
    async fn drain_at_shutdown_is_bounded_when_the_service_does_not_read() {
        let (tx, _rx) = mpsc::channel(1);
        let mut out = Outbox::new("t", tx);
        for i in 0..3 {
            out.send(Msg::Event(i));
        }
        let started = Instant::now();
        out.drain(Duration::from_millis(100)).await;
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(out.pending(), "what could not go is still counted as left");
    }

    #[tokio::test]
    async fn drain_hands_everything_over_to_a_service_that_reads() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut out = Outbox::new("t", tx);
        for i in 0..10 {
            out.send(Msg::Event(i));
        }
        out.send(Msg::Stats(99));
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(m) = rx.recv().await {
                got.push(m);
            }
            got
        });
        out.drain(Duration::from_secs(5)).await;
        drop(out);
        let got = reader.await.unwrap();
        assert_eq!(got.len(), 11);
        assert_eq!(got.last(), Some(&Msg::Stats(99)));
    }
}
