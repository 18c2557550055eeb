//! The service's side of the sink: what it hands over, and from where.
//!
//! - Events, their RMS profiles, tickets, meter readings and meter events are handed over by
//!   the service's consumer itself ([`InfluxFeed`]), right after they are stored and at the
//!   same point where the console and the API hear of them. Not through a broadcast: a
//!   lagging broadcast subscriber misses messages, and events and tickets must not be missed.
//!   Handing over never waits ([`InfluxSender::send`]).
//! - The half-cycle stream (100–480 values per second per source) is aggregated to seconds in a
//!   task of its own ([`aggregate_readings`]) that follows the readings broadcast: the
//!   consumer's latency (frame → event → ticket) must not pay for it. A lag there costs half
//!   cycles in a second's aggregate (its `count` says so, and `lagged_readings` counts them),
//!   never an event.

use super::channel::{InfluxSender, InfluxStats};
use super::producers::{
    points_from_event, points_from_health, points_from_interval, points_from_meter_event,
    points_from_meter_readings, points_from_ticket, DemandTracker, SecondAggregator,
};
use crate::actions::tickets::TicketRecord;
use crate::pipeline::event_log::{EventBody, EventLog, LoggedEvent};
use crate::pipeline::health::Health;
use crate::sinks::Sink;
use crate::sources::meters::readings::{MeterEvent, MeterReading};
use crate::sources::pqlink::Reading;
use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// What the consumer hands the sink. Cheap: converting and queueing, never waiting.
#[derive(Debug)]
pub struct InfluxFeed {
    tx: InfluxSender,
    /// Recent demand, for the energy not supplied on a closed repair ticket.
    demand: Mutex<DemandTracker>,
    /// The writer's counters, for the points held (health's buffer depth).
    stats: Arc<Mutex<InfluxStats>>,
}

impl InfluxFeed {
    /// A feed into `tx`.
    pub fn new(tx: InfluxSender, stats: Arc<Mutex<InfluxStats>>) -> Self {
        InfluxFeed {
            tx,
            demand: Mutex::new(DemandTracker::default()),
            stats,
        }
    }

    fn observe_demand(&self, rs: &[MeterReading]) {
        let mut d = self.demand.lock().unwrap_or_else(|p| p.into_inner());
        for r in rs {
            d.observe(r);
        }
    }
}

impl Sink for InfluxFeed {
    /// An event, new or updated (its end, its profile): the same points are overwritten.
    fn event(&self, ev: &LoggedEvent) {
        self.tx.send_all(points_from_event(ev));
    }

    /// A ticket revision (the ticket's one point; the last revision wins).
    fn ticket(&self, t: &TicketRecord) {
        let demand = self
            .demand
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .before(t.op.opened_at);
        self.tx.send(points_from_ticket(t, demand));
    }

    /// One poll's readings: `meter`, one point per device, stamped at the poll's first value.
    fn meter_readings(&self, rs: &[MeterReading]) {
        self.observe_demand(rs);
        // A DL/T 645 meter is read one identifier per request, each stamped as it arrives: as
        // many points as values, each carrying the whole tag set, would triple what the uplink
        // carries.
        let mut first: HashMap<(&str, &str), DateTime<Utc>> = HashMap::new();
        for r in rs {
            let t = first.entry((&r.source, &r.device)).or_insert(r.at);
            *t = (*t).min(r.at);
        }
        let poll: Vec<MeterReading> = rs
            .iter()
            .map(|r| MeterReading {
                at: first[&(&*r.source, &*r.device)],
                ..r.clone()
            })
            .collect();
        self.tx.send_all(points_from_meter_readings(&poll));
    }

    /// Interval records (a load profile): `meter_interval`, one point per interval, kept longer
    /// in the backlog.
    fn interval(&self, rs: &[MeterReading]) {
        self.observe_demand(rs);
        self.tx.send_all(points_from_interval(rs));
    }

    /// A meter's own event (offline, online, a power-down it recorded).
    fn meter_event(&self, e: &MeterEvent) {
        self.tx.send(points_from_meter_event(e));
    }

    /// The appliance's health report.
    fn health(&self, h: &Health) {
        self.tx.send(points_from_health(h));
    }

    fn buffered(&self) -> u64 {
        let s = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        s.memory_points + s.backlog_points
    }
}

/// Voltage events in progress, by source: their seconds are flagged (IEC 61000-4-30).
#[derive(Debug, Default)]
struct OpenEvents(HashMap<String, BTreeSet<u64>>);

impl OpenEvents {
    /// Notes an event update; returns the source and whether it now has an event in progress.
    fn update(&mut self, ev: &LoggedEvent) -> Option<(String, bool)> {
        let EventBody::Voltage(v) = &ev.body else {
            return None;
        };
        let set = self.0.entry(ev.source.clone()).or_default();
        if v.duration_s.is_none() {
            set.insert(ev.id);
        } else {
            set.remove(&ev.id);
        }
        Some((ev.source.clone(), !set.is_empty()))
    }
}

/// Follows the half-cycle readings and sends 1-second aggregates (`urms`, `frequency`) until
/// `shutdown`, then sends the seconds in progress. `udin`: each source's declared voltage (for
/// the `%` fields). Event updates flag the seconds they cover; when they lag, the flags are
/// taken again from the log.
pub async fn aggregate_readings(
    tx: InfluxSender,
    mut readings: broadcast::Receiver<Reading>,
    mut updates: broadcast::Receiver<LoggedEvent>,
    log: Arc<EventLog>,
    udin: Vec<(String, f64)>,
    stats: Arc<Mutex<InfluxStats>>,
    shutdown: CancellationToken,
) {
    use broadcast::error::RecvError;
    let mut agg = SecondAggregator::new();
    for (source, u) in &udin {
        agg.set_udin(source, *u);
    }
    let mut open = OpenEvents::default();
    let mut out = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut readings_open = true;
    while !shutdown.is_cancelled() {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            u = updates.recv() => match u {
                Ok(ev) => {
                    if let Some((source, active)) = open.update(&ev) {
                        agg.set_event_active(&source, active);
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    open = OpenEvents::default();
                    for ev in log.all() {
                        open.update(&ev);
                    }
                    for (source, ids) in &open.0 {
                        agg.set_event_active(source, !ids.is_empty());
                    }
                }
                Err(RecvError::Closed) => break,
            },
            r = readings.recv(), if readings_open => match r {
                Ok(r) => agg.push(&r, &mut out),
                Err(RecvError::Lagged(n)) => {
                    tracing::debug!("influx: {n} half-cycle readings missed (aggregator behind)");
                    stats.lock().unwrap_or_else(|p| p.into_inner()).lagged_readings += n;
                }
                Err(RecvError::Closed) => readings_open = false,
            },
            // A source that went quiet (sensor lost) still gets its last second written.
            _ = tick.tick() => agg.flush_before(Utc::now() - chrono::Duration::seconds(1), &mut out),
        }
        if !out.is_empty() {
            tx.send_all(out.drain(..));
        }
    }
    agg.finish(&mut out);
    tx.send_all(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::influx::{channel, Class};
    use crate::sources::meters::readings::Quantity;
    use chrono::TimeZone;

    fn reading(at: DateTime<Utc>, q: Quantity, v: f64) -> MeterReading {
        MeterReading {
            source: Arc::from("bus"),
            device: Arc::from("m1"),
            at,
            quantity: q,
            value: v,
        }
    }

    #[tokio::test]
    async fn a_poll_is_one_point_and_interval_records_are_interval_data() {
        let stats = Arc::new(Mutex::new(InfluxStats::default()));
        let (tx, mut rx) = channel(100, stats);
        let feed = InfluxFeed::new(tx, Arc::new(Mutex::new(InfluxStats::default())));
        let now = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        // One DL/T 645 poll: two values read a second apart.
        feed.meter_readings(&[
            reading(
                now - chrono::Duration::seconds(2),
                Quantity::VoltageA,
                230.0,
            ),
            reading(
                now - chrono::Duration::seconds(1),
                Quantity::VoltageB,
                231.0,
            ),
        ]);
        let fine = rx.readings_mut().try_recv().unwrap();
        assert_eq!(fine.measurement, "meter");
        assert_eq!(fine.fields.len(), 2, "{fine:?}");
        assert_eq!(fine.time, now - chrono::Duration::seconds(2));
        assert!(
            rx.readings_mut().try_recv().is_err(),
            "one point for the poll"
        );
        // Two load-profile records: one point each, never dropped as readings are.
        feed.interval(&[
            reading(
                now - chrono::Duration::minutes(30),
                Quantity::DemandKw,
                120.0,
            ),
            reading(
                now - chrono::Duration::minutes(15),
                Quantity::DemandKw,
                125.0,
            ),
        ]);
        for _ in 0..2 {
            let p = rx.others_mut().try_recv().unwrap();
            assert_eq!(p.measurement, "meter_interval");
            assert_eq!(p.class, Class::Interval);
        }
    }
}
