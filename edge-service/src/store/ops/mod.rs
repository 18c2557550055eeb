//! The store's statements, as functions over a connection (or a transaction, or a savepoint:
//! both dereference to one). [`super::Store`] runs each in its own transaction; the writer thread
//! of [`super::StoreHandle`] runs many in one.

use super::model::*;
use super::time::{format_ts, parse_ts};
use super::StoreError;
use chrono::{DateTime, Utc};
use rusqlite::types::Type;
use rusqlite::{named_params, params, Connection, OptionalExtension, Row};
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;

mod events;
mod outbox;
mod report;
mod retention;
mod tickets;

pub(crate) use events::*;
pub(crate) use outbox::*;
pub(crate) use report::*;
pub(crate) use retention::*;
pub(crate) use tickets::*;

/// Shorthand for mapping a rusqlite error with the file and the action.
fn sq<'p>(path: &'p str, doing: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + 'p {
    move |e| StoreError::sqlite(path, doing, e)
}

fn bad_column(i: usize, what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, Type::Text, what.into())
}

fn ts_col(r: &Row, i: usize) -> rusqlite::Result<DateTime<Utc>> {
    let s: String = r.get(i)?;
    parse_ts(&s).ok_or_else(|| bad_column(i, format!("bad time stamp `{s}`")))
}

fn opt_ts_col(r: &Row, i: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    match r.get::<_, Option<String>>(i)? {
        None => Ok(None),
        Some(s) => parse_ts(&s)
            .map(Some)
            .ok_or_else(|| bad_column(i, format!("bad time stamp `{s}`"))),
    }
}

fn json_col(r: &Row, i: usize) -> rusqlite::Result<Value> {
    let s: String = r.get(i)?;
    serde_json::from_str(&s).map_err(|e| bad_column(i, format!("bad JSON: {e}")))
}

fn opt_json_col(r: &Row, i: usize) -> rusqlite::Result<Option<Value>> {
    match r.get::<_, Option<String>>(i)? {
        None => Ok(None),
        Some(s) => serde_json::from_str(&s)
            .map(Some)
            .map_err(|e| bad_column(i, format!("bad JSON: {e}"))),
    }
}

fn parsed_col<T: std::str::FromStr<Err = String>>(r: &Row, i: usize) -> rusqlite::Result<T> {
    let s: String = r.get(i)?;
    s.parse().map_err(|e: String| bad_column(i, e))
}

fn to_text(v: &Value) -> String {
    // Serialising a Value cannot fail (string keys only).
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}
