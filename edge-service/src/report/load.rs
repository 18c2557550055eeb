//! The report's inputs read from a store: the rows overlapping the period, the meter intervals
//! of [`super::energy::LEAD_IN`] before it (the first interval's energy is a difference), and the
//! frequency values folded as they are read (a year is three million of them).

use super::steady::FrequencyFold;
use super::{Period, ReportInputs};
use crate::store::{Store, StoreError};

/// Reads what [`super::build`] needs for `period`.
pub fn load(store: &Store, period: &Period) -> Result<ReportInputs, StoreError> {
    let events = store.events_overlapping(period.from, period.to)?;
    let tickets = store.tickets_overlapping(period.from, period.to)?;
    let ids: Vec<i64> = tickets.iter().map(|t| t.id).collect();
    let first_deliveries = store.first_deliveries(&ids)?;
    let aggregates = store.aggregates_between(period.from, period.to)?;
    let mut frequency = FrequencyFold::default();
    store.for_each_frequency(period.from, period.to, |r| frequency.add(&r, period))?;
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
