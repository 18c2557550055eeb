//! What reports read and the history the service records for them: the site as configured,
//! 10-minute aggregates, 10-second frequency, 15-minute meter intervals, and the range reads a
//! report makes ("overlapping `[from, to)`", oldest first).
//!
//! An interval is written once when it completes; it is written again only when the service
//! stopped inside it (the stop writes the part before, the next start the part after). The
//! second write merges into the row instead of replacing it, so the part before the restart
//! still counts: flags ORed, extremes min/max, means weighted by windows (aggregates,
//! frequency) or polls (a meter's demand), counts added; a meter's registers and power factor
//! are the later write's where it read them, its highest power and THD the higher of the two.

use super::events::{event_row, EVENT_COLS};
use super::tickets::ticket_list;
use super::*;
use std::collections::HashMap;

/// No stored interval is longer than this, seconds: range reads look this far before `from`
/// for an interval that began earlier and still overlaps (the time index stays a range scan).
pub(crate) const MAX_INTERVAL_S: f64 = 3600.0;

fn check_interval(what: &str, start: DateTime<Utc>, seconds: f64) -> Result<(), StoreError> {
    if !(seconds > 0.0 && seconds <= MAX_INTERVAL_S) {
        return Err(StoreError::Invalid(format!(
            "{what} at {}: length {seconds} s is outside (0, {MAX_INTERVAL_S}] s",
            format_ts(start)
        )));
    }
    Ok(())
}

fn check_finite(
    what: &str,
    start: DateTime<Utc>,
    values: &[(&str, f64)],
) -> Result<(), StoreError> {
    match values.iter().find(|(_, v)| !v.is_finite()) {
        None => Ok(()),
        Some((name, v)) => Err(StoreError::Invalid(format!(
            "{what} at {}: {name} is {v}, not a number that can be stored",
            format_ts(start)
        ))),
    }
}

/// A value SQLite would store as NULL anyway (NaN) or that no reading means (±∞): stored as
/// "not read".
fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite())
}

/// The lower bound of a range read on a time index: `from` minus the longest interval
/// (saturating: chrono's first time, whose text sorts before every stored stamp).
fn scan_from(from: DateTime<Utc>) -> String {
    format_ts(
        from.checked_sub_signed(chrono::TimeDelta::seconds(MAX_INTERVAL_S as i64))
            .unwrap_or(DateTime::<Utc>::MIN_UTC),
    )
}

/// Whether an interval starting at `start`, `seconds` long, overlaps `[from, to)`.
fn overlaps(start: DateTime<Utc>, seconds: f64, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
    let end = start + chrono::TimeDelta::microseconds((seconds * 1e6).round() as i64);
    start < to && end > from
}

pub(crate) fn save_site(
    conn: &Connection,
    path: &str,
    now: DateTime<Utc>,
    site: &SiteRecord,
) -> Result<(), StoreError> {
    let json = serde_json::to_string(site)
        .map_err(|e| StoreError::Invalid(format!("site {}: {e}", site.id)))?;
    conn.prepare_cached(
        "INSERT INTO site (id, json, updated_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (id) DO UPDATE SET json = excluded.json, updated_at = excluded.updated_at",
    )
    .and_then(|mut st| st.execute(params![site.id, json, format_ts(now)]))
    .map_err(sq(path, "saving the site"))?;
    Ok(())
}

pub(crate) fn site(conn: &Connection, path: &str) -> Result<Option<SiteRecord>, StoreError> {
    conn.query_row(
        "SELECT json FROM site ORDER BY updated_at DESC, rowid DESC LIMIT 1",
        [],
        |r| {
            let s: String = r.get(0)?;
            serde_json::from_str::<SiteRecord>(&s)
                .map_err(|e| bad_column(0, format!("bad site JSON: {e}")))
        },
    )
    .optional()
    .map_err(sq(path, "reading the site"))
}

pub(crate) fn save_aggregates(
    conn: &Connection,
    path: &str,
    rows: &[AggregateRow],
) -> Result<(), StoreError> {
    let err = sq(path, "saving 10-minute aggregates");
    let mut st = conn
        .prepare_cached(
            "INSERT INTO aggregates (source, channel, start_utc, seconds, udin_v, \
                 mean_v, min_v, max_v, windows, flagged) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
             ON CONFLICT (source, channel, start_utc) DO UPDATE SET \
                 seconds = max(seconds, excluded.seconds), \
                 udin_v = excluded.udin_v, \
                 mean_v = CASE WHEN windows + excluded.windows > 0 \
                     THEN (mean_v * windows + excluded.mean_v * excluded.windows) \
                         / (windows + excluded.windows) \
                     ELSE excluded.mean_v END, \
                 min_v = min(min_v, excluded.min_v), \
                 max_v = max(max_v, excluded.max_v), \
                 windows = windows + excluded.windows, \
                 flagged = max(flagged, excluded.flagged)",
        )
        .map_err(&err)?;
    for a in rows {
        check_interval("an aggregate", a.start, a.seconds)?;
        check_finite(
            "an aggregate",
            a.start,
            &[
                ("udin_v", a.udin_v),
                ("mean_v", a.mean_v),
                ("min_v", a.min_v),
                ("max_v", a.max_v),
            ],
        )?;
        st.execute(params![
            a.source,
            a.channel,
            format_ts(a.start),
            a.seconds,
            a.udin_v,
            a.mean_v,
            a.min_v,
            a.max_v,
            a.windows,
            a.flagged
        ])
        .map_err(&err)?;
    }
    Ok(())
}

pub(crate) fn save_frequency(
    conn: &Connection,
    path: &str,
    rows: &[FrequencyRow],
) -> Result<(), StoreError> {
    let err = sq(path, "saving 10-second frequency");
    let mut st = conn
        .prepare_cached(
            "INSERT INTO frequency (source, start_utc, seconds, nominal_hz, mean_hz, \
                 min_hz, max_hz, windows, flagged) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
             ON CONFLICT (source, start_utc) DO UPDATE SET \
                 seconds = max(seconds, excluded.seconds), \
                 nominal_hz = CASE WHEN excluded.nominal_hz > 0 \
                     THEN excluded.nominal_hz ELSE nominal_hz END, \
                 mean_hz = CASE WHEN windows + excluded.windows > 0 \
                     THEN (mean_hz * windows + excluded.mean_hz * excluded.windows) \
                         / (windows + excluded.windows) \
                     ELSE excluded.mean_hz END, \
                 min_hz = min(min_hz, excluded.min_hz), \
                 max_hz = max(max_hz, excluded.max_hz), \
                 windows = windows + excluded.windows, \
                 flagged = max(flagged, excluded.flagged)",
        )
        .map_err(&err)?;
    for f in rows {
        check_interval("a frequency value", f.start, f.seconds)?;
        check_finite(
            "a frequency value",
            f.start,
            &[
                ("nominal_hz", f.nominal_hz),
                ("mean_hz", f.mean_hz),
                ("min_hz", f.min_hz),
                ("max_hz", f.max_hz),
            ],
        )?;
        st.execute(params![
            f.source,
            format_ts(f.start),
            f.seconds,
            f.nominal_hz,
            f.mean_hz,
            f.min_hz,
            f.max_hz,
            f.windows,
            f.flagged
        ])
        .map_err(&err)?;
    }
    // The hours these values fall in, rolled up again from their 10-s rows (a batch touches one
    // or two hours of a source: a few hundred rows read back).
    let hours: std::collections::BTreeSet<(&str, DateTime<Utc>)> = rows
        .iter()
        .map(|f| (f.source.as_str(), crate::store::hour_start(f.start)))
        .collect();
    let mut roll = conn
        .prepare_cached(
            "INSERT OR REPLACE INTO frequency_hours (source, hour_utc, nominal_hz, intervals, \
                 flagged, gbt15945_in, en50160_in, min_hz, max_hz) \
             SELECT ?1, ?2, MAX(nominal_hz), COUNT(*), SUM(flagged), \
                 SUM(flagged = 0 AND abs(mean_hz - nominal_hz) <= ?4), \
                 SUM(flagged = 0 AND abs(mean_hz - nominal_hz) <= nominal_hz * 0.01 + 1e-9), \
                 MIN(CASE WHEN flagged = 0 THEN mean_hz END), \
                 MAX(CASE WHEN flagged = 0 THEN mean_hz END) \
             FROM frequency WHERE source = ?1 AND start_utc >= ?2 AND start_utc < ?3",
        )
        .map_err(&err)?;
    for (source, hour) in hours {
        roll.execute(params![
            source,
            format_ts(hour),
            format_ts(hour + chrono::TimeDelta::hours(1)),
            crate::store::GBT15945_LIMIT_HZ + 1e-9
        ])
        .map_err(&err)?;
    }
    Ok(())
}

pub(crate) fn save_meter_intervals(
    conn: &Connection,
    path: &str,
    rows: &[MeterIntervalRow],
) -> Result<(), StoreError> {
    let err = sq(path, "saving meter intervals");
    let mut st = conn
        .prepare_cached(
            "INSERT INTO meter_intervals (source, device, start_utc, seconds, \
                 import_kwh, export_kwh, import_kvarh, demand_kw, max_kw, power_factor, \
                 thd_u_pct, samples) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
             ON CONFLICT (source, device, start_utc) DO UPDATE SET \
                 seconds = max(seconds, excluded.seconds), \
                 import_kwh = COALESCE(excluded.import_kwh, import_kwh), \
                 export_kwh = COALESCE(excluded.export_kwh, export_kwh), \
                 import_kvarh = COALESCE(excluded.import_kvarh, import_kvarh), \
                 demand_kw = CASE \
                     WHEN demand_kw IS NULL THEN excluded.demand_kw \
                     WHEN excluded.demand_kw IS NULL THEN demand_kw \
                     WHEN samples + excluded.samples > 0 \
                         THEN (demand_kw * samples + excluded.demand_kw * excluded.samples) \
                             / (samples + excluded.samples) \
                     ELSE excluded.demand_kw END, \
                 max_kw = max(COALESCE(max_kw, excluded.max_kw), \
                     COALESCE(excluded.max_kw, max_kw)), \
                 power_factor = COALESCE(excluded.power_factor, power_factor), \
                 thd_u_pct = max(COALESCE(thd_u_pct, excluded.thd_u_pct), \
                     COALESCE(excluded.thd_u_pct, thd_u_pct)), \
                 samples = samples + excluded.samples",
        )
        .map_err(&err)?;
    for m in rows {
        check_interval("a meter interval", m.start, m.seconds)?;
        st.execute(params![
            m.source,
            m.device,
            format_ts(m.start),
            m.seconds,
            finite(m.import_kwh),
            finite(m.export_kwh),
            finite(m.import_kvarh),
            finite(m.demand_kw),
            finite(m.max_kw),
            finite(m.power_factor),
            finite(m.thd_u_pct),
            m.samples
        ])
        .map_err(&err)?;
    }
    Ok(())
}

pub(crate) fn events_overlapping(
    conn: &Connection,
    path: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<EventRow>, StoreError> {
    let err = sq(path, "listing events");
    // `start_utc < to` is the index range; an event still open (no end) overlaps whatever
    // follows its start.
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT {EVENT_COLS} FROM events \
             WHERE start_utc < ?2 AND (end_utc IS NULL OR end_utc > ?1) \
             ORDER BY start_utc, id"
        ))
        .map_err(&err)?;
    let rows = st
        .query_map(params![format_ts(from), format_ts(to)], event_row)
        .map_err(&err)?;
    rows.collect::<rusqlite::Result<_>>().map_err(&err)
}

pub(crate) fn tickets_overlapping(
    conn: &Connection,
    path: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<TicketRow>, StoreError> {
    // A ticket closed exactly at `from` still belongs to the period: its closing is in it.
    ticket_list(
        conn,
        path,
        "WHERE opened_at < ?2 AND (closed_at IS NULL OR closed_at >= ?1) ORDER BY opened_at, id",
        params![format_ts(from), format_ts(to)],
    )
}

pub(crate) fn first_deliveries(
    conn: &Connection,
    path: &str,
    ticket_ids: &[i64],
) -> Result<HashMap<i64, DateTime<Utc>>, StoreError> {
    let err = sq(path, "reading first deliveries");
    let mut out = HashMap::new();
    // SQLite's bound-parameter limit is 32 766 since 3.32; chunks keep far below it.
    for chunk in ticket_ids.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let mut st = conn
            .prepare(&format!(
                "SELECT ticket_id, MIN(delivered_at) FROM outbox \
                 WHERE delivered_at IS NOT NULL AND ticket_id IN ({marks}) GROUP BY ticket_id"
            ))
            .map_err(&err)?;
        let rows = st
            .query_map(rusqlite::params_from_iter(chunk), |r| {
                Ok((r.get::<_, i64>(0)?, ts_col(r, 1)?))
            })
            .map_err(&err)?;
        for row in rows {
            let (id, at) = row.map_err(&err)?;
            out.insert(id, at);
        }
    }
    Ok(out)
}

fn aggregate_row(r: &Row) -> rusqlite::Result<AggregateRow> {
    Ok(AggregateRow {
        source: r.get(0)?,
        channel: r.get(1)?,
        start: ts_col(r, 2)?,
        seconds: r.get(3)?,
        udin_v: r.get(4)?,
        mean_v: r.get(5)?,
        min_v: r.get(6)?,
        max_v: r.get(7)?,
        windows: r.get(8)?,
        flagged: r.get(9)?,
    })
}

fn frequency_row(r: &Row) -> rusqlite::Result<FrequencyRow> {
    Ok(FrequencyRow {
        source: r.get(0)?,
        start: ts_col(r, 1)?,
        seconds: r.get(2)?,
        nominal_hz: r.get(3)?,
        mean_hz: r.get(4)?,
        min_hz: r.get(5)?,
        max_hz: r.get(6)?,
        windows: r.get(7)?,
        flagged: r.get(8)?,
    })
}

fn meter_interval_row(r: &Row) -> rusqlite::Result<MeterIntervalRow> {
    Ok(MeterIntervalRow {
        source: r.get(0)?,
        device: r.get(1)?,
        start: ts_col(r, 2)?,
        seconds: r.get(3)?,
        import_kwh: r.get(4)?,
        export_kwh: r.get(5)?,
        import_kvarh: r.get(6)?,
        demand_kw: r.get(7)?,
        max_kw: r.get(8)?,
        power_factor: r.get(9)?,
        thd_u_pct: r.get(10)?,
        samples: r.get(11)?,
    })
}

/// One history table's range read: its statement (two parameters: the scan's lower bound and
/// `to`), how a row is read, and the interval a row covers.
struct Scan<T> {
    doing: &'static str,
    sql: &'static str,
    read: fn(&Row) -> rusqlite::Result<T>,
    span: fn(&T) -> (DateTime<Utc>, f64),
}

impl<T> Scan<T> {
    /// Hands every row that overlaps `[from, to)` to `each`, in the query's order, without
    /// collecting them (a year of 10-second frequency is three million rows).
    fn run(
        &self,
        conn: &Connection,
        path: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        mut each: impl FnMut(T),
    ) -> Result<(), StoreError> {
        let err = sq(path, self.doing);
        let mut st = conn.prepare_cached(self.sql).map_err(&err)?;
        let mut rows = st
            .query(params![scan_from(from), format_ts(to)])
            .map_err(&err)?;
        while let Some(r) = rows.next().map_err(&err)? {
            let v = (self.read)(r).map_err(&err)?;
            let (start, seconds) = (self.span)(&v);
            if overlaps(start, seconds, from, to) {
                each(v);
            }
        }
        Ok(())
    }
}

const AGGREGATE_SQL: &str = "SELECT source, channel, start_utc, seconds, udin_v, mean_v, min_v, \
     max_v, windows, flagged FROM aggregates WHERE start_utc >= ?1 AND start_utc < ?2 \
     ORDER BY start_utc, source, channel";

const FREQUENCY_SQL: &str = "SELECT source, start_utc, seconds, nominal_hz, mean_hz, min_hz, \
     max_hz, windows, flagged FROM frequency WHERE start_utc >= ?1 AND start_utc < ?2 \
     ORDER BY start_utc, source";

const METER_INTERVAL_SQL: &str = "SELECT source, device, start_utc, seconds, import_kwh, \
     export_kwh, import_kvarh, demand_kw, max_kw, power_factor, thd_u_pct, samples \
     FROM meter_intervals WHERE start_utc >= ?1 AND start_utc < ?2 \
     ORDER BY start_utc, source, device";

pub(crate) fn for_each_aggregate(
    conn: &Connection,
    path: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    each: impl FnMut(AggregateRow),
) -> Result<(), StoreError> {
    Scan {
        doing: "reading 10-minute aggregates",
        sql: AGGREGATE_SQL,
        read: aggregate_row,
        span: |a| (a.start, a.seconds),
    }
    .run(conn, path, from, to, each)
}

pub(crate) fn for_each_frequency(
    conn: &Connection,
    path: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    each: impl FnMut(FrequencyRow),
) -> Result<(), StoreError> {
    Scan {
        doing: "reading 10-second frequency",
        sql: FREQUENCY_SQL,
        read: frequency_row,
        span: |f| (f.start, f.seconds),
    }
    .run(conn, path, from, to, each)
}

pub(crate) fn for_each_meter_interval(
    conn: &Connection,
    path: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    each: impl FnMut(MeterIntervalRow),
) -> Result<(), StoreError> {
    Scan {
        doing: "reading meter intervals",
        sql: METER_INTERVAL_SQL,
        read: meter_interval_row,
        span: |m| (m.start, m.seconds),
    }
    .run(conn, path, from, to, each)
}
