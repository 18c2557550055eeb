//! The buffered writer: points in through channels that never block the producer, batches out
//! over HTTP, and a store-and-forward backlog for whatever the server cannot take now.
//!
//! Points come in through [`channel`](super::channel) (never blocking the producer).
//! [`batches`] seals and schedules what to send, [`outcome`] acts on the server's answer; this
//! module holds the writer's state and the run loop.
//!
//! ## Batches and the uplink
//! Points are encoded into one pending batch per class. Readings are sealed at `batch_size`
//! points or `flush_interval_s` after their first point (60 s while the server is out of reach:
//! they only go to the backlog then, and bigger batches compress better); events are sealed as soon as the
//! channel has no more waiting, and are written to the backlog *before* they are sent (a
//! crash in between cannot lose them; a duplicate write is harmless, since InfluxDB keeps one
//! point per series and time stamp).
//!
//! One request is in flight at a time (ordering, and a Pi's uplink is one link); the channels
//! are read while it is. When a send fails (no connection, time-out, 5xx, 429, auth or a
//! missing database) the writer goes *down*: the batch goes to the backlog, and so does every
//! new batch, and the oldest backlog batch is tried again after a wait that doubles from 1 s to
//! `retry_max_s` (or the server's `Retry-After`). The first success brings it *up*.
//!
//! ## Draining
//! Up, with a backlog: live batches and backlog batches alternate (at most one backlog request
//! per live batch while live data is waiting, the whole link when none is), so the dashboards
//! keep showing the present while the past fills in, and the past fills in at least as fast as
//! the present arrives. The backlog drains oldest first, merging up to `batch_size` points of
//! consecutive small batches into one request. "Oldest" is the order batches were sealed in:
//! each is numbered then, and keeps its number in the backlog, so a live batch whose send fails
//! after newer batches were already stored (the server died under it) still drains first.
//!
//! A batch refused as bad data (400 and other 4xx but 429/401/403/404) is logged with the
//! server's message and moved to the backlog's `rejected` table, counted, never retried.
//! A merged drain request that is refused is retried batch by batch, so one bad batch does not
//! take good ones with it.

mod batches;
mod outcome;

use crate::sinks::influx::backlog::{Backlog, Eviction, Refused, StoredBatch};
use crate::sinks::influx::channel::{lock, InfluxReceiver, InfluxStats};
use crate::sinks::influx::config::InfluxConfig;
use crate::sinks::influx::error::InfluxError;
use crate::sinks::influx::point::{encode_line, Class, Point};
use crate::sinks::influx::transport::{Outcome, Transport};
use chrono::Utc;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A sealed batch waiting to be sent live.
struct LiveBatch {
    /// Its place in the drain order, fixed when it was sealed.
    seq: i64,
    class: Class,
    points: u64,
    body: Vec<u8>,
    /// Events are written ahead to the backlog; their row goes when the server takes them.
    backlog_id: Option<i64>,
}

/// What the request in flight carries.
enum Job {
    Live(LiveBatch),
    Drain(Vec<StoredBatch>),
}

impl Job {
    fn points(&self) -> u64 {
        match self {
            Job::Live(b) => b.points,
            Job::Drain(v) => v.iter().map(|b| b.points).sum(),
        }
    }
}

type SendFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

#[derive(Default)]
struct PendingBatch {
    body: String,
    points: u64,
    since: Option<Instant>,
}

const LIVE_QUEUE_MAX: usize = 8;
/// While the server is out of reach, readings are sealed into the backlog this often at most.
const DOWN_FLUSH: Duration = Duration::from_secs(60);
const DRAIN_MAX_ROWS: usize = 64;

struct Writer {
    cfg: InfluxConfig,
    site_tags: Vec<(String, String)>,
    transport: Arc<Transport>,
    backlog: Backlog,
    stats: Arc<Mutex<InfluxStats>>,
    pending: [PendingBatch; 4],
    live: VecDeque<LiveBatch>,
    /// `None`: up. `Some(t)`: down, next attempt at `t`.
    retry_at: Option<Instant>,
    backoff: Duration,
    /// Alternation: the next request goes to the backlog when both are waiting.
    backlog_turn: bool,
    /// Backlog rows up to this id are sent one per request (a merged request was refused).
    single_until: i64,
    need_create_db: bool,
    last_stats_point: Instant,
    /// Points of the live batch in flight (memory until the server answers).
    in_flight_live: u64,
}

fn now_ns() -> i64 {
    Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

fn start(transport: &Arc<Transport>, job: &Job) -> SendFuture {
    let t = transport.clone();
    let body = Writer::body_of(job);
    Box::pin(async move { t.write(body).await })
}

/// Runs the sink until `shutdown` is cancelled: batches, sends, keeps what
/// cannot be sent in the backlog, drains it when the server is back. On shutdown, pending
/// points get a short grace to be sent (at most the request time-out, 2 s at most), and what is
/// left is stored in the backlog for the next start.
///
/// Returns an error only when it cannot start (bad configuration, backlog file).
pub async fn run(
    cfg: InfluxConfig,
    rx: InfluxReceiver,
    shutdown: CancellationToken,
    stats: Arc<Mutex<InfluxStats>>,
) -> Result<(), InfluxError> {
    cfg.validate()?;
    let transport = Arc::new(Transport::new(&cfg)?);
    let path = cfg.backlog_path.clone().unwrap_or_default();
    let backlog = Backlog::open(&path, cfg.backlog_max_bytes())?;
    let d = backlog.depth();
    if d.points > 0 {
        tracing::info!(
            points = d.points,
            batches = d.batches,
            "influx backlog from an earlier run: draining it"
        );
    }
    let mut w = Writer {
        site_tags: cfg.site_tags(),
        need_create_db: cfg.create_database,
        backoff: Duration::from_secs(1).min(cfg.retry_max()),
        cfg,
        transport: transport.clone(),
        backlog,
        stats,
        pending: Default::default(),
        live: VecDeque::new(),
        retry_at: None,
        backlog_turn: false,
        single_until: 0,
        last_stats_point: Instant::now(),
        in_flight_live: 0,
    };
    w.refresh_depth();
    let InfluxReceiver {
        mut readings,
        mut others,
    } = rx;
    let (mut readings_open, mut others_open) = (true, true);
    let tick_every =
        (w.cfg.flush_interval() / 4).clamp(Duration::from_millis(20), Duration::from_millis(250));
    let mut tick = tokio::time::interval(tick_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut in_flight: Option<(SendFuture, Job)> = None;

    while !shutdown.is_cancelled() {
        if w.need_create_db && in_flight.is_none() && w.retry_at.is_none_or(|t| Instant::now() >= t)
        {
            w.need_create_db = false;
            if let Err(e) = tokio::time::timeout(w.cfg.timeout(), w.transport.create_database())
                .await
                .unwrap_or_else(|_| Err("timed out".into()))
            {
                tracing::warn!("influx CREATE DATABASE: {e}");
            }
        }
        // Events are sealed as soon as no more are waiting: they are few, and the repair desk
        // wants them now.
        if w.pending[Class::Events.code() as usize].points > 0 {
            while let Ok(p) = others.try_recv() {
                w.add(p);
            }
            w.seal(Class::Events);
        }
        if in_flight.is_none() {
            if let Some(job) = w.next_job() {
                if let Job::Live(b) = &job {
                    w.in_flight_live = b.points;
                }
                in_flight = Some((start(&transport, &job), job));
            }
        }
        let retry_at = w.retry_at.filter(|_| in_flight.is_none());
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            outcome = async { in_flight.as_mut().map(|(f, _)| f.as_mut()).expect("guarded").await },
                if in_flight.is_some() => {
                if let Some((_, job)) = in_flight.take() {
                    w.finish(job, outcome);
                }
            }
            // Before the channels, so that a flood of readings cannot hold back flushing.
            _ = tick.tick() => w.on_tick(),
            _ = tokio::time::sleep_until(retry_at.unwrap_or_else(Instant::now)), if retry_at.is_some() => {}
            p = others.recv(), if others_open => match p {
                Some(p) => w.add(p),
                None => others_open = false,
            },
            p = readings.recv(), if readings_open => match p {
                Some(p) => {
                    w.add(p);
                    // Take what else is waiting in one go: one pass of the loop per point
                    // would cost more than encoding it.
                    for _ in 0..255 {
                        match readings.try_recv() {
                            Ok(p) => w.add(p),
                            Err(_) => break,
                        }
                    }
                }
                None => readings_open = false,
            },
        }
    }

    // Stopping: take what is already queued, give the server a short grace, keep the rest.
    while let Ok(p) = others.try_recv() {
        w.add(p);
    }
    while let Ok(p) = readings.try_recv() {
        w.add(p);
    }
    w.seal_due(true);
    let grace = Instant::now() + w.cfg.timeout().min(Duration::from_secs(2));
    loop {
        let job = match in_flight.take() {
            Some(j) => Some(j),
            None if w.retry_at.is_none() => w.live.pop_front().map(|b| {
                let job = Job::Live(b);
                (start(&transport, &job), job)
            }),
            None => None,
        };
        let Some((fut, job)) = job else { break };
        match tokio::time::timeout_at(grace, fut).await {
            Ok(outcome) => w.finish(job, outcome),
            Err(_) => {
                // Out of time: the request may or may not have landed; keeping it costs at most
                // a duplicate, which InfluxDB folds into the same point.
                if let Job::Live(b) = job {
                    w.live.push_front(b);
                }
                break;
            }
        }
    }
    w.spill_live();
    w.refresh_depth();
    let d = w.backlog.depth();
    if d.points > 0 {
        tracing::info!(
            points = d.points,
            "influx sink stopped; backlog kept for the next start"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::influx::channel;
    use chrono::TimeZone;

    fn stats() -> Arc<Mutex<InfluxStats>> {
        Arc::new(Mutex::new(InfluxStats::default()))
    }

    #[test]
    fn a_full_readings_channel_drops_and_counts_but_events_always_pass() {
        let s = stats();
        let (tx, mut rx) = channel(2, s.clone());
        let t = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        let reading = || Point::new("urms", Class::Readings, t).field("mean", 1.0);
        assert!(tx.send(reading()));
        assert!(tx.send(reading()));
        assert!(!tx.send(reading()));
        for _ in 0..1000 {
            assert!(tx.send(Point::new("event", Class::Events, t).field("id", 1i64)));
        }
        assert_eq!(lock(&s).dropped_channel_full, 1);
        let mut n = 0;
        while rx.others.try_recv().is_ok() {
            n += 1;
        }
        assert_eq!(n, 1000);
    }
}
