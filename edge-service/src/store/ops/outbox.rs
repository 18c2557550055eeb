//! The delivery outbox: rows due (the earliest pending revision per ticket and endpoint), attempts recorded, dead letters and their requeue.

use super::*;

pub(super) const OUTBOX_COLS: &str =
    "o.id, o.ticket_id, t.idempotency_key, t.kind, o.revision, o.channel, \
    o.endpoint, o.payload_json, o.idempotency_key, o.created_at, o.next_attempt_at, o.attempts, \
    o.state, o.last_error, o.delivered_at";

pub(super) fn outbox_row(r: &Row) -> rusqlite::Result<OutboxRow> {
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
pub(super) const HEAD: &str = "o.state = 'pending' AND NOT EXISTS (SELECT 1 FROM outbox p \
     WHERE p.state = 'pending' AND p.ticket_id = o.ticket_id AND p.endpoint = o.endpoint \
       AND p.revision < o.revision) \
     AND o.id NOT IN (SELECT value FROM json_each(:exclude))";

pub(super) fn ids_json(exclude: &[i64]) -> String {
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

pub(super) fn outbox_list(
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
