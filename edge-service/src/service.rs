//! The running service: sources feed the event log; the web API and the console read it.
//!
//! Sources run as tokio tasks and talk to the service through one bounded channel
//! ([`SourceMessage`]). The event log is in memory for now; the durable SQLite store of the
//! next issue takes its place behind the same methods.

use crate::events::{event_json, round, ReportedEvent};
use crate::sources::pqlink::{
    self, PqlinkSourceConfig, Reading, RmsProfile, SourceMessage, StreamOutput, StreamStats,
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

/// What an event in the log is about.
#[derive(Clone, Debug, PartialEq)]
pub enum EventBody {
    /// A dip, swell or interruption on a source's channels.
    Voltage(ReportedEvent),
    /// A source stopped being heard: the sensor, its cable or its port, not the supply.
    SensorLost {
        /// Last time the source was heard.
        start: DateTime<Utc>,
        /// When it was heard again.
        end: Option<DateTime<Utc>>,
        /// Why it was declared lost.
        reason: String,
    },
}

/// One event in the log.
#[derive(Clone, Debug, PartialEq)]
pub struct LoggedEvent {
    /// Service-wide id, from 1.
    pub id: u64,
    /// Source name.
    pub source: String,
    /// What happened.
    pub body: EventBody,
    /// The Urms(1/2) records around a voltage event, once complete (shortly after its end).
    pub profile: Option<Arc<RmsProfile>>,
}

impl LoggedEvent {
    /// Whether the event is still in progress.
    pub fn is_open(&self) -> bool {
        match &self.body {
            EventBody::Voltage(e) => e.duration_s.is_none(),
            EventBody::SensorLost { end, .. } => end.is_none(),
        }
    }

    /// The event as the API shows it: `kare replay`'s fields plus `id`, `source` and `open`.
    pub fn to_json(&self) -> Value {
        let mut v = match &self.body {
            EventBody::Voltage(e) => event_json(e),
            EventBody::SensorLost { start, end, reason } => json!({
                "kind": "sensor_lost",
                "start": start.to_rfc3339_opts(SecondsFormat::Micros, true),
                "offset_s": null,
                "duration_s": end.map(|e| round((e - *start).num_microseconds().unwrap_or(0) as f64 / 1e6, 6)),
                "extreme_pct": null,
                "worst_channel": null,
                "itic": null,
                "semi_f47": null,
                "reason": reason,
            }),
        };
        v["id"] = json!(self.id);
        v["source"] = json!(self.source);
        v["open"] = json!(self.is_open());
        v
    }

    /// The event with its RMS profile (`null` until it is complete).
    pub fn to_json_with_profile(&self) -> Value {
        let mut v = self.to_json();
        v["rms_profile"] = json!(self.profile.as_deref());
        v
    }
}

/// The events seen since start, in order, with open events updated in place.
#[derive(Debug, Default)]
pub struct EventLog {
    inner: Mutex<LogInner>,
}

#[derive(Debug, Default)]
struct LogInner {
    events: Vec<LoggedEvent>,
    /// (source, detector id) → index of the open voltage event.
    open_voltage: HashMap<(String, u32), usize>,
    /// source → index of its open sensor-lost event.
    open_lost: HashMap<String, usize>,
    /// (source, detector id) → index of the latest voltage event with that id, for its profile.
    by_core: HashMap<(String, u32), usize>,
}

impl LogInner {
    fn push_voltage(
        &mut self,
        source: &str,
        core_id: u32,
        e: ReportedEvent,
    ) -> (usize, LoggedEvent) {
        let ev = LoggedEvent {
            id: self.events.len() as u64 + 1,
            source: source.to_string(),
            body: EventBody::Voltage(e),
            profile: None,
        };
        let idx = self.events.len();
        self.events.push(ev.clone());
        self.by_core.insert((source.to_string(), core_id), idx);
        (idx, ev)
    }
}

impl EventLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, LogInner> {
        // A panic elsewhere must not take the log with it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a new voltage event; returns it as logged.
    pub fn voltage_started(&self, source: &str, core_id: u32, e: ReportedEvent) -> LoggedEvent {
        let mut g = self.lock();
        let (idx, ev) = g.push_voltage(source, core_id, e);
        g.open_voltage.insert((source.to_string(), core_id), idx);
        ev
    }

    /// Closes a voltage event (or records it whole, if its start was never seen).
    pub fn voltage_ended(&self, source: &str, core_id: u32, e: ReportedEvent) -> LoggedEvent {
        let mut g = self.lock();
        match g.open_voltage.remove(&(source.to_string(), core_id)) {
            Some(idx) => {
                g.events[idx].body = EventBody::Voltage(e);
                g.events[idx].clone()
            }
            None => g.push_voltage(source, core_id, e).1,
        }
    }

    /// Attaches a completed RMS profile to its voltage event.
    pub fn attach_profile(
        &self,
        source: &str,
        core_id: u32,
        profile: RmsProfile,
    ) -> Option<LoggedEvent> {
        let mut g = self.lock();
        let idx = *g.by_core.get(&(source.to_string(), core_id))?;
        g.events[idx].profile = Some(Arc::new(profile));
        Some(g.events[idx].clone())
    }

    /// One event by id.
    pub fn get(&self, id: u64) -> Option<LoggedEvent> {
        let g = self.lock();
        g.events.get((id as usize).checked_sub(1)?).cloned()
    }

    /// Records that a source is no longer heard (once until it is back).
    pub fn sensor_lost(
        &self,
        source: &str,
        start: DateTime<Utc>,
        reason: String,
    ) -> Option<LoggedEvent> {
        let mut g = self.lock();
        if g.open_lost.contains_key(source) {
            return None;
        }
        let ev = LoggedEvent {
            id: g.events.len() as u64 + 1,
            source: source.to_string(),
            body: EventBody::SensorLost {
                start,
                end: None,
                reason,
            },
            profile: None,
        };
        let idx = g.events.len();
        g.events.push(ev.clone());
        g.open_lost.insert(source.to_string(), idx);
        Some(ev)
    }

    /// Closes the source's sensor-lost event.
    pub fn sensor_back(&self, source: &str, at: DateTime<Utc>) -> Option<LoggedEvent> {
        let mut g = self.lock();
        let idx = g.open_lost.remove(source)?;
        if let EventBody::SensorLost { end, .. } = &mut g.events[idx].body {
            *end = Some(at);
        }
        Some(g.events[idx].clone())
    }

    /// Every event so far, oldest first.
    pub fn all(&self) -> Vec<LoggedEvent> {
        self.lock().events.clone()
    }
}

/// What the status endpoint shows of one source.
#[derive(Clone, Debug, Default)]
pub struct SourceStatus {
    /// Node id from its hello.
    pub node_id: Option<u32>,
    /// Channel names.
    pub channels: Vec<String>,
    /// Sample rate.
    pub sample_rate_hz: Option<u32>,
    /// Nominal frequency.
    pub nominal_hz: Option<u8>,
    /// Whether the source is heard.
    pub connected: bool,
    /// Counters.
    pub stats: StreamStats,
    /// Port path.
    pub port: String,
}

/// The service's configuration.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// Sensor nodes on serial ports.
    pub nodes: Vec<PqlinkSourceConfig>,
}

/// A running service.
pub struct Service {
    /// Events seen.
    pub log: Arc<EventLog>,
    /// Live readings (a lagging subscriber misses some).
    pub readings: broadcast::Sender<Reading>,
    /// Every new or updated event, as logged.
    pub updates: broadcast::Sender<LoggedEvent>,
    /// Per-source status.
    pub status: Arc<Mutex<BTreeMap<String, SourceStatus>>>,
    /// When the service started.
    pub started: DateTime<Utc>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Service {
    /// Starts every source and the consumer that logs their events.
    pub fn start(cfg: ServiceConfig) -> Service {
        let (tx, rx) = mpsc::channel(1024);
        let (readings, _) = broadcast::channel(1024);
        let (updates, _) = broadcast::channel(1024);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let log = Arc::new(EventLog::default());
        let status = Arc::new(Mutex::new(BTreeMap::new()));
        let mut tasks = Vec::new();
        for node in cfg.nodes {
            status.lock().unwrap().insert(
                node.name.clone(),
                SourceStatus {
                    port: node.port.clone(),
                    ..Default::default()
                },
            );
            tasks.push(tokio::spawn(pqlink::run(
                node,
                tx.clone(),
                readings.clone(),
                shutdown_rx.clone(),
            )));
        }
        drop(tx);
        tasks.push(tokio::spawn(consume(
            rx,
            log.clone(),
            updates.clone(),
            status.clone(),
        )));
        Service {
            log,
            readings,
            updates,
            status,
            started: Utc::now(),
            shutdown,
            tasks,
        }
    }

    /// Stops the sources and waits for every task to finish.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

async fn consume(
    mut rx: mpsc::Receiver<SourceMessage>,
    log: Arc<EventLog>,
    updates: broadcast::Sender<LoggedEvent>,
    status: Arc<Mutex<BTreeMap<String, SourceStatus>>>,
) {
    while let Some(msg) = rx.recv().await {
        let logged = match msg {
            SourceMessage::Stream(source, StreamOutput::Started { core_id, event }) => {
                Some(log.voltage_started(&source, core_id, event))
            }
            SourceMessage::Stream(source, StreamOutput::Ended { core_id, event }) => {
                Some(log.voltage_ended(&source, core_id, event))
            }
            SourceMessage::Stream(source, StreamOutput::Hello(h)) => {
                let mut st = status.lock().unwrap();
                let s = st.entry(source.to_string()).or_default();
                s.node_id = Some(h.node_id);
                s.channels = h.channels.iter().map(|c| c.name.to_string()).collect();
                s.sample_rate_hz = Some(h.sample_rate_hz);
                s.nominal_hz = Some(h.nominal_hz);
                s.connected = true;
                None
            }
            SourceMessage::Stream(_, StreamOutput::Reading(_)) => None,
            SourceMessage::Stream(source, StreamOutput::Profile { core_id, profile }) => {
                // Not an update worth announcing: the event itself has not changed.
                log.attach_profile(&source, core_id, profile);
                None
            }
            SourceMessage::SensorLost {
                source,
                since,
                reason,
            } => {
                if let Some(s) = status.lock().unwrap().get_mut(&*source) {
                    s.connected = false;
                }
                log.sensor_lost(&source, since, reason)
            }
            SourceMessage::SensorBack { source, at } => {
                if let Some(s) = status.lock().unwrap().get_mut(&*source) {
                    s.connected = true;
                }
                log.sensor_back(&source, at)
            }
            SourceMessage::Stats(source, stats) => {
                if let Some(s) = status.lock().unwrap().get_mut(&*source) {
                    s.stats = stats;
                    s.connected = true;
                }
                None
            }
        };
        if let Some(ev) = logged {
            let _ = updates.send(ev);
        }
    }
}
