//! The sink's errors.

use thiserror::Error;

/// What can go wrong in the InfluxDB sink outside the normal store-and-forward path (a server
/// that is down or refuses a batch is not an error: the batch is kept and counted).
#[derive(Debug, Error)]
pub enum InfluxError {
    /// A configuration value is wrong; `key` names it as written in the TOML file.
    #[error("influx.{key}: {message}")]
    Config {
        /// The key, e.g. `url`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// The backlog database could not be opened or written.
    #[error("influx backlog {path}: {source}")]
    Backlog {
        /// The SQLite file.
        path: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A file could not be created, or a batch could not be (de)compressed.
    #[error("influx sink I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The HTTP client could not be built (TLS set-up).
    #[error("influx HTTP client: {0}")]
    Client(String),
}

/// A point that cannot be written as line protocol.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum EncodeError {
    /// The measurement name is empty (after removing characters line protocol cannot carry).
    #[error("empty measurement name")]
    EmptyMeasurement,
    /// Every field was dropped (none given, or only NaN / infinite floats).
    #[error("point of `{0}` has no finite field")]
    NoFields(String),
    /// The time stamp is outside what nanoseconds since 1970 in an i64 can hold.
    #[error("time stamp out of range")]
    TimeOutOfRange,
}
