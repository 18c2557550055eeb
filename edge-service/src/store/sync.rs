//! [`Store`]: one synchronous connection; every write method is one transaction.

use super::model::*;
use super::{ops, schema, StoreConfig, StoreError};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use serde_json::Value;
use std::time::Duration;

/// The WAL file is truncated back to this after a checkpoint, so that a burst does not leave a
/// large file behind on the SD card.
const JOURNAL_SIZE_LIMIT: i64 = 4 << 20;

/// Rows removed per retention transaction: small enough that a prune never holds the writer
/// for long, large enough that it finishes in a few transactions.
const PRUNE_CHUNK: usize = 256;

/// A synchronous connection to the store.
pub struct Store {
    conn: Connection,
    path: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) and migrates the database; this connection may write.
    pub fn open(cfg: &StoreConfig) -> Result<Store, StoreError> {
        Self::open_as(cfg, true)
    }

    /// Opens a connection that only reads (for the async front's queries). The file must
    /// already have been opened for writing once (it is then migrated).
    pub(crate) fn open_reader(cfg: &StoreConfig) -> Result<Store, StoreError> {
        Self::open_as(cfg, false)
    }

    fn open_as(cfg: &StoreConfig, writer: bool) -> Result<Store, StoreError> {
        let path = cfg.path.display().to_string();
        let err = |doing| {
            let path = path.clone();
            move |e| StoreError::sqlite(&path, doing, e)
        };
        let flags = if writer {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
        } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(&cfg.path, flags).map_err(err("opening"))?;
        conn.busy_timeout(Duration::from_millis(cfg.busy_timeout_ms))
            .map_err(err("setting the busy timeout"))?;
        if writer {
            let tables: i64 = conn
                .query_row("SELECT COUNT(*) FROM sqlite_schema", [], |r| r.get(0))
                .map_err(err("reading the schema"))?;
            if tables == 0 {
                // Only possible before the first table exists: lets retention give pages back
                // to the file system (PRAGMA incremental_vacuum) instead of only reusing them.
                conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL")
                    .map_err(err("setting auto_vacuum"))?;
            }
            // WAL: readers (the web UI, the outbox worker) never wait for the writer, and a
            // commit appends to one file instead of rewriting pages in place.
            let mode: String = conn
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                .map_err(err("switching to WAL"))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Sqlite {
                    path,
                    doing: "switching to WAL",
                    message: format!(
                        "journal mode stayed `{mode}` (is the file system read-only?)"
                    ),
                });
            }
            conn.execute_batch(&format!(
                "PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT};"
            ))
            .map_err(err("limiting the journal"))?;
        }
        // Per connection, not stored in the file.
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {}; PRAGMA foreign_keys = ON;",
            cfg.synchronous.pragma()
        ))
        .map_err(err("setting pragmas"))?;

        let found = schema::version(&conn).map_err(err("reading the schema version"))?;
        if found > schema::latest_version() {
            return Err(StoreError::TooNew {
                path,
                found,
                known: schema::latest_version(),
            });
        }
        if writer {
            schema::migrate_to(&mut conn, schema::latest_version())
                .map_err(err("migrating the schema"))?;
            if let Some(mb) = cfg.hard_limit_mb {
                let page: i64 = conn
                    .query_row("PRAGMA page_size", [], |r| r.get(0))
                    .map_err(err("reading the page size"))?;
                let pages = (mb.saturating_mul(1 << 20) / page.max(512) as u64).max(1);
                conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
                    .map_err(err("setting the size limit"))?;
            }
        } else {
            if found < schema::latest_version() {
                return Err(StoreError::Sqlite {
                    path,
                    doing: "opening for reading",
                    message: "the file is not migrated yet (open it for writing first)".into(),
                });
            }
            conn.execute_batch("PRAGMA query_only = ON")
                .map_err(err("setting query_only"))?;
        }
        Ok(Store { conn, path })
    }

    /// The database file, as given.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The connection itself, for tools and tests (`sqlite3`-style inspection, pragmas).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    pub(crate) fn connection_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Runs `f` in one IMMEDIATE transaction (the write lock is taken at the start, so a
    /// concurrent writer waits for `busy_timeout` instead of failing mid-way).
    pub(super) fn write<T>(
        &mut self,
        doing: &'static str,
        f: impl FnOnce(&Connection, &str) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| StoreError::sqlite(&path, doing, e))?;
        let v = f(&tx, &path)?;
        tx.commit()
            .map_err(|e| StoreError::sqlite(&path, doing, e))?;
        Ok(v)
    }

    /// Inserts an event, or updates the one with the same `(source, source_key)`; returns its id.
    pub fn upsert_event(&mut self, e: &StoredEvent) -> Result<i64, StoreError> {
        self.write("saving an event", |c, p| {
            ops::upsert_event(c, p, Utc::now(), e)
        })
    }

    /// Closes every event left open by a stop the service did not see coming; see
    /// [`StoreHandle::close_open_events`](crate::store::StoreHandle::close_open_events).
    pub fn close_open_events(
        &mut self,
        restarted_at: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        self.write("closing events left open", |c, p| {
            ops::close_open_events(c, p, restarted_at)
        })
    }

    /// Stores an event's completed RMS profile.
    pub fn attach_profile(&mut self, id: i64, profile: &Value) -> Result<(), StoreError> {
        self.write("attaching a profile", |c, p| {
            ops::attach_profile(c, p, Utc::now(), id, profile)
        })
    }

    /// Stores an event's waveform capture.
    pub fn attach_waveform(&mut self, id: i64, bytes: &[u8]) -> Result<(), StoreError> {
        self.write("attaching a waveform", |c, p| {
            ops::attach_waveform(c, p, Utc::now(), id, bytes)
        })
    }

    /// Creates or updates a ticket (revision + 1 on every change) and queues one outbox row per
    /// delivery, all in one transaction. An identical re-save changes and queues nothing.
    pub fn save_ticket(&mut self, w: &TicketWrite) -> Result<SavedTicket, StoreError> {
        self.write("saving a ticket", |c, p| {
            ops::save_ticket(c, p, Utc::now(), w)
        })
    }

    /// Records a delivery attempt and moves the outbox row on (delivered, retry at, or dead).
    pub fn record_attempt(&mut self, a: &Attempt) -> Result<(), StoreError> {
        self.write("recording a delivery attempt", |c, p| {
            ops::record_attempt(c, p, a)
        })
    }

    /// Puts a dead letter back in the queue (after the cause was fixed: a secret, a URL), with
    /// a fresh `max_age`. Same payload and idempotency key; a receiver that already holds a
    /// later revision ignores it as stale.
    pub fn requeue_dead(&mut self, outbox_id: i64) -> Result<(), StoreError> {
        self.write("re-queueing a dead letter", |c, p| {
            ops::requeue_dead(c, p, Utc::now(), outbox_id)
        })
    }

    /// One event.
    pub fn event(&self, id: i64) -> Result<Option<EventRow>, StoreError> {
        ops::event(&self.conn, &self.path, id)
    }

    /// An event's waveform capture.
    pub fn event_waveform(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        ops::event_waveform(&self.conn, &self.path, id)
    }

    /// Events that started in `[since, until)`, oldest first.
    pub fn events(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<EventRow>, StoreError> {
        ops::events(&self.conn, &self.path, since, until)
    }

    /// One ticket.
    pub fn ticket(&self, id: i64) -> Result<Option<TicketRow>, StoreError> {
        ops::ticket(&self.conn, &self.path, id)
    }

    /// The ticket with this idempotency key.
    pub fn ticket_by_key(&self, key: &str) -> Result<Option<TicketRow>, StoreError> {
        ops::ticket_by_key(&self.conn, &self.path, key)
    }

    /// Open tickets, oldest first (what the rules restore after a restart).
    pub fn open_tickets(&self) -> Result<Vec<TicketRow>, StoreError> {
        ops::open_tickets(&self.conn, &self.path)
    }

    /// Tickets opened in `[since, until)`, oldest first.
    pub fn tickets(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<TicketRow>, StoreError> {
        ops::tickets(&self.conn, &self.path, since, until)
    }

    /// Outbox rows due at `now` that may be sent: pending, and no earlier revision of the same
    /// ticket still pending for the same endpoint. Soonest first.
    pub fn outbox_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        ops::outbox_due(&self.conn, &self.path, now, limit, &[])
    }

    /// As [`Self::outbox_due`], leaving out rows already being sent.
    pub fn outbox_due_excluding(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        exclude: &[i64],
    ) -> Result<Vec<OutboxRow>, StoreError> {
        ops::outbox_due(&self.conn, &self.path, now, limit, exclude)
    }

    /// When the next sendable row (not in `exclude`) falls due; `None` when nothing is pending.
    pub fn outbox_next_due(&self, exclude: &[i64]) -> Result<Option<DateTime<Utc>>, StoreError> {
        ops::outbox_next_due(&self.conn, &self.path, exclude)
    }

    /// A ticket's outbox rows, by revision.
    pub fn outbox_for_ticket(&self, ticket_id: i64) -> Result<Vec<OutboxRow>, StoreError> {
        ops::outbox_for_ticket(&self.conn, &self.path, ticket_id)
    }

    /// One outbox row.
    pub fn outbox_row(&self, id: i64) -> Result<Option<OutboxRow>, StoreError> {
        ops::outbox_row_by_id(&self.conn, &self.path, id)
    }

    /// Outbox rows given up on, oldest first.
    pub fn dead_letters(&self) -> Result<Vec<OutboxRow>, StoreError> {
        ops::dead_letters(&self.conn, &self.path)
    }

    /// The attempts to deliver one outbox row, in order.
    pub fn attempts(&self, outbox_id: i64) -> Result<Vec<AttemptRow>, StoreError> {
        ops::attempts(&self.conn, &self.path, outbox_id)
    }

    /// Bytes of live data (pages in use × page size).
    pub fn used_bytes(&self) -> Result<u64, StoreError> {
        ops::used_bytes(&self.conn, &self.path)
    }

    /// `PRAGMA integrity_check`: `Ok(())` when SQLite finds nothing wrong, otherwise its
    /// findings. Reads the whole file: for tests, commissioning and after an unclean stop.
    pub fn integrity_check(&self) -> Result<Result<(), Vec<String>>, StoreError> {
        let mut st = self
            .conn
            .prepare("PRAGMA integrity_check")
            .map_err(|e| StoreError::sqlite(&self.path, "checking integrity", e))?;
        let lines: Vec<String> = st
            .query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| StoreError::sqlite(&self.path, "checking integrity", e))?;
        Ok(if lines == ["ok"] { Ok(()) } else { Err(lines) })
    }

    /// Retention, now: see [`Self::prune_as_of`].
    pub fn prune(
        &mut self,
        max_age: Duration,
        max_db_bytes: u64,
    ) -> Result<PruneReport, StoreError> {
        self.prune_as_of(Utc::now(), max_age, max_db_bytes)
    }

    /// Retention as of `now`. First removes what is older than `max_age`, then, while the live
    /// data is above `max_db_bytes`, the oldest of what remains: delivered outbox rows (with
    /// their attempts), closed or cancelled tickets with no outbox rows left, closed events no
    /// remaining ticket refers to. Never an open ticket, an open event or an undelivered
    /// (pending or dead) outbox row. Commits in small chunks, then returns freed pages to the
    /// file system.
    pub fn prune_as_of(
        &mut self,
        now: DateTime<Utc>,
        max_age: Duration,
        max_db_bytes: u64,
    ) -> Result<PruneReport, StoreError> {
        let mut report = PruneReport {
            bytes_before: self.used_bytes()?,
            ..PruneReport::default()
        };
        let before = ops::cutoff(now, max_age);
        // Each step can make more rows prunable (a ticket once its delivered rows are gone, an
        // event once its ticket is gone), so repeat until a step removes nothing.
        loop {
            let n = self.write("pruning old data", |c, p| {
                ops::prune_step(c, p, Some(before), PRUNE_CHUNK)
            })?;
            if !ops::add_removed(&mut report, &n) {
                break;
            }
        }
        while self.used_bytes()? > max_db_bytes {
            let n = self.write("pruning for size", |c, p| {
                ops::prune_step(c, p, None, PRUNE_CHUNK / 4)
            })?;
            if !ops::add_removed(&mut report, &n) {
                report.still_over_limit = true;
                break;
            }
        }
        if report.removed_anything() {
            // Gives free pages back (files created by this build use incremental auto_vacuum;
            // on others it is a no-op and the pages are reused instead).
            // Each step of this pragma frees one page: step it to the end.
            let err = |e| StoreError::sqlite(&self.path, "returning free pages", e);
            let mut st = self
                .conn
                .prepare("PRAGMA incremental_vacuum")
                .map_err(err)?;
            let mut rows = st.query([]).map_err(err)?;
            while rows.next().map_err(err)?.is_some() {}
        }
        report.bytes_after = self.used_bytes()?;
        Ok(report)
    }

    /// Folds the WAL back into the database file and truncates it (at a clean stop).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(|e| StoreError::sqlite(&self.path, "checkpointing", e))
    }
}
