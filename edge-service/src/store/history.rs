//! The reports' side of the store: the site record, the recorded history (10-minute aggregates,
//! 10-second frequency, 15-minute meter intervals), the range reads a report makes, and the
//! event list's pages. Both fronts: [`Store`] (sync, one transaction per write) and
//! [`StoreHandle`] (async; writes batched by the writer thread, reads on the blocking pool).
//!
//! Range reads take a half-open period `[from, to)` and return what *overlaps* it, oldest
//! first: an event that began before `from` and ended inside it belongs to the period, and so
//! does a 10-minute interval that began before `from`.

use super::model::*;
use super::{ops, Store, StoreError, StoreHandle};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

impl Store {
    /// Saves the site as configured (replacing the record with the same id); the newest saved
    /// is what [`Self::site`] returns.
    pub fn save_site(&mut self, site: &SiteRecord) -> Result<(), StoreError> {
        self.write("saving the site", |c, p| {
            ops::save_site(c, p, Utc::now(), site)
        })
    }

    /// The site record saved last, if any.
    pub fn site(&self) -> Result<Option<SiteRecord>, StoreError> {
        ops::site(self.connection(), self.path())
    }

    /// Writes 10-minute aggregates; a row with the same source, channel and start is replaced.
    pub fn save_aggregates(&mut self, rows: &[AggregateRow]) -> Result<(), StoreError> {
        self.write("saving 10-minute aggregates", |c, p| {
            ops::save_aggregates(c, p, rows)
        })
    }

    /// Writes 10-second frequency values (replacing same source and start).
    pub fn save_frequency(&mut self, rows: &[FrequencyRow]) -> Result<(), StoreError> {
        self.write("saving 10-second frequency", |c, p| {
            ops::save_frequency(c, p, rows)
        })
    }

    /// Writes meter intervals (replacing same source, device and start). A value that is not a
    /// finite number is stored as not read.
    pub fn save_meter_intervals(&mut self, rows: &[MeterIntervalRow]) -> Result<(), StoreError> {
        self.write("saving meter intervals", |c, p| {
            ops::save_meter_intervals(c, p, rows)
        })
    }

    /// Events overlapping `[from, to)`: started before `to`, and ended after `from` or still
    /// open. Oldest first (by start, then id).
    pub fn events_overlapping(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<EventRow>, StoreError> {
        ops::events_overlapping(self.connection(), self.path(), from, to)
    }

    /// Tickets overlapping `[from, to)`: opened before `to`, and closed at or after `from` or
    /// still open. Oldest first (by opening, then id).
    pub fn tickets_overlapping(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<TicketRow>, StoreError> {
        ops::tickets_overlapping(self.connection(), self.path(), from, to)
    }

    /// When the first delivery of any revision of this ticket was accepted by its endpoint
    /// (the desk was told); `None` when none has been yet.
    pub fn first_delivery(&self, ticket_id: i64) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self.first_deliveries(&[ticket_id])?.remove(&ticket_id))
    }

    /// [`Self::first_delivery`] of many tickets at once; tickets never delivered are absent.
    pub fn first_deliveries(
        &self,
        ticket_ids: &[i64],
    ) -> Result<HashMap<i64, DateTime<Utc>>, StoreError> {
        ops::first_deliveries(self.connection(), self.path(), ticket_ids)
    }

    /// 10-minute aggregates overlapping `[from, to)`, oldest first (then by source, channel).
    pub fn aggregates_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AggregateRow>, StoreError> {
        let mut out = Vec::new();
        self.for_each_aggregate(from, to, |a| out.push(a))?;
        Ok(out)
    }

    /// As [`Self::aggregates_between`], handing each row to `each` instead of collecting them.
    pub fn for_each_aggregate(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        each: impl FnMut(AggregateRow),
    ) -> Result<(), StoreError> {
        ops::for_each_aggregate(self.connection(), self.path(), from, to, each)
    }

    /// 10-second frequency values overlapping `[from, to)`, oldest first (then by source).
    pub fn frequency_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<FrequencyRow>, StoreError> {
        let mut out = Vec::new();
        self.for_each_frequency(from, to, |f| out.push(f))?;
        Ok(out)
    }

    /// As [`Self::frequency_between`], handing each row to `each` (a year is three million
    /// rows: a report folds them rather than holding them).
    pub fn for_each_frequency(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        each: impl FnMut(FrequencyRow),
    ) -> Result<(), StoreError> {
        ops::for_each_frequency(self.connection(), self.path(), from, to, each)
    }

    /// Meter intervals overlapping `[from, to)`, oldest first (then by source, device).
    pub fn meter_intervals_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<MeterIntervalRow>, StoreError> {
        let mut out = Vec::new();
        self.for_each_meter_interval(from, to, |m| out.push(m))?;
        Ok(out)
    }

    /// As [`Self::meter_intervals_between`], handing each row to `each`.
    pub fn for_each_meter_interval(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        each: impl FnMut(MeterIntervalRow),
    ) -> Result<(), StoreError> {
        ops::for_each_meter_interval(self.connection(), self.path(), from, to, each)
    }

    /// One page of the event list: see [`EventFilter`]. Newest first.
    pub fn events_page(&self, filter: &EventFilter) -> Result<Vec<EventRow>, StoreError> {
        ops::events_page(self.connection(), self.path(), filter)
    }
}

impl StoreHandle {
    /// Saves the site record (see [`Store::save_site`]) once committed.
    pub async fn save_site(&self, site: SiteRecord) -> Result<(), StoreError> {
        self.write(false, move |c, p| ops::save_site(c, p, Utc::now(), &site))
            .await
    }

    /// The site record saved last.
    pub async fn site(&self) -> Result<Option<SiteRecord>, StoreError> {
        self.read(|s| s.site()).await
    }

    /// Writes 10-minute aggregates (upserts), in the writer's next batch.
    pub async fn save_aggregates(&self, rows: Vec<AggregateRow>) -> Result<(), StoreError> {
        self.write(false, move |c, p| ops::save_aggregates(c, p, &rows))
            .await
    }

    /// Writes 10-second frequency values (upserts).
    pub async fn save_frequency(&self, rows: Vec<FrequencyRow>) -> Result<(), StoreError> {
        self.write(false, move |c, p| ops::save_frequency(c, p, &rows))
            .await
    }

    /// Writes meter intervals (upserts).
    pub async fn save_meter_intervals(
        &self,
        rows: Vec<MeterIntervalRow>,
    ) -> Result<(), StoreError> {
        self.write(false, move |c, p| ops::save_meter_intervals(c, p, &rows))
            .await
    }

    /// See [`Store::events_overlapping`].
    pub async fn events_overlapping(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<EventRow>, StoreError> {
        self.read(move |s| s.events_overlapping(from, to)).await
    }

    /// See [`Store::tickets_overlapping`].
    pub async fn tickets_overlapping(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<TicketRow>, StoreError> {
        self.read(move |s| s.tickets_overlapping(from, to)).await
    }

    /// See [`Store::first_deliveries`].
    pub async fn first_deliveries(
        &self,
        ticket_ids: Vec<i64>,
    ) -> Result<HashMap<i64, DateTime<Utc>>, StoreError> {
        self.read(move |s| s.first_deliveries(&ticket_ids)).await
    }

    /// See [`Store::aggregates_between`].
    pub async fn aggregates_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AggregateRow>, StoreError> {
        self.read(move |s| s.aggregates_between(from, to)).await
    }

    /// See [`Store::frequency_between`].
    pub async fn frequency_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<FrequencyRow>, StoreError> {
        self.read(move |s| s.frequency_between(from, to)).await
    }

    /// See [`Store::meter_intervals_between`].
    pub async fn meter_intervals_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<MeterIntervalRow>, StoreError> {
        self.read(move |s| s.meter_intervals_between(from, to))
            .await
    }

    /// See [`Store::events_page`].
    pub async fn events_page(&self, filter: EventFilter) -> Result<Vec<EventRow>, StoreError> {
        self.read(move |s| s.events_page(&filter)).await
    }

    /// Runs `f` with the reading connection on the blocking pool: for a caller that needs
    /// several reads of one period (a report) without a round trip per read.
    pub async fn with_reader<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.read(f).await
    }
}
