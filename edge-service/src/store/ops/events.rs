//! Events: upserted by source key, closed at a restart, profiles and waveforms attached, read back.

use super::*;

pub(super) const EVENT_COLS: &str =
    "id, source, source_key, site_id, kind, start_utc, end_utc, duration_s, \
    extreme_pct, worst_channel, open, json, profile_json, waveform IS NOT NULL, created_at, \
    updated_at";

pub(super) fn event_row(r: &Row) -> rusqlite::Result<EventRow> {
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

pub(crate) fn events_page(
    conn: &Connection,
    path: &str,
    f: &EventFilter,
) -> Result<Vec<EventRow>, StoreError> {
    use rusqlite::types::Value as Sql;
    let err = sq(path, "listing events");
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<Sql> = Vec::new();
    if let Some(from) = f.from {
        args.push(Sql::Text(format_ts(from)));
        clauses.push(format!("(end_utc IS NULL OR end_utc > ?{})", args.len()));
    }
    if let Some(to) = f.to {
        args.push(Sql::Text(format_ts(to)));
        clauses.push(format!("start_utc < ?{}", args.len()));
    }
    if !f.kinds.is_empty() {
        let mut marks = Vec::with_capacity(f.kinds.len());
        for k in &f.kinds {
            args.push(Sql::Text(k.clone()));
            marks.push(format!("?{}", args.len()));
        }
        clauses.push(format!("kind IN ({})", marks.join(", ")));
    }
    if let Some(s) = &f.source {
        args.push(Sql::Text(s.clone()));
        clauses.push(format!("source = ?{}", args.len()));
    }
    if let Some(b) = f.before_id {
        args.push(Sql::Integer(b));
        clauses.push(format!("id < ?{}", args.len()));
    }
    // The page just newer than `after_id` is the `limit` nearest ids above it: read upwards,
    // then turned round so every page is newest first.
    let upwards = f.after_id.is_some() && f.before_id.is_none();
    if let Some(a) = f.after_id {
        args.push(Sql::Integer(a));
        clauses.push(format!("id > ?{}", args.len()));
    }
    let limit = i64::try_from(f.limit.max(1)).unwrap_or(i64::MAX);
    args.push(Sql::Integer(limit));
    let sql = format!(
        "SELECT {EVENT_COLS} FROM events {} ORDER BY id {} LIMIT ?{}",
        if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        },
        if upwards { "ASC" } else { "DESC" },
        args.len()
    );
    let mut st = conn.prepare(&sql).map_err(&err)?;
    let rows = st
        .query_map(rusqlite::params_from_iter(args), event_row)
        .map_err(&err)?;
    let mut out: Vec<EventRow> = rows.collect::<rusqlite::Result<_>>().map_err(&err)?;
    if upwards {
        out.reverse();
    }
    Ok(out)
}
