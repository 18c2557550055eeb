//! The durable store: events, tickets and the delivery outbox in one SQLite file.
//!
//! **Durable before acknowledged** (design.md): every write returns only after the transaction
//! that holds it has committed, so whoever is told "saved, id 42" can rely on it surviving a
//! crash of kare (and, with [`Synchronous::Full`], a power cut). A ticket and the outbox rows that
//! deliver it are written in the *same* transaction: a ticket is never stored without its
//! deliveries, nor a delivery queued for a ticket that was lost.
//!
//! Two ways in:
//! - [`Store`]: one synchronous connection. Every method is one transaction. For tools, tests
//!   and anything already on a blocking thread.
//! - [`StoreHandle`]: the service's async front. It owns a writer thread that takes commands from
//!   a bounded channel and **batches** them (a few milliseconds, or up to N commands) into one
//!   transaction, so a storm of dips costs a handful of commits rather than hundreds of flash
//!   writes on the SD card. Each caller is answered after the commit. Reads go through a second
//!   connection on tokio's blocking pool and never wait for a batch (WAL lets them run beside
//!   the writer).
//!
//! Schema and its migrations: [`schema`]. Times are stored as fixed-width RFC 3339 UTC text
//! (`2026-11-26T08:15:00.123456Z`): sortable as text, so the time indexes work, and readable in
//! the `sqlite3` shell on site.

mod commissioning;
mod error;
mod handle;
mod health;
mod history;
mod model;
mod ops;
mod retention;
pub mod schema;
mod sync;
mod time;

pub use commissioning::CommissioningRow;
pub use error::StoreError;
pub use handle::{StoreHandle, StoreStats};
pub use health::{alarm_line, cannot_write, free_bytes, StoreHealth};
pub use model::{
    AggregateRow, Attempt, AttemptOutcome, AttemptRow, Channel, DeliverTo, EventFilter, EventRow,
    FrequencyRow, MeterIntervalRow, OutboxRow, OutboxState, PruneReport, SavedTicket, SiteRecord,
    StoredEvent, TicketRow, TicketState, TicketWrite,
};
pub use retention::run_retention;
pub use sync::Store;
pub use time::{format_ts, hour_start, in_years, parse_ts, YEARS};

/// GB/T 15945's frequency deviation limit for a normal system, Hz: the hourly frequency roll-up
/// counts the values within it (the report's figure).
pub const GBT15945_LIMIT_HZ: f64 = 0.2;

use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// How hard SQLite pushes each commit to the medium (`PRAGMA synchronous`, in WAL mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Synchronous {
    /// `synchronous=NORMAL`: a commit is appended to the WAL file but not fsync'd; the WAL is
    /// synced at checkpoints. Durable across any crash of the *process* (panic, OOM kill,
    /// `kill -9`), because the commit is already in the kernel's page cache; a power cut or a
    /// kernel crash may lose the last commits (never corrupt the file). Fewer flash writes.
    Normal,
    /// `synchronous=FULL`: every commit fsyncs the WAL before it returns. Durable across a power
    /// cut too. The default, because the appliance usually sits on the very supply it watches
    /// (domain.md §7): the moment it must record a ticket is the moment its own power may go.
    /// Batching keeps the cost to one fsync per batch.
    #[default]
    Full,
}

impl Synchronous {
    /// The PRAGMA value.
    pub fn pragma(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

/// `[store]` in the configuration file.
///
/// ```toml
/// [store]
/// path = "/var/lib/kare/kare.db"
/// synchronous = "full"      # or "normal": see `Synchronous`
/// retention_days = 730      # closed events and tickets older than this are pruned
/// max_db_mb = 2048          # and the oldest of them beyond this size
/// # hard_limit_mb = 4096    # SQLite refuses to grow past this (SQLITE_FULL)
/// # busy_timeout_ms = 5000, batch_window_ms = 5, max_batch = 256, queue = 1024
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The database file. Its directory must exist; SQLite puts `-wal` and `-shm` files beside it.
    pub path: PathBuf,
    /// Commit durability.
    pub synchronous: Synchronous,
    /// How long a statement waits for a lock held by another connection (the reader, a
    /// checkpoint, an operator's `sqlite3` shell) before failing, milliseconds.
    pub busy_timeout_ms: u64,
    /// After the first command of a batch, how long the writer waits for more, milliseconds.
    /// Adds at most this much to each acknowledgement; saves one commit per extra command.
    pub batch_window_ms: u64,
    /// Most commands in one transaction.
    pub max_batch: usize,
    /// Commands that may wait for the writer; a caller beyond that waits for room.
    pub queue: usize,
    /// Age after which closed events, closed tickets and delivered outbox rows are pruned, days.
    pub retention_days: f64,
    /// Size the live data is pruned down to (oldest first), megabytes.
    pub max_db_mb: u64,
    /// Hard ceiling on the file (`PRAGMA max_page_count`), megabytes: past it writes fail with
    /// [`StoreError::DiskFull`] rather than filling the card the operating system lives on.
    pub hard_limit_mb: Option<u64>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: PathBuf::from("/var/lib/kare/kare.db"),
            synchronous: Synchronous::Full,
            busy_timeout_ms: 5_000,
            batch_window_ms: 5,
            max_batch: 256,
            queue: 1024,
            retention_days: 730.0,
            max_db_mb: 2048,
            hard_limit_mb: None,
        }
    }
}

impl StoreConfig {
    /// A configuration for `path` with every other setting at its default.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        StoreConfig {
            path: path.into(),
            ..StoreConfig::default()
        }
    }

    /// [`Self::retention_days`] as a duration.
    pub fn max_age(&self) -> Duration {
        Duration::from_secs_f64(self.retention_days.max(0.0) * 86_400.0)
    }

    /// [`Self::max_db_mb`] in bytes.
    pub fn max_db_bytes(&self) -> u64 {
        self.max_db_mb.saturating_mul(1 << 20)
    }

    /// Checks the values; the problem's key is relative to `[store]`. Ranges (documented in
    /// `systemd/kare.toml`): busy_timeout_ms 0 to 600 000; batch_window_ms 0 to 1000;
    /// max_batch 1 to 100 000; queue 1 to 1 000 000; retention_days more than 0, at most
    /// 36 500; max_db_mb 1 to 1 048 576 (1 TiB); hard_limit_mb from max_db_mb to 1 048 576.
    pub fn validate(&self) -> Result<(), crate::config::ConfigProblem> {
        use crate::config::check::{above, text, within};
        use crate::config::ConfigProblem;
        if self.path.as_os_str().is_empty() {
            return Err(ConfigProblem::new(
                "path",
                "must name the database file, e.g. `path = \"/var/lib/kare/kare.db\"`",
            ));
        }
        text("path", &self.path.to_string_lossy(), false)?;
        within(
            "busy_timeout_ms",
            self.busy_timeout_ms as f64,
            0.0,
            600_000.0,
            "ms",
            "5000",
        )?;
        within(
            "batch_window_ms",
            self.batch_window_ms as f64,
            0.0,
            1000.0,
            "ms",
            "5",
        )?;
        within(
            "max_batch",
            self.max_batch as f64,
            1.0,
            100_000.0,
            "commands",
            "256",
        )?;
        within(
            "queue",
            self.queue as f64,
            1.0,
            1_000_000.0,
            "commands",
            "1024",
        )?;
        above(
            "retention_days",
            self.retention_days,
            0.0,
            36_500.0,
            "days",
            "730",
        )?;
        // 0 MB would prune every closed record at each pass: the record is the point.
        within(
            "max_db_mb",
            self.max_db_mb as f64,
            1.0,
            1_048_576.0,
            "MB",
            "2048",
        )?;
        if let Some(h) = self.hard_limit_mb {
            within("hard_limit_mb", h as f64, 1.0, 1_048_576.0, "MB", "4096")?;
            if h < self.max_db_mb {
                return Err(ConfigProblem::new(
                    "hard_limit_mb",
                    format!(
                        "must be at least max_db_mb ({}), or retention could never make room, e.g. `hard_limit_mb = {}`",
                        self.max_db_mb,
                        self.max_db_mb.saturating_mul(2)
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_config_example_parses_and_validates() {
        #[derive(Deserialize)]
        struct File {
            store: StoreConfig,
        }
        let text: String = include_str!("mod.rs")
            .lines()
            .skip_while(|l| !l.starts_with("/// ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("/// ```"))
            .map(|l| l.strip_prefix("/// ").unwrap_or("").to_string() + "\n")
            .collect();
        let c = toml::from_str::<File>(&text).unwrap().store;
        c.validate().unwrap();
        assert_eq!(c.synchronous, Synchronous::Full);
        assert_eq!(c.max_db_bytes(), 2048 << 20);
        assert_eq!(c.max_age(), Duration::from_secs(730 * 86_400));
        let bad = StoreConfig {
            hard_limit_mb: Some(10),
            ..c
        };
        assert_eq!(bad.validate().unwrap_err().key, "hard_limit_mb");
    }
}
