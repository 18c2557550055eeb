//! The schema, as an ordered list of migrations.
//!
//! `PRAGMA user_version` is the number of migrations applied. Opening a file applies the missing
//! ones, each in its own transaction together with the version bump, so a crash mid-migration
//! leaves the file at the previous version. A migration, once released, is never edited: a change
//! is a new migration at the end. A file with a higher version than this build knows is refused
//! ([`crate::store::StoreError::TooNew`]) rather than written by code that does not know its
//! columns.
//!
//! Designed for the reports and pages to come: every table has an index on its time column, and
//! events and tickets one on site (and customer) plus time, so "this customer, this month" is an
//! index range scan.

use rusqlite::Connection;

/// The migrations, in order. Migration `i` (0-based) takes the file to version `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: events, tickets, outbox, delivery attempts.
    r#"
CREATE TABLE events (
    id            INTEGER PRIMARY KEY,
    source        TEXT    NOT NULL,
    -- the source's own key for the event, stable from start to end (upsert key)
    source_key    TEXT    NOT NULL,
    site_id       TEXT,
    kind          TEXT    NOT NULL,
    start_utc     TEXT    NOT NULL,
    end_utc       TEXT,
    duration_s    REAL,
    extreme_pct   REAL,
    worst_channel TEXT,
    open          INTEGER NOT NULL CHECK (open IN (0, 1)),
    -- the event as the JSON API shows it
    json          TEXT    NOT NULL,
    profile_json  TEXT,
    -- a COMTRADE export or raw capture
    waveform      BLOB,
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL,
    UNIQUE (source, source_key)
);
CREATE INDEX events_start ON events (start_utc);
CREATE INDEX events_site_start ON events (site_id, start_utc);
CREATE INDEX events_kind_start ON events (kind, start_utc);
CREATE INDEX events_open ON events (open) WHERE open = 1;

CREATE TABLE tickets (
    id              INTEGER PRIMARY KEY,
    kind            TEXT    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('open', 'closed', 'cancelled')),
    priority        TEXT    NOT NULL,
    site_id         TEXT    NOT NULL,
    customer_id     TEXT    NOT NULL,
    title           TEXT    NOT NULL,
    opened_at       TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    closed_at       TEXT,
    duration_s      REAL,
    idempotency_key TEXT    NOT NULL UNIQUE,
    revision        INTEGER NOT NULL CHECK (revision >= 1),
    body_json       TEXT    NOT NULL,
    event_id        INTEGER REFERENCES events (id) ON DELETE SET NULL
);
CREATE INDEX tickets_opened ON tickets (opened_at);
CREATE INDEX tickets_site_opened ON tickets (site_id, opened_at);
CREATE INDEX tickets_customer_opened ON tickets (customer_id, opened_at);
CREATE INDEX tickets_open ON tickets (state) WHERE state = 'open';
CREATE INDEX tickets_event ON tickets (event_id) WHERE event_id IS NOT NULL;

-- One row per ticket revision per endpoint: everything needed to send it again after a restart.
-- No ON DELETE CASCADE from tickets: deleting a ticket that still has deliveries fails, which is
-- the last line of defence for "never drop an undelivered message".
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    ticket_id       INTEGER NOT NULL REFERENCES tickets (id),
    revision        INTEGER NOT NULL,
    channel         TEXT    NOT NULL CHECK (channel IN ('webhook', 'email', 'sms')),
    endpoint        TEXT    NOT NULL,
    payload_json    TEXT    NOT NULL,
    idempotency_key TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    next_attempt_at TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    last_error      TEXT,
    delivered_at    TEXT,
    UNIQUE (ticket_id, revision, endpoint)
);
-- the worker's two questions: what is due, and is there an earlier revision still pending
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX outbox_queue ON outbox (ticket_id, endpoint, revision) WHERE state = 'pending';
CREATE INDEX outbox_delivered ON outbox (delivered_at) WHERE state = 'delivered';
CREATE INDEX outbox_dead ON outbox (created_at) WHERE state = 'dead';

CREATE TABLE delivery_attempts (
    id         INTEGER PRIMARY KEY,
    outbox_id  INTEGER NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    at         TEXT    NOT NULL,
    ok         INTEGER NOT NULL CHECK (ok IN (0, 1)),
    detail     TEXT    NOT NULL,
    latency_ms INTEGER NOT NULL
);
CREATE INDEX delivery_attempts_outbox ON delivery_attempts (outbox_id, at);
CREATE INDEX delivery_attempts_at ON delivery_attempts (at);
"#,
    // 2: what reports need besides events and tickets (issue 12): the site as configured, the
    // IEC 61000-4-30 10-minute aggregates per channel, 10-second frequency, and the meters'
    // registers and demand per 15 minutes. Keyed by (source, …, start): an interval written
    // again (a restart inside it) is merged into its row instead of doubling it.
    r#"
CREATE TABLE site (
    id         TEXT PRIMARY KEY,
    -- crate::store::SiteRecord as JSON: what the report's header and settings need
    json       TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE aggregates (
    source     TEXT    NOT NULL,
    channel    TEXT    NOT NULL,
    start_utc  TEXT    NOT NULL,
    seconds    REAL    NOT NULL,
    udin_v     REAL    NOT NULL,
    mean_v     REAL    NOT NULL,
    min_v      REAL    NOT NULL,
    max_v      REAL    NOT NULL,
    windows    INTEGER NOT NULL,
    flagged    INTEGER NOT NULL CHECK (flagged IN (0, 1)),
    PRIMARY KEY (source, channel, start_utc)
) WITHOUT ROWID;
CREATE INDEX aggregates_start ON aggregates (start_utc);

CREATE TABLE frequency (
    source     TEXT    NOT NULL,
    start_utc  TEXT    NOT NULL,
    seconds    REAL    NOT NULL,
    nominal_hz REAL    NOT NULL,
    mean_hz    REAL    NOT NULL,
    min_hz     REAL    NOT NULL,
    max_hz     REAL    NOT NULL,
    windows    INTEGER NOT NULL,
    flagged    INTEGER NOT NULL CHECK (flagged IN (0, 1)),
    PRIMARY KEY (source, start_utc)
) WITHOUT ROWID;
CREATE INDEX frequency_start ON frequency (start_utc);

CREATE TABLE meter_intervals (
    source      TEXT    NOT NULL,
    device      TEXT    NOT NULL,
    start_utc   TEXT    NOT NULL,
    seconds     REAL    NOT NULL,
    -- registers as last read inside the interval (kWh, kvarh), null when the meter has none
    import_kwh  REAL,
    export_kwh  REAL,
    import_kvarh REAL,
    -- mean and highest active power read inside the interval, kW
    demand_kw   REAL,
    max_kw      REAL,
    power_factor REAL,
    -- highest voltage THD of any phase, %
    thd_u_pct   REAL,
    samples     INTEGER NOT NULL,
    PRIMARY KEY (source, device, start_utc)
) WITHOUT ROWID;
CREATE INDEX meter_intervals_start ON meter_intervals (start_utc);
"#,
    // 3: the 10-second frequency values rolled up per source and hour, so a year's report
    // reads 8 760 rows per node instead of 3 153 600. Kept by `save_frequency` (each batch
    // recomputes the hours it touched from the 10-s rows, so a re-written value never counts
    // twice). The counts are the report's judgements: unflagged values within GB/T 15945's
    // ±0.2 Hz and within EN 50160's ±1 % of nominal.
    r#"
CREATE TABLE frequency_hours (
    source      TEXT    NOT NULL,
    hour_utc    TEXT    NOT NULL,
    nominal_hz  REAL    NOT NULL,
    intervals   INTEGER NOT NULL,
    flagged     INTEGER NOT NULL,
    gbt15945_in INTEGER NOT NULL,
    en50160_in  INTEGER NOT NULL,
    min_hz      REAL,
    max_hz      REAL,
    PRIMARY KEY (source, hour_utc)
) WITHOUT ROWID;
-- a store written by migration 2 alone: roll up what it already holds
INSERT INTO frequency_hours
SELECT source, substr(start_utc, 1, 13) || ':00:00.000000Z', MAX(nominal_hz), COUNT(*),
       SUM(flagged),
       SUM(flagged = 0 AND abs(mean_hz - nominal_hz) <= 0.2 + 1e-9),
       SUM(flagged = 0 AND abs(mean_hz - nominal_hz) <= nominal_hz * 0.01 + 1e-9),
       MIN(CASE WHEN flagged = 0 THEN mean_hz END), MAX(CASE WHEN flagged = 0 THEN mean_hz END)
FROM frequency GROUP BY source, substr(start_utc, 1, 13);
"#,
    // 4: commissioning records (`kare commission`): the signed record exactly as signed, so a
    // stored record verifies byte for byte.
    r#"
CREATE TABLE commissioning (
    id          INTEGER PRIMARY KEY,
    at_utc      TEXT    NOT NULL,
    crew        TEXT    NOT NULL,
    verdict     TEXT    NOT NULL,
    record      TEXT    NOT NULL
);
CREATE INDEX commissioning_at ON commissioning (at_utc);
"#,
];

/// The version a fully migrated file has.
pub fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// The file's `PRAGMA user_version`.
pub fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Applies migrations until the file is at version `target` (each in its own transaction).
/// Returns the version found before. Does nothing to a file already at or past `target`.
pub fn migrate_to(conn: &mut Connection, target: i64) -> rusqlite::Result<i64> {
    let found = version(conn)?;
    for v in found..target.min(latest_version()) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(MIGRATIONS[v as usize])?;
        // PRAGMA takes no bound parameters; v is an integer we computed.
        tx.execute_batch(&format!("PRAGMA user_version = {}", v + 1))?;
        tx.commit()?;
    }
    Ok(found)
}

/// The schema as SQLite holds it: `(type, name, sql)` of every table and index, sorted. Two
/// files with equal dumps have the same tables, columns, constraints and indexes.
pub fn dump(conn: &Connection) -> rusqlite::Result<Vec<(String, String, String)>> {
    let mut st = conn.prepare(
        "SELECT type, name, COALESCE(sql, '') FROM sqlite_schema \
         WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
    )?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}
