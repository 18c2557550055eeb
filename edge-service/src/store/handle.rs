//! [`StoreHandle`]: the async front of the store, with a writer thread that batches commands
//! into transactions and answers each only after its transaction committed.

use super::health::{cannot_write, StoreHealth, Tracker};
use super::model::*;
use super::{ops, Store, StoreConfig, StoreError};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use serde_json::Value;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};

/// Answers one command once the fate of its transaction is known: `None` committed, `Some`
/// the error that lost it.
type Finish = Box<dyn FnOnce(Option<StoreError>) + Send>;

/// One write, run inside the batch's transaction (in a savepoint of its own, so that a command
/// that fails does not take the others of its batch with it). Given an error instead of a
/// transaction when none could be started.
type Job = Box<
    dyn for<'a> FnOnce(
            Result<&mut Transaction<'a>, &StoreError>,
            &BatchCtx,
        ) -> (Finish, Option<StoreError>)
        + Send,
>;

enum Command {
    Write(Job),
    /// Runs alone, outside any batch, with its own transactions (retention).
    Exclusive(Box<dyn FnOnce(&mut Store) + Send>),
    Close(oneshot::Sender<()>),
}

struct BatchCtx {
    path: String,
    /// Set by a command that queued outbox rows: the worker is woken after the commit.
    enqueued: Cell<bool>,
}

/// Counters of the writer, for the status page and for tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Transactions committed by the writer.
    pub transactions: u64,
    /// Commands acknowledged as committed.
    pub commands: u64,
    /// Commands answered with an error.
    pub failed: u64,
    /// The last error, worded for a person (e.g. the disk is full).
    pub last_error: Option<String>,
}

struct Shared {
    transactions: AtomicU64,
    commands: AtomicU64,
    failed: AtomicU64,
    last_error: Mutex<Option<String>>,
    outbox: Notify,
    /// Writable or not, since when, why (issue 11: a full disk must be visible).
    health: Tracker,
    /// Stamped every time the writer wakes (at least every 250 ms): the watchdog's proof that
    /// it is not stuck.
    heartbeat: Arc<crate::pipeline::heartbeat::Heartbeat>,
}

struct Inner {
    tx: mpsc::Sender<Command>,
    reader: Arc<Mutex<Store>>,
    shared: Arc<Shared>,
    path: String,
}

/// The store for async code: cheap to clone, one writer thread behind it.
///
/// Writes queue on a bounded channel (a full queue makes the caller wait: back-pressure, never
/// a lost write) and are batched: the writer takes the first command, then whatever else
/// arrives within `batch_window_ms` up to `max_batch`, runs them in one transaction and
/// answers each after the commit. Reads run on tokio's blocking pool on a second connection.
#[derive(Clone)]
pub struct StoreHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreHandle")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl StoreHandle {
    /// Opens and migrates the database and starts the writer thread. Blocks while it does so
    /// (a migration may take a moment): call it at start-up.
    pub fn open(cfg: &StoreConfig) -> Result<StoreHandle, StoreError> {
        let writer = Store::open(cfg)?;
        let reader = Store::open_reader(cfg)?;
        let (tx, rx) = mpsc::channel(cfg.queue.max(1));
        let path = writer.path().to_string();
        let shared = Arc::new(Shared {
            transactions: AtomicU64::new(0),
            commands: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            last_error: Mutex::new(None),
            outbox: Notify::new(),
            health: Tracker::new(&path),
            heartbeat: crate::pipeline::heartbeat::Heartbeat::new("store writer"),
        });
        let window = Duration::from_millis(cfg.batch_window_ms);
        let max_batch = cfg.max_batch.max(1);
        let sh = shared.clone();
        std::thread::Builder::new()
            .name("kare-store".into())
            .spawn(move || writer_loop(writer, rx, sh, window, max_batch))
            .map_err(|e| StoreError::Sqlite {
                path: path.clone(),
                doing: "starting the writer thread",
                message: e.to_string(),
            })?;
        Ok(StoreHandle {
            inner: Arc::new(Inner {
                tx,
                reader: Arc::new(Mutex::new(reader)),
                shared,
                path,
            }),
        })
    }

    /// The writer thread's heartbeat (for the watchdog).
    pub fn heartbeat(&self) -> Arc<crate::pipeline::heartbeat::Heartbeat> {
        self.inner.shared.heartbeat.clone()
    }

    /// The signed commissioning records, newest last.
    pub async fn commissioning_records(
        &self,
    ) -> Result<Vec<super::commissioning::CommissioningRow>, StoreError> {
        self.read(|s| s.commissioning_records()).await
    }

    /// The database file.
    pub fn path(&self) -> &str {
        &self.inner.path
    }

    /// The writer's counters.
    pub fn stats(&self) -> StoreStats {
        let s = &self.inner.shared;
        StoreStats {
            transactions: s.transactions.load(Ordering::Relaxed),
            commands: s.commands.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            last_error: s
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }

    /// Writable or not, the last failure and since when, free space on its filesystem.
    pub fn health(&self) -> StoreHealth {
        self.inner.shared.health.snapshot()
    }

    /// Resolves when outbox rows were queued since the last call (or immediately if they were
    /// queued before anyone waited): the outbox worker's wake-up.
    pub async fn outbox_changed(&self) {
        self.inner.shared.outbox.notified().await
    }

    pub(super) async fn write<T: Send + 'static>(
        &self,
        enqueues: bool,
        op: impl FnOnce(&Connection, &str) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(move |tx, ctx| {
            let r = match tx {
                Err(e) => Err(e.clone()),
                Ok(tx) => match tx.savepoint() {
                    Err(e) => Err(StoreError::sqlite(&ctx.path, "starting a savepoint", e)),
                    Ok(sp) => match op(&sp, &ctx.path) {
                        Ok(v) => sp
                            .commit()
                            .map(|()| v)
                            .map_err(|e| StoreError::sqlite(&ctx.path, "releasing a savepoint", e)),
                        // Dropping the savepoint rolls this command back, and only this command.
                        Err(e) => Err(e),
                    },
                },
            };
            if enqueues && r.is_ok() {
                ctx.enqueued.set(true);
            }
            let err = r.as_ref().err().cloned();
            let finish: Finish = Box::new(move |lost| {
                let _ = reply.send(match lost {
                    Some(e) => Err(e),
                    None => r,
                });
            });
            (finish, err)
        });
        self.inner
            .tx
            .send(Command::Write(job))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    pub(super) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let reader = self.inner.reader.clone();
        tokio::task::spawn_blocking(move || {
            let g = reader.lock().unwrap_or_else(|p| p.into_inner());
            f(&g)
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }

    /// Inserts or updates an event by `(source, source_key)`; returns its id once committed.
    pub async fn upsert_event(&self, e: StoredEvent) -> Result<i64, StoreError> {
        self.write(false, move |c, p| ops::upsert_event(c, p, Utc::now(), &e))
            .await
    }

    /// At start, before any source is heard: closes every event still marked open (the
    /// service stopped before it saw them end). Each ends at the last time the service knew of
    /// it (its row's last write, never before its start) and says so in its JSON:
    /// `"end_unknown": true, "end_note": "unknown end, service restarted at <restarted_at>"`.
    /// Returns the ids closed.
    pub async fn close_open_events(
        &self,
        restarted_at: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        self.write(false, move |c, p| {
            ops::close_open_events(c, p, restarted_at)
        })
        .await
    }

    /// Stores an event's completed RMS profile.
    pub async fn attach_profile(&self, id: i64, profile: Value) -> Result<(), StoreError> {
        self.write(false, move |c, p| {
            ops::attach_profile(c, p, Utc::now(), id, &profile)
        })
        .await
    }

    /// Stores an event's waveform capture.
    pub async fn attach_waveform(&self, id: i64, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.write(false, move |c, p| {
            ops::attach_waveform(c, p, Utc::now(), id, &bytes)
        })
        .await
    }

    /// Creates or updates a ticket and queues its deliveries in the same transaction; answers
    /// once committed. See [`Store::save_ticket`].
    pub async fn save_ticket(&self, w: TicketWrite) -> Result<SavedTicket, StoreError> {
        self.write(true, move |c, p| ops::save_ticket(c, p, Utc::now(), &w))
            .await
    }

    /// Records a delivery attempt and moves the outbox row on.
    pub async fn record_attempt(&self, a: Attempt) -> Result<(), StoreError> {
        // A retry makes a row due again: the worker re-reads its schedule after the commit.
        let wake = matches!(a.outcome, AttemptOutcome::RetryAt(_) | AttemptOutcome::Dead);
        self.write(wake, move |c, p| ops::record_attempt(c, p, &a))
            .await
    }

    /// Puts a dead letter back in the queue; see [`Store::requeue_dead`].
    pub async fn requeue_dead(&self, outbox_id: i64) -> Result<(), StoreError> {
        self.write(true, move |c, p| {
            ops::requeue_dead(c, p, Utc::now(), outbox_id)
        })
        .await
    }

    /// Retention: see [`Store::prune_as_of`]. Runs on the writer thread between batches.
    pub async fn prune(
        &self,
        max_age: Duration,
        max_db_bytes: u64,
    ) -> Result<PruneReport, StoreError> {
        self.prune_as_of(Utc::now(), max_age, max_db_bytes).await
    }

    /// Retention as of a given time (tests, and replays of old data).
    pub async fn prune_as_of(
        &self,
        now: DateTime<Utc>,
        max_age: Duration,
        max_db_bytes: u64,
    ) -> Result<PruneReport, StoreError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Exclusive(Box::new(move |s: &mut Store| {
            let _ = reply.send(s.prune_as_of(now, max_age, max_db_bytes));
        }));
        self.inner
            .tx
            .send(cmd)
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Commits what is queued, checkpoints the WAL into the database file and stops the writer.
    /// Later writes fail with [`StoreError::Closed`]; reads still work.
    pub async fn close(&self) {
        let (reply, rx) = oneshot::channel();
        if self.inner.tx.send(Command::Close(reply)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// One event.
    pub async fn event(&self, id: i64) -> Result<Option<EventRow>, StoreError> {
        self.read(move |s| s.event(id)).await
    }

    /// An event's waveform.
    pub async fn event_waveform(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(move |s| s.event_waveform(id)).await
    }

    /// Events that started in `[since, until)`.
    pub async fn events(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<EventRow>, StoreError> {
        self.read(move |s| s.events(since, until)).await
    }

    /// One ticket.
    pub async fn ticket(&self, id: i64) -> Result<Option<TicketRow>, StoreError> {
        self.read(move |s| s.ticket(id)).await
    }

    /// The ticket with this idempotency key.
    pub async fn ticket_by_key(&self, key: &str) -> Result<Option<TicketRow>, StoreError> {
        let key = key.to_string();
        self.read(move |s| s.ticket_by_key(&key)).await
    }

    /// Open tickets, oldest first.
    pub async fn open_tickets(&self) -> Result<Vec<TicketRow>, StoreError> {
        self.read(|s| s.open_tickets()).await
    }

    /// Tickets opened in `[since, until)`.
    pub async fn tickets(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<TicketRow>, StoreError> {
        self.read(move |s| s.tickets(since, until)).await
    }

    /// Sendable outbox rows due at `now` (see [`Store::outbox_due`]).
    pub async fn outbox_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        self.read(move |s| s.outbox_due(now, limit)).await
    }

    /// As [`Self::outbox_due`], leaving out rows already being sent.
    pub async fn outbox_due_excluding(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        exclude: Vec<i64>,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        self.read(move |s| s.outbox_due_excluding(now, limit, &exclude))
            .await
    }

    /// When the next sendable row not in `exclude` falls due.
    pub async fn outbox_next_due(
        &self,
        exclude: Vec<i64>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.read(move |s| s.outbox_next_due(&exclude)).await
    }

    /// A ticket's outbox rows.
    pub async fn outbox_for_ticket(&self, ticket_id: i64) -> Result<Vec<OutboxRow>, StoreError> {
        self.read(move |s| s.outbox_for_ticket(ticket_id)).await
    }

    /// One outbox row.
    pub async fn outbox_row(&self, id: i64) -> Result<Option<OutboxRow>, StoreError> {
        self.read(move |s| s.outbox_row(id)).await
    }

    /// Outbox rows given up on.
    pub async fn dead_letters(&self) -> Result<Vec<OutboxRow>, StoreError> {
        self.read(|s| s.dead_letters()).await
    }

    /// Attempts to deliver one outbox row.
    pub async fn attempts(&self, outbox_id: i64) -> Result<Vec<AttemptRow>, StoreError> {
        self.read(move |s| s.attempts(outbox_id)).await
    }
}

fn writer_loop(
    mut store: Store,
    mut rx: mpsc::Receiver<Command>,
    shared: Arc<Shared>,
    window: Duration,
    max_batch: usize,
) {
    // A private current-thread runtime gives the blocking writer a receive with a deadline on
    // tokio's channel; the callers' side stays plain async.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("store writer: cannot start its timer: {e}");
            return;
        }
    };
    let mut next: Option<Command> = None;
    // Test-only (`crate::fault`): `stall-store=N` stops the writer N seconds after it starts, as
    // a transaction stuck on a dead disk would.
    let stall_at = crate::fault::value("stall-store")
        .map(|v| std::time::Instant::now() + Duration::from_secs_f64(v.parse().unwrap_or(1.0)));
    loop {
        if stall_at.is_some_and(|t| std::time::Instant::now() >= t) {
            tracing::warn!(
                "KARE_FAULT=stall-store: the store writer stops here (test-only switch)"
            );
            loop {
                std::thread::park();
            }
        }
        shared.heartbeat.beat();
        let first = match next.take() {
            Some(c) => c,
            // Wakes at least every BEAT_EVERY to stamp the heartbeat, work or none.
            None => match rt.block_on(async {
                tokio::time::timeout(crate::pipeline::heartbeat::BEAT_EVERY, rx.recv()).await
            }) {
                Ok(Some(c)) => c,
                Ok(None) => break, // every handle dropped
                Err(_) => continue,
            },
        };
        match first {
            Command::Close(reply) => {
                // Whatever was queued before the close is still acknowledged work.
                rx.close();
                let mut rest = Vec::new();
                while let Ok(c) = rx.try_recv() {
                    match c {
                        Command::Write(j) => rest.push(j),
                        Command::Exclusive(f) => {
                            run_batch(&mut store, std::mem::take(&mut rest), &shared);
                            f(&mut store);
                        }
                        Command::Close(r) => drop(r),
                    }
                }
                run_batch(&mut store, rest, &shared);
                if let Err(e) = store.checkpoint() {
                    tracing::warn!("{e}");
                }
                let _ = store.connection().execute_batch("PRAGMA optimize");
                let _ = reply.send(());
                return;
            }
            Command::Exclusive(f) => f(&mut store),
            Command::Write(job) => {
                let mut jobs = vec![job];
                let deadline = tokio::time::Instant::now() + window;
                while jobs.len() < max_batch {
                    let c = match rx.try_recv() {
                        Ok(c) => Some(c),
                        Err(mpsc::error::TryRecvError::Disconnected) => None,
                        Err(mpsc::error::TryRecvError::Empty) => {
                            if window.is_zero() {
                                None
                            } else {
                                rt.block_on(async {
                                    tokio::time::timeout_at(deadline, rx.recv())
                                        .await
                                        .ok()
                                        .flatten()
                                })
                            }
                        }
                    };
                    match c {
                        Some(Command::Write(j)) => jobs.push(j),
                        Some(other) => {
                            next = Some(other);
                            break;
                        }
                        None => break,
                    }
                }
                run_batch(&mut store, jobs, &shared);
            }
        }
    }
    if let Err(e) = store.checkpoint() {
        tracing::warn!("{e}");
    }
}

/// Runs jobs in as few transactions as possible and answers each after its commit.
fn run_batch(store: &mut Store, jobs: Vec<Job>, shared: &Shared) {
    let path = store.path().to_string();
    let mut jobs = jobs.into_iter().peekable();
    while jobs.peek().is_some() {
        let ctx = BatchCtx {
            path: path.clone(),
            enqueued: Cell::new(false),
        };
        let mut tx = match store
            .connection_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(e) => {
                let e = StoreError::sqlite(&path, "starting a transaction", e);
                for job in jobs {
                    // Nothing ran: each is answered with the error.
                    let (finish, _) = job(Err(&e), &ctx);
                    note_failed(shared, &e);
                    finish(None);
                }
                return;
            }
        };
        let mut done: Vec<(Finish, Option<StoreError>)> = Vec::new();
        let mut lost: Option<StoreError> = None;
        for job in jobs.by_ref() {
            let (finish, err) = job(Ok(&mut tx), &ctx);
            // SQLITE_FULL, IOERR, NOMEM and BUSY may roll the whole transaction back, not just
            // the statement: then the commands before this one are lost too and must not be
            // acknowledged. The rest of the batch gets a fresh transaction.
            let whole = err.is_some() && tx.is_autocommit();
            done.push((finish, err.clone()));
            if whole {
                lost = err;
                break;
            }
        }
        let lost = match lost {
            Some(e) => Some(e),
            None => tx
                .commit()
                .err()
                .map(|e| StoreError::sqlite(&path, "committing", e)),
        };
        match &lost {
            None => {
                shared.transactions.fetch_add(1, Ordering::Relaxed);
                // A command lost to the medium inside a committed transaction (a statement-level
                // SQLITE_FULL) still means the store cannot write everything it is given.
                match done
                    .iter()
                    .find_map(|(_, e)| e.as_ref().filter(|e| cannot_write(e)))
                {
                    Some(e) => shared.health.failed(e, Utc::now()),
                    None => shared.health.committed(Utc::now()),
                }
                for (finish, failed) in done {
                    if failed.is_some() {
                        shared.failed.fetch_add(1, Ordering::Relaxed);
                    } else {
                        shared.commands.fetch_add(1, Ordering::Relaxed);
                    }
                    finish(None);
                }
                if ctx.enqueued.get() {
                    shared.outbox.notify_one();
                }
            }
            Some(e) => {
                tracing::warn!("{e}");
                for (finish, _) in done {
                    note_failed(shared, e);
                    finish(Some(e.clone()));
                }
            }
        }
    }
}

fn note_failed(shared: &Shared, e: &StoreError) {
    shared.failed.fetch_add(1, Ordering::Relaxed);
    shared.health.failed(e, Utc::now());
    *shared.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
}
