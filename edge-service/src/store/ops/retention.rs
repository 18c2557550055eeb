//! Retention: live bytes, pruning by age and size in steps, never an open ticket, an undelivered row or an event a ticket names.

use super::*;

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
pub(super) const PRUNABLE: &str = "\
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

/// The report history tables and their time columns.
const HISTORY: [(&str, &str); 4] = [
    ("aggregates", "start_utc"),
    ("frequency", "start_utc"),
    ("frequency_hours", "hour_utc"),
    ("meter_intervals", "start_utc"),
];

/// Removes report history (10-min aggregates, 10-s and hourly frequency, meter intervals) older
/// than `before` rounded down to its hour. History is measurements, never an event or a ticket:
/// it ages out with the same `retention_days`, and goes first when the file is over its size (a
/// day at a time, [`oldest_history_day`]). Whole hours, in every table: the hourly frequency
/// roll-up of the hour `before` falls in would go (its start is before `before`) while that
/// hour's later 10-s values stayed, and a report reads that hour from the roll-up alone.
pub(crate) fn prune_history(
    conn: &Connection,
    path: &str,
    before: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let err = sq(path, "pruning report history");
    let before = crate::store::hour_start(before);
    let mut n = 0;
    for (table, col) in HISTORY {
        n += conn
            .prepare_cached(&format!("DELETE FROM {table} WHERE {col} < ?1"))
            .and_then(|mut st| st.execute([format_ts(before)]))
            .map_err(&err)? as u64;
    }
    Ok(n)
}

/// The end of the oldest day of history held (its first row plus a day), if any.
pub(crate) fn oldest_history_day(
    conn: &Connection,
    path: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let err = sq(path, "finding the oldest report history");
    let mut oldest: Option<DateTime<Utc>> = None;
    for (table, col) in HISTORY {
        let t: Option<String> = conn
            .query_row(&format!("SELECT MIN({col}) FROM {table}"), [], |r| r.get(0))
            .map_err(&err)?;
        if let Some(t) = t.as_deref().and_then(parse_ts) {
            oldest = Some(oldest.map_or(t, |o| o.min(t)));
        }
    }
    Ok(oldest.map(|t| t + chrono::TimeDelta::days(1)))
}
