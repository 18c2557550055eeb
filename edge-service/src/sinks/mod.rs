//! Sinks: where events, tickets, meter values and health go besides the store and the live API.
//!
//! A sink is a folder here that implements [`Sink`] (what the consumer hands over, never
//! waiting) and a `start` that returns a [`StartedSink`]. The service keeps every started sink in
//! one [`Sinks`] fan-out, so adding one (an MQTT uplink, say) is a folder and one line in
//! `pipeline/service.rs`. The InfluxDB sink feeds the utility's central time-series database,
//! from which Grafana draws the fleet, reliability and power-quality dashboards (`dashboards/`).

pub mod history;
pub mod influx;
pub mod interval;

use crate::actions::tickets::TicketRecord;
use crate::pipeline::event_log::{EventLog, LoggedEvent};
use crate::pipeline::health::Health;
use crate::sources::meters::readings::{MeterEvent, MeterReading};
use crate::sources::pqlink::Reading;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What the consumer hands a sink. Every call must return at once (queue, never wait): the
/// consumer is on the path from a frame to a repair ticket.
pub trait Sink: Send + Sync {
    /// An event, new or updated (its end, its profile).
    fn event(&self, ev: &LoggedEvent);
    /// A ticket revision, after it is stored.
    fn ticket(&self, t: &TicketRecord);
    /// One poll's readings of one meter.
    fn meter_readings(&self, rs: &[MeterReading]);
    /// Load-profile (interval) records read back from a meter: history, not the present.
    fn interval(&self, rs: &[MeterReading]);
    /// A meter went offline or came back, or reported a power-down.
    fn meter_event(&self, e: &MeterEvent);
    /// The appliance's health report.
    fn health(&self, h: &Health);
    /// Points (or messages) held inside the sink, not yet sent: part of the health report.
    fn buffered(&self) -> u64;
}

/// What a sink may follow besides what the consumer hands it.
pub struct SinkContext {
    /// The half-cycle readings (a lagging subscriber misses some, and is told).
    pub readings: broadcast::Sender<Reading>,
    /// Every event update as logged.
    pub updates: broadcast::Sender<LoggedEvent>,
    /// The event log, to catch up after a lag.
    pub log: Arc<EventLog>,
    /// Each sensor node's declared voltage, by source name.
    pub udin: Vec<(String, f64)>,
    /// The service's shutdown: side tasks stop with the sources.
    pub shutdown: CancellationToken,
}

/// A sink that runs: what the consumer calls, its side tasks, and its writer, which is stopped
/// last so that what the consumer handed over on the way out is sent or kept.
pub struct StartedSink {
    /// What the consumer calls.
    pub feed: Arc<dyn Sink>,
    /// Tasks that stop with the service's shutdown.
    pub tasks: Vec<JoinHandle<()>>,
    /// Stops the writer.
    pub stop: CancellationToken,
    /// The writer.
    pub writer: JoinHandle<()>,
    /// How often the sink wants the health report (`None`: never).
    pub health_every: Option<Duration>,
}

/// Every running sink, as one. Cheap to clone.
#[derive(Clone, Default)]
pub struct Sinks(Vec<Arc<dyn Sink>>);

impl Sinks {
    /// Adds a sink's feed.
    pub fn push(&mut self, feed: Arc<dyn Sink>) {
        self.0.push(feed);
    }

    /// Whether no sink runs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Points held in every sink, not yet sent.
    pub fn buffered(&self) -> u64 {
        self.0.iter().map(|s| s.buffered()).sum()
    }
}

impl Sink for Sinks {
    fn event(&self, ev: &LoggedEvent) {
        self.0.iter().for_each(|s| s.event(ev));
    }
    fn ticket(&self, t: &TicketRecord) {
        self.0.iter().for_each(|s| s.ticket(t));
    }
    fn meter_readings(&self, rs: &[MeterReading]) {
        self.0.iter().for_each(|s| s.meter_readings(rs));
    }
    fn interval(&self, rs: &[MeterReading]) {
        self.0.iter().for_each(|s| s.interval(rs));
    }
    fn meter_event(&self, e: &MeterEvent) {
        self.0.iter().for_each(|s| s.meter_event(e));
    }
    fn health(&self, h: &Health) {
        self.0.iter().for_each(|s| s.health(h));
    }
    fn buffered(&self) -> u64 {
        Sinks::buffered(self)
    }
}

impl std::fmt::Debug for Sinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sinks({})", self.0.len())
    }
}
