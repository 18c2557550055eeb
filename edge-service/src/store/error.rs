//! What can go wrong in the store, worded for the person who has to fix it.

use rusqlite::ErrorCode;
use thiserror::Error;

/// A store failure. Cloneable, because one failed commit answers every command of its batch.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum StoreError {
    /// SQLITE_FULL: the medium is full, or the file reached `[store] hard_limit_mb`.
    #[error(
        "store {path}: no room to write while {doing} (disk full, or the file reached \
         [store] hard_limit_mb): free space on the device, or lower [store] max_db_mb / \
         retention_days so that retention prunes more; until then new events and tickets are \
         not recorded"
    )]
    DiskFull {
        /// The database file.
        path: String,
        /// What was being written.
        doing: &'static str,
    },
    /// SQLITE_CORRUPT or SQLITE_NOTADB.
    #[error(
        "store {path}: the database file is damaged ({message}) while {doing}: stop kare, move \
         the file (and its -wal and -shm files) aside for analysis and start again; kare creates \
         a new one"
    )]
    Corrupt {
        /// The database file.
        path: String,
        /// What was being done.
        doing: &'static str,
        /// SQLite's message.
        message: String,
    },
    /// The file's schema is newer than this build knows.
    #[error(
        "store {path}: written by a newer kare (schema version {found}; this build knows up to \
         {known}): install that version again, or move the file aside"
    )]
    TooNew {
        /// The database file.
        path: String,
        /// `PRAGMA user_version` found.
        found: i64,
        /// Highest version this build knows.
        known: i64,
    },
    /// The file cannot be written now, though nothing is wrong with what was asked: an I/O
    /// error, a read-only or vanished filesystem, permissions, another process holding the
    /// lock. It may pass; a write failing so waits in memory (`pipeline/pending.rs`).
    #[error("store {path}: {doing}: {message}")]
    Unavailable {
        /// The database file.
        path: String,
        /// What was being done.
        doing: &'static str,
        /// SQLite's message.
        message: String,
    },
    /// Any other SQLite failure.
    #[error("store {path}: {doing}: {message}")]
    Sqlite {
        /// The database file.
        path: String,
        /// What was being done.
        doing: &'static str,
        /// SQLite's message.
        message: String,
    },
    /// A row that was referred to does not exist.
    #[error("store: no {what} with id {id}")]
    NotFound {
        /// `event`, `ticket`, `outbox row`.
        what: &'static str,
        /// The id asked for.
        id: i64,
    },
    /// The caller passed something the store refuses (empty key, unknown channel...).
    #[error("store: {0}")]
    Invalid(String),
    /// The writer thread has stopped (after [`crate::store::StoreHandle::close`], or a panic).
    #[error("store is closed: its writer has stopped")]
    Closed,
}

impl StoreError {
    /// Maps a rusqlite error, keeping the two conditions a person must act on apart.
    pub(crate) fn sqlite(path: &str, doing: &'static str, e: rusqlite::Error) -> StoreError {
        let path = path.to_string();
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => StoreError::DiskFull { path, doing },
            Some(ErrorCode::DatabaseCorrupt) | Some(ErrorCode::NotADatabase) => {
                StoreError::Corrupt {
                    path,
                    doing,
                    message: e.to_string(),
                }
            }
            Some(
                ErrorCode::SystemIoFailure
                | ErrorCode::ReadOnly
                | ErrorCode::CannotOpen
                | ErrorCode::PermissionDenied
                | ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked,
            ) => StoreError::Unavailable {
                path,
                doing,
                message: e.to_string(),
            },
            // Anything else (a constraint, a conversion, a statement the schema refuses) fails
            // the same way every time: waiting would hold up every later write behind it.
            _ => StoreError::Sqlite {
                path,
                doing,
                message: e.to_string(),
            },
        }
    }

    /// Whether this is the full-disk condition.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StoreError::DiskFull { .. })
    }
}
