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

// ---------------------------------------------------------------------------------------------
// events

const EVENT_COLS: &str = "id, source, source_key, site_id, kind, start_utc, end_utc, duration_s, \
    extreme_pct, worst_channel, open, json, profile_json, waveform IS NOT NULL, created_at, \
    updated_at";

fn event_row(r: &Row) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        id: r.get(0)?,
        source: r.get(1)?,
        source_key: r.get(2)?,
        site_id: r.get(3)?,
        kind: r.get(4)?,
        start: ts_col(r, 5)?,
        end: opt_ts_col(r, 6)?,
        duration_s: r.get(7)?,
        extreme_pct: r.get(8)?,
        worst_channel: r.get(9)?,
        open: r.get(10)?,
        json: json_col(r, 11)?,
        profile_json: opt_json_col(r, 12)?,
        has_waveform: r.get(13)?,
        created_at: ts_col(r, 14)?,
        updated_at: ts_col(r, 15)?,
    })
}

pub(crate) fn upsert_event(
    conn: &Connection,
    path: &str,
    now: DateTime<Utc>,
    e: &StoredEvent,
) -> Result<i64, StoreError> {
    if e.source.is_empty() || e.source_key.is_empty() {
        return Err(StoreError::Invalid(
            "an event needs a source and a source key".into(),
        ));
    }
    let now = format_ts(now);
    // A profile or waveform not given keeps the stored one: the event's end is written without
    // them, and must not erase a profile attached meanwhile.
    conn.prepare_cached(
        "INSERT INTO events (source, source_key, site_id, kind, start_utc, end_utc, duration_s, \
             extreme_pct, worst_channel, open, json, profile_json, waveform, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14) \
         ON CONFLICT (source, source_key) DO UPDATE SET \
             site_id = excluded.site_id, kind = excluded.kind, start_utc = excluded.start_utc, \
             end_utc = excluded.end_utc, duration_s = excluded.duration_s, \
             extreme_pct = excluded.extreme_pct, worst_channel = excluded.worst_channel, \
             open = excluded.open, json = excluded.json, \
             profile_json = COALESCE(excluded.profile_json, events.profile_json), \
             waveform = COALESCE(excluded.waveform, events.waveform), \
             updated_at = excluded.updated_at \
         RETURNING id",
    )
    .and_then(|mut st| {
        st.query_row(
            params![
                e.source,
                e.source_key,
                e.site_id,
                e.kind,
                format_ts(e.start),
                e.end.map(format_ts),
                e.duration_s,
                e.extreme_pct,
                e.worst_channel,
                e.open,
                to_text(&e.json),
                e.profile_json.as_ref().map(to_text),
                e.waveform,
                now,
            ],
            |r| r.get(0),
        )
    })
    .map_err(sq(path, "saving an event"))
}

/// Closes every event still marked open: the service stopped (a crash, a power cut) before it
/// saw them end, and the detector that would have ended them is gone. The end is *honest*: it is
/// the last time the service knew of the event (the row's last write, never before its start),
/// so the duration is a lower bound, never an invention; the event's JSON says so
/// (`end_unknown: true`, `end_note: "unknown end, service restarted at <restarted_at>"`).
/// Returns the ids closed.
pub(crate) fn close_open_events(
    conn: &Connection,
    path: &str,
    restarted_at: DateTime<Utc>,
) -> Result<Vec<i64>, StoreError> {
    let err = sq(path, "closing events left open");
    let open: Vec<(i64, DateTime<Utc>, DateTime<Utc>, Value)> = {
        let mut st = conn
            .prepare_cached("SELECT id, start_utc, updated_at, json FROM events WHERE open = 1")
            .map_err(&err)?;
        let rows = st
            .query_map([], |r| {
                Ok((r.get(0)?, ts_col(r, 1)?, ts_col(r, 2)?, json_col(r, 3)?))
            })
            .map_err(&err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(&err)?
    };
    let note = format!(
        "unknown end, service restarted at {}",
        restarted_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let mut closed = Vec::with_capacity(open.len());
    for (id, start, last_known, mut json) in open {
        let end = last_known.max(start);
        let duration_s = (end - start).num_microseconds().unwrap_or(0) as f64 / 1e6;
        if let Value::Object(m) = &mut json {
            m.insert("duration_s".into(), duration_s.into());
            m.insert("open".into(), false.into());
            m.insert("end_unknown".into(), true.into());
            m.insert("end_note".into(), note.clone().into());
        }
        conn.prepare_cached(
            "UPDATE events SET open = 0, end_utc = ?2, duration_s = ?3, json = ?4, \
                 updated_at = ?5 WHERE id = ?1",
        )
        .and_then(|mut st| {
            st.execute(params![
                id,
                format_ts(end),
                duration_s,
                to_text(&json),
                format_ts(restarted_at)
            ])
        })
        .map_err(&err)?;
        closed.push(id);
    }
    Ok(closed)
}

pub(crate) fn attach_profile(
    conn: &Connection,
    path: &str,
    now: DateTime<Utc>,
    id: i64,
    profile: &Value,
) -> Result<(), StoreError> {
    let n = conn
        .execute(
            "UPDATE events SET profile_json = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, to_text(profile), format_ts(now)],
        )
        .map_err(sq(path, "attaching a profile"))?;
    if n == 0 {
        return Err(StoreError::NotFound { what: "event", id });
    }
    Ok(())
}

pub(crate) fn attach_waveform(
    conn: &Connection,
    path: &str,
    now: DateTime<Utc>,
    id: i64,
    bytes: &[u8],
) -> Result<(), StoreError> {
    let n = conn
        .execute(
            "UPDATE events SET waveform = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, bytes, format_ts(now)],
        )
        .map_err(sq(path, "attaching a waveform"))?;
    if n == 0 {
        return Err(StoreError::NotFound { what: "event", id });
    }
    Ok(())
}

pub(crate) fn event(
    conn: &Connection,
    path: &str,
    id: i64,
) -> Result<Option<EventRow>, StoreError> {
    conn.query_row(
        &format!("SELECT {EVENT_COLS} FROM events WHERE id = ?1"),
        [id],
        event_row,
    )
    .optional()
    .map_err(sq(path, "reading an event"))
}

pub(crate) fn event_waveform(
    conn: &Connection,
    path: &str,
    id: i64,
) -> Result<Option<Vec<u8>>, StoreError> {
    conn.query_row("SELECT waveform FROM events WHERE id = ?1", [id], |r| {
        r.get::<_, Option<Vec<u8>>>(0)
    })
    .optional()
    .map(Option::flatten)
    .map_err(sq(path, "reading a waveform"))
}

pub(crate) fn events(
    conn: &Connection,
    path: &str,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<EventRow>, StoreError> {
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT {EVENT_COLS} FROM events WHERE start_utc >= ?1 AND start_utc < ?2 \
             ORDER BY start_utc, id"
        ))
        .map_err(sq(path, "listing events"))?;
    let rows = st
        .query_map(params![format_ts(since), format_ts(until)], event_row)
        .map_err(sq(path, "listing events"))?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(sq(path, "listing events"))
}

// ---------------------------------------------------------------------------------------------
// tickets

const TICKET_COLS: &str = "id, idempotency_key, revision, kind, state, priority, site_id, \
    customer_id, title, opened_at, updated_at, closed_at, duration_s, body_json, event_id";

fn ticket_row(r: &Row) -> rusqlite::Result<TicketRow> {
    Ok(TicketRow {
        id: r.get(0)?,
        key: r.get(1)?,
        revision: r.get(2)?,
        kind: r.get(3)?,
        state: parsed_col(r, 4)?,
        priority: r.get(5)?,
        site_id: r.get(6)?,
        customer_id: r.get(7)?,
        title: r.get(8)?,
        opened_at: ts_col(r, 9)?,
        updated_at: ts_col(r, 10)?,
        closed_at: opt_ts_col(r, 11)?,
        duration_s: r.get(12)?,
        body_json: json_col(r, 13)?,
        event_id: r.get(14)?,
    })
}

/// Sets the members only the store knows (`id`, `key`, `revision`) on an object payload.
fn without_save_time(v: &Value) -> Value {
    let mut v = v.clone();
    if let Value::Object(m) = &mut v {
        m.remove("updated_at");
    }
    v
}

fn stamp(v: &Value, id: i64, key: &str, revision: i64) -> Value {
    let mut v = v.clone();
    if let Value::Object(m) = &mut v {
        m.insert("id".into(), id.into());
        m.insert("key".into(), key.into());
        m.insert("revision".into(), revision.into());
    }
    v
}

pub(crate) fn ticket_by_key(
    conn: &Connection,
    path: &str,
    key: &str,
) -> Result<Option<TicketRow>, StoreError> {
    conn.query_row(
        &format!("SELECT {TICKET_COLS} FROM tickets WHERE idempotency_key = ?1"),
        [key],
        ticket_row,
    )
    .optional()
    .map_err(sq(path, "reading a ticket"))
}

pub(crate) fn ticket(
    conn: &Connection,
    path: &str,
    id: i64,
) -> Result<Option<TicketRow>, StoreError> {
    conn.query_row(
        &format!("SELECT {TICKET_COLS} FROM tickets WHERE id = ?1"),
        [id],
        ticket_row,
    )
    .optional()
    .map_err(sq(path, "reading a ticket"))
}

fn ticket_list(
    conn: &Connection,
    path: &str,
    sql_tail: &str,
    p: impl rusqlite::Params,
) -> Result<Vec<TicketRow>, StoreError> {
    let mut st = conn
        .prepare_cached(&format!("SELECT {TICKET_COLS} FROM tickets {sql_tail}"))
        .map_err(sq(path, "listing tickets"))?;
    let rows = st
        .query_map(p, ticket_row)
        .map_err(sq(path, "listing tickets"))?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(sq(path, "listing tickets"))
}

pub(crate) fn open_tickets(conn: &Connection, path: &str) -> Result<Vec<TicketRow>, StoreError> {
    ticket_list(
        conn,
        path,
        "WHERE state = 'open' ORDER BY opened_at, id",
        [],
    )
}

pub(crate) fn tickets(
    conn: &Connection,
    path: &str,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<TicketRow>, StoreError> {
    ticket_list(
        conn,
        path,
        "WHERE opened_at >= ?1 AND opened_at < ?2 ORDER BY opened_at, id",
        params![format_ts(since), format_ts(until)],
    )
}

pub(crate) fn save_ticket(
    conn: &Connection,
    path: &str,
    now: DateTime<Utc>,
    w: &TicketWrite,
) -> Result<SavedTicket, StoreError> {
    let err = sq(path, "saving a ticket");
    if w.key.is_empty() || w.kind.is_empty() {
        return Err(StoreError::Invalid(
            "a ticket needs an idempotency key and a kind".into(),
        ));
    }
    let mut seen = HashSet::new();
    for d in &w.deliver_to {
        if d.endpoint.is_empty() {
            return Err(StoreError::Invalid(format!(
                "ticket {}: a delivery without an endpoint name",
                w.key
            )));
        }
        if !seen.insert(d.endpoint.as_str()) {
            return Err(StoreError::Invalid(format!(
                "ticket {}: endpoint `{}` named twice for one revision",
                w.key, d.endpoint
            )));
        }
    }
    let now_s = format_ts(now);
    let open = w.state == TicketState::Open;
    let existing = ticket_by_key(conn, path, &w.key)?;

    let (id, revision, changed) = match existing {
        None => {
            let opened = format_ts(w.opened_at.unwrap_or(now));
            let closed = (!open).then(|| format_ts(w.closed_at.unwrap_or(now)));
            // Insert first to learn the id, then write the body with it (same transaction).
            conn.prepare_cached(
                "INSERT INTO tickets (kind, state, priority, site_id, customer_id, title, \
                     opened_at, updated_at, closed_at, duration_s, idempotency_key, revision, \
                     body_json, event_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 1, '{}', ?12)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    w.kind,
                    w.state.as_str(),
                    w.priority,
                    w.site_id,
                    w.customer_id,
                    w.title,
                    opened,
                    now_s,
                    closed,
                    w.duration_s,
                    w.key,
                    w.event_id,
                ])
            })
            .map_err(&err)?;
            let id = conn.last_insert_rowid();
            conn.execute(
                "UPDATE tickets SET body_json = ?2 WHERE id = ?1",
                params![id, to_text(&stamp(&w.body_json, id, &w.key, 1))],
            )
            .map_err(&err)?;
            (id, 1, true)
        }
        Some(cur) => {
            let opened = w.opened_at.unwrap_or(cur.opened_at);
            // A closed ticket re-saved without a closing time keeps the one it has, so that an
            // identical re-save (after a restart) is recognised as such.
            let closed = if open {
                None
            } else {
                Some(
                    w.closed_at
                        .or(if cur.state != TicketState::Open {
                            cur.closed_at
                        } else {
                            None
                        })
                        .unwrap_or(now),
                )
            };
            // Compared as text (a float written as text reads back to the same text), and without
            // `updated_at`: the time of a save is not a change, or every re-save after a restart
            // would be a new revision and a new delivery.
            let stored_body: String = conn
                .query_row(
                    "SELECT body_json FROM tickets WHERE id = ?1",
                    [cur.id],
                    |r| r.get(0),
                )
                .map_err(&err)?;
            let stored_body: Value = serde_json::from_str(&stored_body).unwrap_or(Value::Null);
            let same_body = to_text(&without_save_time(&stamp(
                &w.body_json,
                cur.id,
                &w.key,
                cur.revision,
            ))) == to_text(&without_save_time(&stored_body));
            // Times as stored (microseconds): a nanosecond difference is no change.
            let same_time = |a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>| {
                a.map(format_ts) == b.map(format_ts)
            };
            let unchanged = same_body
                && cur.kind == w.kind
                && cur.state == w.state
                && cur.priority == w.priority
                && cur.site_id == w.site_id
                && cur.customer_id == w.customer_id
                && cur.title == w.title
                && (w.event_id.is_none() || cur.event_id.is_some())
                && same_time(Some(cur.opened_at), Some(opened))
                && same_time(cur.closed_at, closed)
                && cur.duration_s == w.duration_s;
            if unchanged {
                return Ok(SavedTicket {
                    id: cur.id,
                    revision: cur.revision,
                    changed: false,
                    outbox_ids: Vec::new(),
                });
            }
            let rev = cur.revision + 1;
            conn.prepare_cached(
                "UPDATE tickets SET kind = ?2, state = ?3, priority = ?4, site_id = ?5, \
                     customer_id = ?6, title = ?7, opened_at = ?8, updated_at = ?9, \
                     closed_at = ?10, duration_s = ?11, revision = ?12, body_json = ?13, \
                     event_id = COALESCE(event_id, ?14) \
                 WHERE id = ?1",
            )
            .and_then(|mut st| {
                st.execute(params![
                    cur.id,
                    w.kind,
                    w.state.as_str(),
                    w.priority,
                    w.site_id,
                    w.customer_id,
                    w.title,
                    format_ts(opened),
                    now_s,
                    closed.map(format_ts),
                    w.duration_s,
                    rev,
                    to_text(&stamp(&w.body_json, cur.id, &w.key, rev)),
                    w.event_id,
                ])
            })
            .map_err(&err)?;
            (cur.id, rev, true)
        }
    };

    let idem = format!("{}:{}", w.key, revision);
    let mut outbox_ids = Vec::with_capacity(w.deliver_to.len());
    let mut st = conn
        .prepare_cached(
            "INSERT INTO outbox (ticket_id, revision, channel, endpoint, payload_json, \
                 idempotency_key, created_at, next_attempt_at, attempts, state) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, 0, 'pending')",
        )
        .map_err(&err)?;
    for d in &w.deliver_to {
        st.execute(params![
            id,
            revision,
            d.channel.as_str(),
            d.endpoint,
            to_text(&stamp(&d.payload_json, id, &w.key, revision)),
            idem,
            now_s,
        ])
        .map_err(&err)?;
        outbox_ids.push(conn.last_insert_rowid());
    }
    Ok(SavedTicket {
        id,
        revision,
        changed,
        outbox_ids,
    })
}

// ---------------------------------------------------------------------------------------------
// outbox

const OUTBOX_COLS: &str = "o.id, o.ticket_id, t.idempotency_key, t.kind, o.revision, o.channel, \
    o.endpoint, o.payload_json, o.idempotency_key, o.created_at, o.next_attempt_at, o.attempts, \
    o.state, o.last_error, o.delivered_at";

fn outbox_row(r: &Row) -> rusqlite::Result<OutboxRow> {
    Ok(OutboxRow {
        id: r.get(0)?,
        ticket_id: r.get(1)?,
        ticket_key: r.get(2)?,
        ticket_kind: r.get(3)?,
        revision: r.get(4)?,
        channel: parsed_col(r, 5)?,
        endpoint: r.get(6)?,
        payload_json: json_col(r, 7)?,
        payload_text: r.get(7)?,
        idempotency_key: r.get(8)?,
        created_at: ts_col(r, 9)?,
        next_attempt_at: ts_col(r, 10)?,
        attempts: r.get(11)?,
        state: parsed_col(r, 12)?,
        last_error: r.get(13)?,
        delivered_at: opt_ts_col(r, 14)?,
    })
}

/// A pending row with no earlier pending revision of the same ticket for the same endpoint: the
/// head of its (ticket, endpoint) queue, the only row of that queue that may be sent.
const HEAD: &str = "o.state = 'pending' AND NOT EXISTS (SELECT 1 FROM outbox p \
     WHERE p.state = 'pending' AND p.ticket_id = o.ticket_id AND p.endpoint = o.endpoint \
       AND p.revision < o.revision) \
     AND o.id NOT IN (SELECT value FROM json_each(:exclude))";

fn ids_json(exclude: &[i64]) -> String {
    serde_json::to_string(exclude).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn outbox_due(
    conn: &Connection,
    path: &str,
    now: DateTime<Utc>,
    limit: usize,
    exclude: &[i64],
) -> Result<Vec<OutboxRow>, StoreError> {
    let err = sq(path, "listing due deliveries");
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT {OUTBOX_COLS} FROM outbox o JOIN tickets t ON t.id = o.ticket_id \
             WHERE o.next_attempt_at <= :now AND {HEAD} \
             ORDER BY o.next_attempt_at, o.id LIMIT :limit"
        ))
        .map_err(&err)?;
    let rows = st
        .query_map(
            named_params! {
                ":now": format_ts(now),
                ":exclude": ids_json(exclude),
                ":limit": limit as i64,
            },
            outbox_row,
        )
        .map_err(&err)?;
    rows.collect::<rusqlite::Result<_>>().map_err(&err)
}

pub(crate) fn outbox_next_due(
    conn: &Connection,
    path: &str,
    exclude: &[i64],
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let s: Option<String> = conn
        .query_row(
            &format!("SELECT MIN(o.next_attempt_at) FROM outbox o WHERE {HEAD}"),
            named_params! { ":exclude": ids_json(exclude) },
            |r| r.get(0),
        )
        .map_err(sq(path, "finding the next due delivery"))?;
    Ok(s.and_then(|s| parse_ts(&s)))
}

fn outbox_list(
    conn: &Connection,
    path: &str,
    sql_tail: &str,
    p: impl rusqlite::Params,
) -> Result<Vec<OutboxRow>, StoreError> {
    let err = sq(path, "listing deliveries");
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT {OUTBOX_COLS} FROM outbox o JOIN tickets t ON t.id = o.ticket_id {sql_tail}"
        ))
        .map_err(&err)?;
    let rows = st.query_map(p, outbox_row).map_err(&err)?;
    rows.collect::<rusqlite::Result<_>>().map_err(&err)
}

pub(crate) fn outbox_for_ticket(
    conn: &Connection,
    path: &str,
    ticket_id: i64,
) -> Result<Vec<OutboxRow>, StoreError> {
    outbox_list(
        conn,
        path,
        "WHERE o.ticket_id = ?1 ORDER BY o.revision, o.id",
        [ticket_id],
    )
}

pub(crate) fn outbox_row_by_id(
    conn: &Connection,
    path: &str,
    id: i64,
) -> Result<Option<OutboxRow>, StoreError> {
    Ok(outbox_list(conn, path, "WHERE o.id = ?1", [id])?.pop())
}

pub(crate) fn dead_letters(conn: &Connection, path: &str) -> Result<Vec<OutboxRow>, StoreError> {
    outbox_list(
        conn,
        path,
        "WHERE o.state = 'dead' ORDER BY o.created_at, o.id",
        [],
    )
}

pub(crate) fn attempts(
    conn: &Connection,
    path: &str,
    outbox_id: i64,
) -> Result<Vec<AttemptRow>, StoreError> {
    let err = sq(path, "listing delivery attempts");
    let mut st = conn
        .prepare_cached(
            "SELECT id, outbox_id, at, ok, detail, latency_ms FROM delivery_attempts \
             WHERE outbox_id = ?1 ORDER BY at, id",
        )
        .map_err(&err)?;
    let rows = st
        .query_map([outbox_id], |r| {
            Ok(AttemptRow {
                id: r.get(0)?,
                outbox_id: r.get(1)?,
                at: ts_col(r, 2)?,
                ok: r.get(3)?,
                detail: r.get(4)?,
                latency_ms: r.get(5)?,
            })
        })
        .map_err(&err)?;
    rows.collect::<rusqlite::Result<_>>().map_err(&err)
}

pub(crate) fn record_attempt(conn: &Connection, path: &str, a: &Attempt) -> Result<(), StoreError> {
    let err = sq(path, "recording a delivery attempt");
    let state: Option<String> = conn
        .query_row(
            "SELECT state FROM outbox WHERE id = ?1",
            [a.outbox_id],
            |r| r.get(0),
        )
        .optional()
        .map_err(&err)?;
    let Some(state) = state else {
        return Err(StoreError::NotFound {
            what: "outbox row",
            id: a.outbox_id,
        });
    };
    let ok = a.outcome == AttemptOutcome::Delivered;
    let at = format_ts(a.at);
    conn.prepare_cached(
        "INSERT INTO delivery_attempts (outbox_id, at, ok, detail, latency_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut st| {
        st.execute(params![
            a.outbox_id,
            at,
            ok,
            a.detail,
            a.latency.as_millis().min(i64::MAX as u128) as i64
        ])
    })
    .map_err(&err)?;
    // Only a pending row moves: a late report about a row already settled is history, not news.
    if state != OutboxState::Pending.as_str() {
        return Ok(());
    }
    let (new_state, next, delivered_at) = match a.outcome {
        AttemptOutcome::Delivered => (OutboxState::Delivered, None, Some(at.clone())),
        AttemptOutcome::RetryAt(t) => (OutboxState::Pending, Some(format_ts(t)), None),
        AttemptOutcome::Dead => (OutboxState::Dead, None, None),
    };
    conn.prepare_cached(
        "UPDATE outbox SET attempts = attempts + 1, state = ?2, \
             next_attempt_at = COALESCE(?3, next_attempt_at), \
             last_error = CASE WHEN ?4 THEN last_error ELSE ?5 END, \
             delivered_at = ?6 \
         WHERE id = ?1",
    )
    .and_then(|mut st| {
        st.execute(params![
            a.outbox_id,
            new_state.as_str(),
            next,
            ok,
            a.detail,
            delivered_at
        ])
    })
    .map_err(&err)?;
    Ok(())
}

pub(crate) fn requeue_dead(
    conn: &Connection,
    path: &str,
    now: DateTime<Utc>,
    outbox_id: i64,
) -> Result<(), StoreError> {
    // A fresh `created_at` gives it a fresh `max_age`; the attempts so far stay on record.
    let n = conn
        .execute(
            "UPDATE outbox SET state = 'pending', created_at = ?2, next_attempt_at = ?2 \
             WHERE id = ?1 AND state = 'dead'",
            params![outbox_id, format_ts(now)],
        )
        .map_err(sq(path, "re-queueing a dead letter"))?;
    if n == 0 {
        return Err(StoreError::NotFound {
            what: "dead letter",
            id: outbox_id,
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// retention

/// Bytes of live data: pages in use (not on the free list) × page size.
pub(crate) fn used_bytes(conn: &Connection, path: &str) -> Result<u64, StoreError> {
    let err = sq(path, "measuring the database");
    let pages: i64 = conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .map_err(&err)?;
    let free: i64 = conn
        .query_row("PRAGMA freelist_count", [], |r| r.get(0))
        .map_err(&err)?;
    let size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .map_err(&err)?;
    Ok(((pages - free).max(0) * size) as u64)
}

/// Counts removed by one retention step.
#[derive(Default)]
pub(crate) struct Removed {
    pub events: u64,
    pub tickets: u64,
    pub outbox: u64,
    pub attempts: u64,
}

impl Removed {
    fn any(&self) -> bool {
        self.events + self.tickets + self.outbox + self.attempts > 0
    }
}

/// What retention may remove, oldest first by the time it stopped changing. Never an open
/// ticket, never an undelivered (pending or dead) outbox row, never an open event, never a
/// ticket that still has outbox rows nor an event a remaining ticket refers to.
const PRUNABLE: &str = "\
    SELECT 'o' AS what, id, delivered_at AS t FROM outbox WHERE state = 'delivered' \
    UNION ALL \
    SELECT 't', id, MAX(COALESCE(closed_at, updated_at), updated_at) FROM tickets tk \
        WHERE state IN ('closed', 'cancelled') \
          AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.ticket_id = tk.id) \
    UNION ALL \
    SELECT 'e', id, MAX(COALESCE(end_utc, start_utc), updated_at) FROM events e \
        WHERE open = 0 AND NOT EXISTS (SELECT 1 FROM tickets tk WHERE tk.event_id = e.id)";

/// Removes up to `limit` of the oldest prunable rows older than `before` (all ages when `None`).
pub(crate) fn prune_step(
    conn: &Connection,
    path: &str,
    before: Option<DateTime<Utc>>,
    limit: usize,
) -> Result<Removed, StoreError> {
    let err = sq(path, "pruning old data");
    let picked: Vec<(String, i64)> = {
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT what, id FROM ({PRUNABLE}) WHERE ?1 IS NULL OR t < ?1 \
                 ORDER BY t, what, id LIMIT ?2"
            ))
            .map_err(&err)?;
        let rows = st
            .query_map(params![before.map(format_ts), limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(&err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(&err)?
    };
    let mut n = Removed::default();
    for (what, id) in picked {
        match what.as_str() {
            "o" => {
                n.attempts += conn
                    .execute("DELETE FROM delivery_attempts WHERE outbox_id = ?1", [id])
                    .map_err(&err)? as u64;
                n.outbox += conn
                    .execute(
                        "DELETE FROM outbox WHERE id = ?1 AND state = 'delivered'",
                        [id],
                    )
                    .map_err(&err)? as u64;
            }
            "t" => {
                n.tickets += conn
                    .execute(
                        "DELETE FROM tickets WHERE id = ?1 AND state IN ('closed', 'cancelled')",
                        [id],
                    )
                    .map_err(&err)? as u64;
            }
            _ => {
                n.events += conn
                    .execute("DELETE FROM events WHERE id = ?1 AND open = 0", [id])
                    .map_err(&err)? as u64;
            }
        }
    }
    Ok(n)
}

/// Adds one step's counts to a report; returns whether the step removed anything.
pub(crate) fn add_removed(r: &mut PruneReport, n: &Removed) -> bool {
    r.events += n.events;
    r.tickets += n.tickets;
    r.outbox += n.outbox;
    r.attempts += n.attempts;
    n.any()
}

/// `now - max_age`, saturating.
pub(crate) fn cutoff(now: DateTime<Utc>, max_age: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(max_age)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}
