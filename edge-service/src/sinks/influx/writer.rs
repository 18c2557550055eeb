//! The buffered writer: points in through channels that never block the producer, batches out
//! over HTTP, and a store-and-forward backlog for whatever the server cannot take now.
//!
//! ## Channels ([`channel`])
//! - Fine readings ([`Class::Readings`]) go through a bounded channel with `try_send`: when it is
//!   full (the writer is stuck on a slow disk, or the producer runs wild) the reading is dropped
//!   and counted (`dropped_channel_full`); the producer never waits.
//! - Everything else (events, tickets, event profiles, interval data) goes through an
//!   unbounded channel, so it cannot be dropped. Its volume is set by events and 15-minute
//!   intervals, not by the sample rate, and the writer empties it at once (into memory, then the
//!   backlog), so it stays small.
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

use super::backlog::{Backlog, Eviction, Refused, StoredBatch};
use super::config::InfluxConfig;
use super::error::InfluxError;
use super::point::{encode_line, Class, Point};
use super::transport::{Outcome, Transport};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The sink's counters, shared with the status API (and written as `kare_influx` points).
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

/// The writer's side, for [`run`].
#[derive(Debug)]
pub struct InfluxReceiver {
    readings: mpsc::Receiver<Point>,
    others: mpsc::UnboundedReceiver<Point>,
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

/// The channels between producers and [`run`]: readings bounded to `capacity` points.
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

fn lock(stats: &Mutex<InfluxStats>) -> std::sync::MutexGuard<'_, InfluxStats> {
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

impl Writer {
    fn with_stats(&self, f: impl FnOnce(&mut InfluxStats)) {
        f(&mut lock(&self.stats));
    }

    fn refresh_depth(&self) {
        let d = self.backlog.depth();
        let mem: u64 = self.pending.iter().map(|p| p.points).sum::<u64>()
            + self.live.iter().map(|b| b.points).sum::<u64>()
            + self.in_flight_live;
        let max = self.backlog.max_bytes();
        self.with_stats(|s| {
            s.backlog_batches = d.batches;
            s.backlog_points = d.points;
            s.backlog_event_points = d.event_points;
            s.backlog_bytes = d.bytes;
            s.backlog_max_bytes = max;
            s.memory_points = mem;
        });
    }

    fn count_eviction(&self, ev: &Eviction) {
        if ev.points == 0 && !ev.over_bound {
            return;
        }
        if ev.points > 0 {
            tracing::warn!(
                points = ev.points,
                batches = ev.batches,
                readings = ev.points_by_class[0],
                profile = ev.points_by_class[1],
                interval = ev.points_by_class[2],
                "influx backlog full: oldest readings evicted"
            );
        }
        if ev.over_bound {
            tracing::warn!(
                "influx backlog full of events: stored over the bound (events are never evicted)"
            );
        }
        self.with_stats(|s| {
            s.evicted_points += ev.points;
            s.evicted_readings_points += ev.points_by_class[0];
            s.evicted_profile_points += ev.points_by_class[1];
            s.evicted_interval_points += ev.points_by_class[2];
            s.event_batches_over_bound += ev.over_bound as u64;
        });
    }

    /// Stores a batch in the backlog under its sequence number (counting what the bound
    /// evicted). `None` if it was dropped.
    fn store(&mut self, seq: i64, class: Class, points: u64, body: &[u8]) -> Option<i64> {
        match self.backlog.push_seq(seq, class, points, body, now_ns()) {
            Ok((id, ev)) => {
                self.count_eviction(&ev);
                id
            }
            Err(e) => {
                // The disk failed: these points are lost, and said so.
                tracing::error!(
                    "influx backlog: {e}; {points} {} points lost",
                    class.as_str()
                );
                self.with_stats(|s| {
                    s.evicted_points += points;
                    s.last_error = Some(e.to_string());
                });
                None
            }
        }
    }

    /// Encodes a point into its class's pending batch.
    fn add(&mut self, p: Point) {
        let class = p.class;
        let pending = &mut self.pending[class.code() as usize];
        match encode_line(&mut pending.body, &p, &self.site_tags) {
            Ok(()) => {
                pending.points += 1;
                pending.since.get_or_insert_with(Instant::now);
                let full = pending.points as usize >= self.cfg.batch_size;
                self.with_stats(|s| {
                    s.received_points += 1;
                    s.memory_points += 1;
                });
                if full {
                    self.seal(class);
                }
            }
            Err(e) => {
                tracing::debug!("influx point dropped: {e}");
                self.with_stats(|s| {
                    s.received_points += 1;
                    s.dropped_unencodable += 1;
                });
            }
        }
    }

    /// Turns a class's pending points into a batch: live if up, else into the backlog.
    fn seal(&mut self, class: Class) {
        let pending = std::mem::take(&mut self.pending[class.code() as usize]);
        if pending.points == 0 {
            return;
        }
        let body = pending.body.into_bytes();
        let seq = self.backlog.reserve();
        let backlog_id = if class == Class::Events || self.retry_at.is_some() {
            let id = self.store(seq, class, pending.points, &body);
            if self.retry_at.is_some() || id.is_none() {
                // Down: it waits in the backlog. (Or it was dropped by the bound: counted.)
                self.refresh_depth();
                return;
            }
            id
        } else {
            None
        };
        self.live.push_back(LiveBatch {
            seq,
            class,
            points: pending.points,
            body,
            backlog_id,
        });
        while self.live.len() > LIVE_QUEUE_MAX {
            // The server is slower than the data: the oldest live batch waits in the backlog.
            if let Some(b) = self.live.pop_front() {
                if b.backlog_id.is_none() {
                    self.store(b.seq, b.class, b.points, &b.body);
                }
            }
        }
        self.refresh_depth();
    }

    fn seal_due(&mut self, all: bool) {
        // Down, batches only go to the backlog: bigger ones compress far better (a 5-s batch of
        // one node's aggregates is ~25 points, ~90 bytes each gzipped; 60 s is ~300 points),
        // so the bound holds days more. Events are sealed at once whatever the state.
        let flush = if self.retry_at.is_some() {
            self.cfg.flush_interval().max(DOWN_FLUSH)
        } else {
            self.cfg.flush_interval()
        };
        for class in Class::ALL {
            let p = &self.pending[class.code() as usize];
            let due = p.since.is_some_and(|t| t.elapsed() >= flush);
            if p.points > 0 && (all || due) {
                self.seal(class);
            }
        }
    }

    /// Moves every live batch to the backlog (going down, or stopping).
    fn spill_live(&mut self) {
        while let Some(b) = self.live.pop_front() {
            if b.backlog_id.is_none() {
                self.store(b.seq, b.class, b.points, &b.body);
            }
        }
        self.refresh_depth();
    }

    fn live_ids(&self) -> Vec<i64> {
        self.live.iter().filter_map(|b| b.backlog_id).collect()
    }

    /// The next request to make, if any is due.
    fn next_job(&mut self) -> Option<Job> {
        if let Some(at) = self.retry_at {
            if Instant::now() < at {
                return None;
            }
        }
        let down = self.retry_at.is_some();
        let backlog_waiting = !self.backlog.is_empty()
            && (self.backlog.depth().batches as usize) > self.live_ids().len();
        let from_backlog = match (self.live.is_empty(), backlog_waiting) {
            (true, false) => return None,
            (false, false) => false,
            (true, true) => true,
            // Both waiting: alternate. Down: the probe is the oldest data.
            (false, true) => {
                if down {
                    true
                } else {
                    let take = self.backlog_turn;
                    self.backlog_turn = !take;
                    take
                }
            }
        };
        if !from_backlog {
            return self.live.pop_front().map(Job::Live);
        }
        let skip = self.live_ids();
        let rows = match self
            .backlog
            .oldest(&skip, self.cfg.batch_size as u64, DRAIN_MAX_ROWS)
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("influx backlog read: {e}");
                return self.live.pop_front().map(Job::Live);
            }
        };
        let rows = match rows.first() {
            Some(first) if first.id <= self.single_until => rows.into_iter().take(1).collect(),
            Some(_) => rows,
            None => return self.live.pop_front().map(Job::Live),
        };
        Some(Job::Drain(rows))
    }

    fn body_of(job: &Job) -> Vec<u8> {
        match job {
            Job::Live(b) => b.body.clone(),
            Job::Drain(rows) => {
                let mut body = Vec::with_capacity(rows.iter().map(|r| r.body.len()).sum());
                for r in rows {
                    body.extend_from_slice(&r.body);
                }
                body
            }
        }
    }

    fn went_up(&mut self) {
        if self.retry_at.take().is_some() {
            let d = self.backlog.depth();
            tracing::info!(
                backlog_points = d.points,
                "influx server reachable again: draining the backlog"
            );
        }
        self.backoff = Duration::from_secs(1).min(self.cfg.retry_max());
        self.with_stats(|s| s.up = true);
    }

    fn finish(&mut self, job: Job, outcome: Outcome) {
        self.in_flight_live = 0;
        let points = job.points();
        match outcome {
            Outcome::Written => {
                let drained = match &job {
                    Job::Live(b) => {
                        if let Some(id) = b.backlog_id {
                            if let Err(e) = self.backlog.remove(&[id]) {
                                tracing::error!("influx backlog: {e}");
                            }
                        }
                        0
                    }
                    Job::Drain(rows) => {
                        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
                        if let Err(e) = self.backlog.remove(&ids) {
                            tracing::error!("influx backlog: {e}");
                        }
                        points
                    }
                };
                self.went_up();
                self.with_stats(|s| {
                    s.written_points += points;
                    s.written_batches += 1;
                    s.drained_points += drained;
                    s.last_write = Some(Utc::now());
                });
            }
            Outcome::Retry {
                reason,
                retry_after,
            } => {
                if self.retry_at.is_none() {
                    tracing::warn!("influx write failed, keeping data in the backlog: {reason}");
                }
                if self.cfg.create_database && reason.starts_with("HTTP 404") {
                    self.need_create_db = true;
                }
                match job {
                    Job::Live(b) => {
                        if b.backlog_id.is_none() {
                            self.store(b.seq, b.class, b.points, &b.body);
                        }
                    }
                    Job::Drain(rows) => {
                        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
                        let _ = self.backlog.note_attempt(&ids);
                    }
                }
                let wait = retry_after
                    .unwrap_or(self.backoff)
                    .min(self.cfg.retry_max().max(Duration::from_millis(100)));
                self.retry_at = Some(Instant::now() + wait);
                self.backoff = (self.backoff * 2).min(self.cfg.retry_max());
                self.spill_live();
                self.with_stats(|s| {
                    s.up = false;
                    s.failed_requests += 1;
                    s.last_error = Some(reason);
                });
            }
            Outcome::Rejected { status, message } => {
                // The server answered: it is up, whatever it thought of the data.
                self.went_up();
                match job {
                    Job::Drain(rows) if rows.len() > 1 => {
                        // One of several merged batches is bad: find it, batch by batch.
                        self.single_until = rows.iter().map(|r| r.id).max().unwrap_or(0);
                        return;
                    }
                    Job::Drain(rows) => {
                        for r in rows {
                            self.reject(r.class, r.points, &r.body, status, &message, &[r.id]);
                        }
                    }
                    Job::Live(b) => {
                        let from: Vec<i64> = b.backlog_id.into_iter().collect();
                        self.reject(b.class, b.points, &b.body, status, &message, &from);
                    }
                }
            }
        }
        self.refresh_depth();
    }

    fn reject(
        &mut self,
        class: Class,
        points: u64,
        body: &[u8],
        status: u16,
        message: &str,
        from: &[i64],
    ) {
        tracing::error!(
            status,
            points,
            class = class.as_str(),
            "influx server refused a batch (kept in the backlog's `rejected` table): {message}"
        );
        let refused = Refused {
            class,
            points,
            body,
            status,
            message,
        };
        if let Err(e) = self.backlog.reject(&refused, from, now_ns()) {
            tracing::error!("influx backlog: {e}");
        }
        self.with_stats(|s| {
            s.rejected_points += points;
            s.rejected_batches += 1;
            s.last_rejection = Some(format!("HTTP {status}: {message}"));
        });
    }

    /// The sink's own counters as a point (fine readings: evictable like any).
    fn stats_point(&self) -> Point {
        let s = lock(&self.stats).clone();
        Point::new("kare_influx", Class::Readings, Utc::now())
            .field("up", s.up)
            .field("written_points", s.written_points)
            .field("drained_points", s.drained_points)
            .field("failed_requests", s.failed_requests)
            .field("backlog_points", s.backlog_points)
            .field("backlog_bytes", s.backlog_bytes)
            .field("backlog_event_points", s.backlog_event_points)
            .field("evicted_points", s.evicted_points)
            .field("dropped_channel_full", s.dropped_channel_full)
            .field("lagged_readings", s.lagged_readings)
            .field("dropped_unencodable", s.dropped_unencodable)
            .field("rejected_points", s.rejected_points)
    }

    fn on_tick(&mut self) {
        self.seal_due(false);
        let every = self.cfg.stats_interval_s;
        if every > 0.0 && self.last_stats_point.elapsed() >= Duration::from_secs_f64(every) {
            self.last_stats_point = Instant::now();
            let p = self.stats_point();
            self.add(p);
        }
    }
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
