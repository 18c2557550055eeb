//! The report's inputs read from a store: the rows overlapping the period, the meter intervals
//! of [`super::energy::LEAD_IN`] before it (the first interval's energy is a difference), and the
//! frequency values folded as they are read (a year is three million of them).

use super::steady::FrequencyFold;
use super::{Period, ReportInputs};
use crate::store::{format_ts, Store, StoreError};

/// Reads what [`super::build`] needs for `period`.
pub fn load(store: &Store, period: &Period) -> Result<ReportInputs, StoreError> {
    let events = store.events_overlapping(period.from, period.to)?;
    let tickets = store.tickets_overlapping(period.from, period.to)?;
    let ids: Vec<i64> = tickets.iter().map(|t| t.id).collect();
    let first_deliveries = store.first_deliveries(&ids)?;
    let aggregates = store.aggregates_between(period.from, period.to)?;
    let frequency = frequency_fold(store, period)?;
    let meter_intervals =
        store.meter_intervals_between(period.from - super::energy::LEAD_IN, period.to)?;
    Ok(ReportInputs {
        site: store.site()?,
        events,
        tickets,
        first_deliveries,
        aggregates,
        frequency,
        meter_intervals,
    })
}

/// [`FrequencyFold`] of the values starting in the period, folded by SQLite: a year is three
/// million rows, and reading each into a `FrequencyRow` (a `String` and a parsed time stamp per
/// row) took seconds. The sums run per source on the table's primary key `(source, start_utc)`,
/// a sequential range; through the `start_utc` index every row would be a separate look-up in
/// the key's b-tree. The judgement is [`FrequencyFold::add`]'s, written in SQL (the hand-worked
/// test checks the two agree).
fn frequency_fold(store: &Store, period: &Period) -> Result<FrequencyFold, StoreError> {
    const NEXT_SOURCE: &str = "SELECT MIN(source) FROM frequency WHERE source > ?1";
    const SQL: &str = "SELECT COUNT(*), \
         COALESCE(SUM(flagged), 0), \
         COALESCE(SUM(flagged = 0 AND abs(mean_hz - nominal_hz) <= ?4), 0), \
         COALESCE(SUM(flagged = 0 AND abs(mean_hz - nominal_hz) <= nominal_hz * 0.01 + 1e-9), 0), \
         MIN(CASE WHEN flagged = 0 THEN mean_hz END), \
         MAX(CASE WHEN flagged = 0 THEN mean_hz END), \
         MAX(nominal_hz) \
         FROM frequency WHERE source = ?1 AND start_utc >= ?2 AND start_utc < ?3";
    let err = |e| StoreError::sqlite(store.path(), "folding 10-second frequency", e);
    let conn = store.connection();
    let mut fold = FrequencyFold::default();
    let mut source = String::new();
    // Each source in turn, by skipping along the key (a handful of nodes, never a scan).
    while let Some(next) = conn
        .query_row(NEXT_SOURCE, [&source], |r| r.get::<_, Option<String>>(0))
        .map_err(err)?
    {
        let part = conn
            .query_row(
                SQL,
                rusqlite::params![
                    next,
                    format_ts(period.from),
                    format_ts(period.to),
                    super::steady::GBT15945_LIMIT_HZ + 1e-9
                ],
                |r| {
                    Ok(FrequencyFold {
                        intervals: r.get::<_, i64>(0)? as u32,
                        flagged: r.get::<_, i64>(1)? as u32,
                        gbt15945_in: r.get::<_, i64>(2)? as u32,
                        en50160_in: r.get::<_, i64>(3)? as u32,
                        min_hz: r.get(4)?,
                        max_hz: r.get(5)?,
                        nominal_hz: r.get::<_, Option<f64>>(6)?.filter(|f| *f > 0.0),
                    })
                },
            )
            .map_err(err)?;
        fold.merge(&part);
        source = next;
    }
    Ok(fold)
}
