//! Tickets: a change saved with its revision and routed outbox rows in one transaction; read back by key, id, period or state.

use super::*;

pub(super) const TICKET_COLS: &str =
    "id, idempotency_key, revision, kind, state, priority, site_id, \
    customer_id, title, opened_at, updated_at, closed_at, duration_s, body_json, event_id";

pub(super) fn ticket_row(r: &Row) -> rusqlite::Result<TicketRow> {
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
pub(super) fn without_save_time(v: &Value) -> Value {
    let mut v = v.clone();
    if let Value::Object(m) = &mut v {
        m.remove("updated_at");
    }
    v
}

pub(super) fn stamp(v: &Value, id: i64, key: &str, revision: i64) -> Value {
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

pub(super) fn ticket_list(
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
