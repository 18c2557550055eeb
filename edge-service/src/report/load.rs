//! The report's inputs read from a store: the rows overlapping the period, the meter intervals
//! of [`super::energy::LEAD_IN`] before it (the first interval's energy is a difference), and the
//! frequency values folded as they are read (a year is three million of them).

use super::steady::FrequencyFold;
use super::{Period, ReportInputs};
use crate::store::{format_ts, Store, StoreError};

/// Reads what [`super::build`] needs for `period`.
pub fn load(store: &Store, period: &Period) -> Result<ReportInputs, StoreError> {
    let site = store.site()?;
    // Events from one momentary threshold before the period too: an operation there may begin
    // the reclosing sequence of one inside the period, which then is no momentary event of this
    // period (MAIFIe counts a sequence in the period of its first start). The sections judge
    // only what falls in the period.
    let momentary_max_s = site
        .as_ref()
        .map(|s| s.momentary_max_s)
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(crate::store::SiteRecord::default().momentary_max_s);
    let events_from = chrono::TimeDelta::try_milliseconds((momentary_max_s * 1000.0) as i64 + 1000)
        .and_then(|d| period.from.checked_sub_signed(d))
        .unwrap_or(period.from);
    let events = store.events_overlapping(events_from, period.to)?;
    let tickets = store.tickets_overlapping(period.from, period.to)?;
    let ids: Vec<i64> = tickets.iter().map(|t| t.id).collect();
    let first_deliveries = store.first_deliveries(&ids)?;
    let aggregates = store.aggregates_between(period.from, period.to)?;
    let frequency = frequency_fold(store, period)?;
    // Saturating: a period at the start of chrono's range has no lead-in to read.
    let lead_in = period
        .from
        .checked_sub_signed(super::energy::LEAD_IN)
        .unwrap_or(period.from);
    let meter_intervals = store.meter_intervals_between(lead_in, period.to)?;
    Ok(ReportInputs {
        site,
        events,
        tickets,
        first_deliveries,
        aggregates,
        frequency,
        meter_intervals,
    })
}

/// [`FrequencyFold`] of the values starting in the period, folded by SQLite: a year is three
/// million 10-s rows. Whole hours come from the hourly roll-up `frequency_hours` (kept by
/// `Store::save_frequency`: 8 760 rows a year per node); only the partial hours at the period's
/// edges (a period given to the second) are folded from the 10-s rows. The sums run per source
/// on each table's primary key `(source, time)`, a sequential range. The judgement is
/// [`FrequencyFold::add`]'s, written in SQL (the hand-worked test checks the two agree).
fn frequency_fold(store: &Store, period: &Period) -> Result<FrequencyFold, StoreError> {
    const NEXT_SOURCE: &str = "SELECT MIN(source) FROM frequency WHERE source > ?1";
    const RAW: &str = "SELECT COUNT(*), \
         COALESCE(SUM(flagged), 0), \
         COALESCE(SUM(flagged = 0 AND abs(mean_hz - nominal_hz) <= ?4), 0), \
         COALESCE(SUM(flagged = 0 AND abs(mean_hz - nominal_hz) <= nominal_hz * 0.01 + 1e-9), 0), \
         MIN(CASE WHEN flagged = 0 THEN mean_hz END), \
         MAX(CASE WHEN flagged = 0 THEN mean_hz END), \
         MAX(nominal_hz) \
         FROM frequency WHERE source = ?1 AND start_utc >= ?2 AND start_utc < ?3";
    const HOURS: &str = "SELECT COALESCE(SUM(intervals), 0), COALESCE(SUM(flagged), 0), \
         COALESCE(SUM(gbt15945_in), 0), COALESCE(SUM(en50160_in), 0), MIN(min_hz), MAX(max_hz), \
         MAX(nominal_hz) \
         FROM frequency_hours WHERE source = ?1 AND hour_utc >= ?2 AND hour_utc < ?3";
    let err = |e| StoreError::sqlite(store.path(), "folding 10-second frequency", e);
    let conn = store.connection();
    let row = |r: &rusqlite::Row| {
        Ok(FrequencyFold {
            intervals: r.get::<_, i64>(0)? as u32,
            flagged: r.get::<_, i64>(1)? as u32,
            gbt15945_in: r.get::<_, i64>(2)? as u32,
            en50160_in: r.get::<_, i64>(3)? as u32,
            min_hz: r.get(4)?,
            max_hz: r.get(5)?,
            nominal_hz: r.get::<_, Option<f64>>(6)?.filter(|f| *f > 0.0),
        })
    };
    // Whole hours inside the period, and the edges around them.
    let hour = chrono::TimeDelta::hours(1);
    let first_hour = crate::store::hour_start(
        period
            .from
            .checked_add_signed(hour - chrono::TimeDelta::nanoseconds(1))
            .unwrap_or(period.from),
    );
    let last_hour = crate::store::hour_start(period.to);
    let (raw, hours) = if first_hour < last_hour {
        (
            vec![(period.from, first_hour), (last_hour, period.to)],
            Some((first_hour, last_hour)),
        )
    } else {
        (vec![(period.from, period.to)], None)
    };
    let limit = super::steady::GBT15945_LIMIT_HZ + 1e-9;
    let mut fold = FrequencyFold::default();
    let mut source = String::new();
    // Each source in turn, by skipping along the key (a handful of nodes, never a scan).
    while let Some(next) = conn
        .query_row(NEXT_SOURCE, [&source], |r| r.get::<_, Option<String>>(0))
        .map_err(err)?
    {
        if let Some((a, b)) = hours {
            let part = conn
                .query_row(
                    HOURS,
                    rusqlite::params![next, format_ts(a), format_ts(b)],
                    row,
                )
                .map_err(err)?;
            fold.merge(&part);
        }
        for (a, b) in &raw {
            if a >= b {
                continue;
            }
            let part = conn
                .query_row(
                    RAW,
                    rusqlite::params![next, format_ts(*a), format_ts(*b), limit],
                    row,
                )
                .map_err(err)?;
            fold.merge(&part);
        }
        source = next;
    }
    Ok(fold)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{FrequencyRow, StoreConfig};
    use chrono::{TimeDelta, TimeZone, Utc};

    /// A period at chrono's first time (a parser that let one through) reads an empty store's
    /// nothing: the lead-in and the range reads' look-back saturate instead of panicking.
    #[test]
    fn a_period_at_the_first_representable_time_loads_without_overflow() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StoreConfig {
            path: dir.path().join("kare.db"),
            ..StoreConfig::default()
        };
        let store = Store::open(&cfg).unwrap();
        let period = Period {
            from: chrono::DateTime::<Utc>::MIN_UTC,
            to: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        };
        let inputs = load(&store, &period).unwrap();
        assert!(inputs.aggregates.is_empty() && inputs.meter_intervals.is_empty());
    }

    /// Six hours of 10-s values from two nodes (some off-nominal, some flagged), saved in
    /// batches as the history sink does; every period, whole hours or cut to the second, folds
    /// to the same figures through the hourly roll-up as from the 10-s rows one by one.
    #[test]
    fn frequency_from_the_hourly_rollup_equals_the_fold_of_every_value() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StoreConfig {
            path: dir.path().join("kare.db"),
            ..StoreConfig::default()
        };
        let mut store = Store::open(&cfg).unwrap();
        let t0 = Utc.with_ymd_and_hms(2026, 11, 3, 0, 0, 0).unwrap();
        let mut all = Vec::new();
        for source in ["node-a", "node-b"] {
            for i in 0..(6 * 360) {
                let mean_hz = 50.0 + ((i * 37 % 101) as f64 - 50.0) / 100.0; // 49.50 .. 50.50
                all.push(FrequencyRow {
                    source: source.into(),
                    start: t0 + TimeDelta::seconds(10 * i),
                    seconds: 10.0,
                    nominal_hz: 50.0,
                    mean_hz,
                    min_hz: mean_hz - 0.01,
                    max_hz: mean_hz + 0.01,
                    windows: 1000,
                    flagged: i % 17 == 0,
                });
            }
        }
        for batch in all.chunks(7) {
            store.save_frequency(batch).unwrap();
        }
        let periods = [
            (t0, t0 + TimeDelta::hours(6)),
            (
                t0 + TimeDelta::seconds(1234),
                t0 + TimeDelta::seconds(17_777),
            ),
            (t0 + TimeDelta::minutes(70), t0 + TimeDelta::minutes(110)),
            (t0 - TimeDelta::days(1), t0 + TimeDelta::days(1)),
            (t0 + TimeDelta::hours(2), t0 + TimeDelta::hours(3)),
        ];
        for (from, to) in periods {
            let period = Period { from, to };
            let mut want = FrequencyFold::default();
            for source in ["node-a", "node-b"] {
                let rows: Vec<FrequencyRow> =
                    all.iter().filter(|r| r.source == source).cloned().collect();
                want.merge(&FrequencyFold::of(&rows, &period));
            }
            assert_eq!(
                frequency_fold(&store, &period).unwrap(),
                want,
                "{from} – {to}"
            );
        }
    }
}
