//! The running service: sources feed the event log; the web API and the console read it.
//!
//! Sources run as tokio tasks and talk to the service through one bounded channel
//! ([`SourceMessage`]). The event log is in memory for now; the durable SQLite store of the
//! next issue takes its place behind the same methods.

use crate::actions::rules::{RuleInput, RuleSettings, Rules, TicketOp};
use crate::actions::site::Site;
use crate::pipeline::coarse::{CoarseDetector, CoarseEvent, CoarseKind};
use crate::pipeline::events::{event_json, round, ReportedEvent};
use crate::sources::meters::readings::{MeterEvent, MeterMessage, Quantity};
use crate::sources::pqlink::{
    self, PqlinkSourceConfig, Reading, RmsProfile, SourceMessage, StreamOutput, StreamStats,
    Waveform,
};
use chrono::{DateTime, SecondsFormat, Utc};
use kare_firmware::detector::EventKind;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What an event in the log is about.
#[derive(Clone, Debug, PartialEq)]
pub enum EventBody {
    /// A dip, swell or interruption on a source's channels.
    Voltage(ReportedEvent),
    /// Outage or sustained under/overvoltage seen in polled meter voltages (coarse: its times
    /// are the polls that saw it).
    Coarse(CoarseEvent),
    /// A power-down the meter recorded itself, with the meter's own times.
    MeterPowerDown {
        /// Start by the meter's clock.
        start: DateTime<Utc>,
        /// End by the meter's clock.
        end: Option<DateTime<Utc>>,
    },
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
    /// The raw waveform the sensor node captured around the event's start, if any.
    pub waveform: Option<Arc<Waveform>>,
}

impl EventBody {
    /// The kind as the API, the store and InfluxDB name it.
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::Voltage(e) => e.kind.as_str(),
            EventBody::Coarse(c) => c.kind.as_str(),
            EventBody::MeterPowerDown { .. } => "meter_power_down",
            EventBody::SensorLost { .. } => "sensor_lost",
        }
    }

    /// Start, at full precision.
    pub fn start(&self) -> DateTime<Utc> {
        match self {
            EventBody::Voltage(e) => e.start,
            EventBody::Coarse(c) => c.start,
            EventBody::MeterPowerDown { start, .. } | EventBody::SensorLost { start, .. } => *start,
        }
    }

    /// End, once over.
    pub fn end(&self) -> Option<DateTime<Utc>> {
        match self {
            EventBody::Voltage(e) => e
                .duration_s
                .map(|d| e.start + chrono::Duration::nanoseconds((d * 1e9).round() as i64)),
            EventBody::Coarse(c) => c.end,
            EventBody::MeterPowerDown { end, .. } | EventBody::SensorLost { end, .. } => *end,
        }
    }
}

impl LoggedEvent {
    /// Whether the event is still in progress.
    pub fn is_open(&self) -> bool {
        match &self.body {
            EventBody::Voltage(e) => e.duration_s.is_none(),
            EventBody::Coarse(c) => c.end.is_none(),
            EventBody::MeterPowerDown { end, .. } => end.is_none(),
            EventBody::SensorLost { end, .. } => end.is_none(),
        }
    }

    /// The event as the API shows it: `kare replay`'s fields plus `id`, `source` and `open`.
    pub fn to_json(&self) -> Value {
        let mut v = match &self.body {
            EventBody::Voltage(e) => event_json(e),
            EventBody::Coarse(c) => json!({
                "kind": self.body.kind(),
                "start": c.start.to_rfc3339_opts(SecondsFormat::Millis, true),
                "offset_s": null,
                "duration_s": c.end.map(|e| round((e - c.start).num_milliseconds() as f64 / 1000.0, 3)),
                "extreme_pct": round(c.extreme_pct, 2),
                "worst_channel": null,
                "itic": null,
                "semi_f47": null,
                "device": &*c.device,
                "coarse": true,
                "resolution_s": c.resolution_s,
            }),
            EventBody::MeterPowerDown { start, end } => json!({
                "kind": self.body.kind(),
                "start": start.to_rfc3339_opts(SecondsFormat::Secs, true),
                "offset_s": null,
                "duration_s": end.map(|e| (e - *start).num_seconds() as f64),
                "extreme_pct": null,
                "worst_channel": null,
                "itic": null,
                "semi_f47": null,
                "clock": "the meter's",
            }),
            EventBody::SensorLost { start, end, reason } => json!({
                "kind": self.body.kind(),
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
    /// source/device/kind → index of the open coarse event.
    open_coarse: HashMap<String, usize>,
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
            waveform: None,
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

    /// Attaches a waveform capture to the source's voltage event whose start it covers (the
    /// node captures from shortly before a trigger).
    pub fn attach_waveform(&self, source: &str, w: Arc<Waveform>) -> Option<u64> {
        let mut g = self.lock();
        let secs =
            w.volts.first().map(|v| v.len()).unwrap_or(0) as f64 / w.sample_rate_hz.max(1) as f64;
        let end = w.start + chrono::Duration::milliseconds((secs * 1000.0) as i64);
        let ev = g.events.iter_mut().rev().find(|e| {
            e.source == source
                && e.waveform.is_none()
                && matches!(&e.body, EventBody::Voltage(v) if v.start >= w.start && v.start <= end)
        })?;
        ev.waveform = Some(w);
        Some(ev.id)
    }

    /// One event by id.
    pub fn get(&self, id: u64) -> Option<LoggedEvent> {
        let g = self.lock();
        g.events.get((id as usize).checked_sub(1)?).cloned()
    }

    /// Records or updates a coarse event (keyed by source, device and kind while it lasts).
    pub fn coarse(&self, c: CoarseEvent) -> LoggedEvent {
        let mut g = self.lock();
        let key = format!("{}/{}/{:?}", c.source, c.device, c.kind);
        let ended = c.end.is_some();
        let idx = match g.open_coarse.get(&key) {
            Some(&idx) => {
                g.events[idx].body = EventBody::Coarse(c);
                idx
            }
            None => {
                let idx = g.events.len();
                let ev = LoggedEvent {
                    id: idx as u64 + 1,
                    source: c.source.to_string(),
                    body: EventBody::Coarse(c),
                    profile: None,
                    waveform: None,
                };
                g.events.push(ev);
                g.open_coarse.insert(key.clone(), idx);
                idx
            }
        };
        if ended {
            g.open_coarse.remove(&key);
        }
        g.events[idx].clone()
    }

    /// Records a meter's own power-down record (each once: the same start is not logged twice).
    pub fn meter_power_down(
        &self,
        source: &str,
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
    ) -> Option<LoggedEvent> {
        let mut g = self.lock();
        let dup = g.events.iter_mut().find(|e| {
            e.source == source
                && matches!(e.body, EventBody::MeterPowerDown { start: s, .. } if s == start)
        });
        if let Some(e) = dup {
            if let EventBody::MeterPowerDown { end: old, .. } = &mut e.body {
                if old.is_none() && end.is_some() {
                    *old = end;
                    return Some(e.clone());
                }
            }
            return None;
        }
        let ev = LoggedEvent {
            id: g.events.len() as u64 + 1,
            source: source.to_string(),
            body: EventBody::MeterPowerDown { start, end },
            profile: None,
            waveform: None,
        };
        g.events.push(ev.clone());
        Some(ev)
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
            waveform: None,
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

/// One ticket as last changed, with its revision (1 for a new ticket, +1 per change).
#[derive(Clone, Debug, PartialEq)]
pub struct TicketRecord {
    /// The ticket's state after its latest change.
    pub op: TicketOp,
    /// Revision number.
    pub revision: u32,
    /// When kare last changed it.
    pub updated_at: DateTime<Utc>,
}

impl TicketRecord {
    /// The ticket as the API shows it.
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::to_value(&self.op).unwrap_or(Value::Null);
        v["revision"] = json!(self.revision);
        v["updated_at"] = json!(self.updated_at.to_rfc3339_opts(SecondsFormat::Millis, true));
        v
    }
}

/// The tickets raised since start, by key (in memory; the durable store takes over behind the
/// same calls).
#[derive(Debug, Default)]
pub struct TicketBook {
    inner: Mutex<BTreeMap<String, TicketRecord>>,
}

impl TicketBook {
    /// Applies one change; returns the ticket as recorded.
    pub fn apply(&self, op: TicketOp, now: DateTime<Utc>) -> TicketRecord {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let revision = g.get(&op.key).map(|r| r.revision + 1).unwrap_or(1);
        let rec = TicketRecord {
            op,
            revision,
            updated_at: now,
        };
        g.insert(rec.op.key.clone(), rec.clone());
        rec
    }

    /// Every ticket, oldest opened first.
    pub fn all(&self) -> Vec<TicketRecord> {
        let mut v: Vec<_> = self
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by_key(|r| (r.op.opened_at, r.op.key.clone()));
        v
    }
}

/// The service's configuration.
pub struct ServiceConfig {
    /// Sensor nodes on serial ports.
    pub nodes: Vec<PqlinkSourceConfig>,
    /// The key account watched.
    pub site: Site,
    /// Ticket rules.
    pub rules: RuleSettings,
    /// Meter bus tasks (Modbus, DL/T 645), each started with the channel it reports on.
    pub meter_buses: Vec<MeterBusTask>,
    /// The UPS inputs, if the appliance has them: a task that sends each change.
    pub ups: Option<UpsTask>,
    /// Buses whose polled phase voltages feed the coarse outage detector, with their thresholds.
    pub coarse: Vec<(String, kare_firmware::detector::Thresholds)>,
    /// The durable store; `None` keeps events and tickets in memory only (tests).
    pub store: Option<crate::store::StoreHandle>,
    /// Delivery endpoints and policy (needs the store: the outbox lives there).
    pub delivery: Option<crate::actions::delivery::DeliveryConfig>,
    /// Which endpoints get which kind of ticket.
    pub routes: crate::actions::desk::Routes,
    /// The InfluxDB sink, if configured, with its backlog path set
    /// ([`InfluxConfig::with_data_dir`](crate::sinks::influx::InfluxConfig::with_data_dir));
    /// site tags left empty are taken from `site`.
    pub influx: Option<crate::sinks::influx::InfluxConfig>,
}

/// Starts the UPS watch: given where to send each change, and the shutdown signal.
pub type UpsTask = Box<
    dyn FnOnce(
            mpsc::Sender<(crate::sources::ups::UpsSignal, DateTime<Utc>)>,
            CancellationToken,
        ) -> futures::future::BoxFuture<'static, ()>
        + Send,
>;

/// Starts one meter bus: given where to send what it reads, and the shutdown signal.
pub type MeterBusTask = Box<
    dyn FnOnce(
            mpsc::Sender<MeterMessage>,
            CancellationToken,
        ) -> futures::future::BoxFuture<'static, ()>
        + Send,
>;

impl ServiceConfig {
    /// A service for `site` with nothing attached yet (no sources, store, delivery or sink) and
    /// the default rules: fill in what a run needs with struct update syntax.
    pub fn new(site: Site) -> Self {
        ServiceConfig {
            nodes: Vec::new(),
            site,
            rules: RuleSettings::default(),
            meter_buses: Vec::new(),
            ups: None,
            coarse: Vec::new(),
            store: None,
            delivery: None,
            routes: Default::default(),
            influx: None,
        }
    }
}

impl std::fmt::Debug for ServiceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceConfig")
            .field("nodes", &self.nodes)
            .field("site", &self.site.id)
            .field("meter_buses", &self.meter_buses.len())
            .field("coarse", &self.coarse)
            .finish()
    }
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
    /// Tickets raised.
    pub tickets: Arc<TicketBook>,
    /// Every ticket change, as recorded.
    pub ticket_updates: broadcast::Sender<TicketRecord>,
    /// Meter buses: counters and latest values.
    pub meters: Arc<Mutex<BTreeMap<String, MeterBusStatus>>>,
    /// Live meter readings (a lagging subscriber misses some).
    pub meter_readings: broadcast::Sender<crate::sources::meters::readings::MeterReading>,
    /// When the service started.
    pub started: DateTime<Utc>,
    /// Fires when the UPS says its battery is low: the tickets have been updated, stop now.
    pub battery_low: Arc<tokio::sync::Notify>,
    /// The InfluxDB sink's counters, when it runs.
    pub influx: Option<Arc<Mutex<crate::sinks::influx::InfluxStats>>>,
    shutdown: CancellationToken,
    /// Dropping the service without `stop` stops its tasks too.
    _stop_on_drop: tokio_util::sync::DropGuard,
    tasks: Vec<JoinHandle<()>>,
    /// The sink stops last (its own signal), after the consumer has handed over everything.
    influx_task: Option<(CancellationToken, JoinHandle<()>)>,
}

impl Service {
    /// Starts every source and the consumer that logs their events.
    pub fn start(cfg: ServiceConfig) -> Service {
        let (tx, rx) = mpsc::channel(1024);
        let (readings, _) = broadcast::channel(1024);
        let (updates, _) = broadcast::channel(1024);
        let shutdown = CancellationToken::new();
        let shutdown_rx = shutdown.clone();
        let log = Arc::new(EventLog::default());
        let status = Arc::new(Mutex::new(BTreeMap::new()));
        let tickets = Arc::new(TicketBook::default());
        let (ticket_updates, _) = broadcast::channel(1024);
        let rules = Rules::new(cfg.site.clone(), cfg.rules.clone());
        let mut tasks = Vec::new();
        let nodes_udin: Vec<(String, f64)> = cfg
            .nodes
            .iter()
            .map(|n| (n.name.clone(), f64::from(n.thresholds.udin)))
            .collect();
        for node in cfg.nodes {
            status.lock().unwrap_or_else(|p| p.into_inner()).insert(
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
        let meters = Arc::new(Mutex::new(BTreeMap::new()));
        let (meter_readings, _) = broadcast::channel(1024);
        if !cfg.meter_buses.is_empty() {
            let (mtx, mut mrx) = mpsc::channel::<MeterMessage>(1024);
            for bus in cfg.meter_buses {
                tasks.push(tokio::spawn(bus(mtx.clone(), shutdown_rx.clone())));
            }
            let fwd = tx.clone();
            // Meter buses are slow (seconds per poll): waiting here for the consumer is fine.
            tasks.push(tokio::spawn(async move {
                while let Some(m) = mrx.recv().await {
                    if fwd.send(SourceMessage::Meter(m)).await.is_err() {
                        break;
                    }
                }
            }));
        }
        let battery_low = Arc::new(tokio::sync::Notify::new());
        let on_battery = Arc::new(Mutex::new(cfg.ups.as_ref().map(|_| false)));
        if let Some(ups) = cfg.ups {
            let (utx, mut urx) = mpsc::channel(16);
            tasks.push(tokio::spawn(ups(utx, shutdown_rx.clone())));
            let fwd = tx.clone();
            tasks.push(tokio::spawn(async move {
                while let Some((signal, at)) = urx.recv().await {
                    if fwd.send(SourceMessage::Ups(signal, at)).await.is_err() {
                        break;
                    }
                }
            }));
        }
        if let (Some(store), Some(delivery)) = (cfg.store.clone(), cfg.delivery.clone()) {
            crate::actions::delivery::init_tls();
            let (dead_tx, mut dead_rx) = mpsc::channel(64);
            tasks.push(tokio::spawn(crate::actions::delivery::run_outbox(
                store,
                delivery,
                shutdown_rx.clone(),
                dead_tx,
            )));
            let fwd = tx.clone();
            tasks.push(tokio::spawn(async move {
                while let Some(d) = dead_rx.recv().await {
                    if fwd.send(SourceMessage::DeadLetter(d)).await.is_err() {
                        break;
                    }
                }
            }));
        }
        drop(tx);
        let started = Utc::now();
        let mut influx_stats = None;
        let mut influx_task = None;
        let mut influx_feed = None;
        if let Some(icfg) = cfg.influx {
            use crate::sinks::influx;
            let icfg = icfg.with_site(&cfg.site);
            let stats = Arc::new(Mutex::new(influx::InfluxStats::default()));
            let (itx, irx) = influx::channel(icfg.channel_capacity, stats.clone());
            let stop = CancellationToken::new();
            let stop_rx = stop.clone();
            let health_every = Duration::from_secs_f64(icfg.health_interval_s);
            let writer_stats = stats.clone();
            let writer = tokio::spawn(async move {
                if let Err(e) = influx::run(icfg, irx, stop_rx, writer_stats.clone()).await {
                    // Not silent: the log, /api/v1/status and the health points say so.
                    tracing::error!("InfluxDB sink not started: {e}");
                    writer_stats
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .last_error = Some(format!("not started: {e}"));
                }
            });
            influx_task = Some((stop, writer));
            tasks.push(tokio::spawn(influx::aggregate_readings(
                itx.clone(),
                readings.subscribe(),
                updates.subscribe(),
                log.clone(),
                nodes_udin,
                stats.clone(),
                shutdown_rx.clone(),
            )));
            let feed = Arc::new(influx::InfluxFeed::new(itx));
            tasks.push(tokio::spawn(report_health(
                HealthSources {
                    started,
                    status: status.clone(),
                    meters: meters.clone(),
                    tickets: tickets.clone(),
                    influx: stats.clone(),
                    on_battery: on_battery.clone(),
                },
                feed.clone(),
                health_every,
                shutdown_rx.clone(),
            )));
            influx_feed = Some(feed);
            influx_stats = Some(stats);
        }
        tasks.push(tokio::spawn(consume(
            rx,
            readings.subscribe(),
            Outputs {
                store: cfg.store.clone(),
                stored: Mutex::new(HashMap::new()),
                attached: Mutex::new(Vec::new()),
                routes: cfg.routes.clone(),
                site: cfg.site.clone(),
                log: log.clone(),
                meters: meters.clone(),
                meter_readings: meter_readings.clone(),
                updates: updates.clone(),
                status: status.clone(),
                tickets: tickets.clone(),
                ticket_updates: ticket_updates.clone(),
                influx: influx_feed,
                on_battery,
            },
            rules,
            MeterDesk::new(cfg.coarse),
            battery_low.clone(),
        )));
        Service {
            log,
            readings,
            updates,
            status,
            tickets,
            ticket_updates,
            meters,
            meter_readings,
            started,
            battery_low,
            influx: influx_stats,
            _stop_on_drop: shutdown.clone().drop_guard(),
            shutdown,
            tasks,
            influx_task,
        }
    }

    /// Stops the sources and waits for every task to finish; the InfluxDB sink last, so that
    /// what the consumer handed over on the way out is sent or kept in its backlog.
    pub async fn stop(self) {
        self.shutdown.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        if let Some((stop, task)) = self.influx_task {
            stop.cancel();
            let _ = task.await;
        }
    }
}

/// What the health report is made of.
struct HealthSources {
    started: DateTime<Utc>,
    status: Arc<Mutex<BTreeMap<String, SourceStatus>>>,
    meters: Arc<Mutex<BTreeMap<String, MeterBusStatus>>>,
    tickets: Arc<TicketBook>,
    influx: Arc<Mutex<crate::sinks::influx::InfluxStats>>,
    on_battery: Arc<Mutex<Option<bool>>>,
}

impl HealthSources {
    fn health(&self, at: DateTime<Utc>) -> crate::sinks::influx::Health {
        let (sources, connected, stream_errors) = {
            let st = self.status.lock().unwrap_or_else(|p| p.into_inner());
            (
                st.len() as u32,
                st.values().filter(|s| s.connected).count() as u32,
                st.values()
                    .map(|s| s.stats.crc_errors + s.stats.seq_gaps)
                    .sum::<u64>(),
            )
        };
        let (devices, online, bus_errors) = {
            let m = self.meters.lock().unwrap_or_else(|p| p.into_inner());
            (
                m.values().map(|b| b.devices.len() as u32).sum::<u32>(),
                m.values()
                    .flat_map(|b| b.devices.values())
                    .filter(|d| d.online)
                    .count() as u32,
                m.values()
                    .map(|b| b.stats.timeouts + b.stats.bad_frames)
                    .sum::<u64>(),
            )
        };
        let outage_open = self.tickets.all().iter().any(|t| {
            t.op.kind == crate::actions::rules::TicketKind::Repair
                && t.op.state == crate::actions::rules::TicketState::Open
        });
        let heard = connected + online;
        let buffer_depth = {
            let s = self.influx.lock().unwrap_or_else(|p| p.into_inner());
            s.memory_points + s.backlog_points
        };
        let clock = crate::pipeline::clock::kernel_sync();
        crate::sinks::influx::Health {
            at,
            uptime_s: (at - self.started).num_milliseconds() as f64 / 1000.0,
            // Only a source that is heard can tell whether the supply is there.
            supply_ok: (heard > 0).then_some(!outage_open),
            outage_open,
            sources: sources + devices,
            sources_connected: heard,
            buffer_depth,
            serial_errors: stream_errors + bus_errors,
            clock_synced: clock.map(|c| c.synced),
            clock_offset_ms: clock.and_then(|c| c.offset_ms),
            on_battery: *self.on_battery.lock().unwrap_or_else(|p| p.into_inner()),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// Writes the appliance's health every `every`, from the start, and once more on the way out.
async fn report_health(
    from: HealthSources,
    feed: Arc<crate::sinks::influx::InfluxFeed>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !shutdown.is_cancelled() {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => feed.health(&from.health(Utc::now())),
        }
    }
    feed.health(&from.health(Utc::now()));
}

/// Where the consumer puts what it learns.
struct Outputs {
    store: Option<crate::store::StoreHandle>,
    /// Log id → store id of every event stored, for what is attached to it later.
    stored: Mutex<HashMap<u64, i64>>,
    /// Events that just got a profile or a waveform, to store.
    attached: Mutex<Vec<u64>>,
    routes: crate::actions::desk::Routes,
    site: Site,
    log: Arc<EventLog>,
    meters: Arc<Mutex<BTreeMap<String, MeterBusStatus>>>,
    meter_readings: broadcast::Sender<crate::sources::meters::readings::MeterReading>,
    updates: broadcast::Sender<LoggedEvent>,
    status: Arc<Mutex<BTreeMap<String, SourceStatus>>>,
    tickets: Arc<TicketBook>,
    ticket_updates: broadcast::Sender<TicketRecord>,
    /// The InfluxDB sink, when configured: handed everything announced, as it is announced.
    influx: Option<Arc<crate::sinks::influx::InfluxFeed>>,
    /// The UPS's word on the appliance's supply (`None`: no UPS inputs).
    on_battery: Arc<Mutex<Option<bool>>>,
}

impl Outputs {
    async fn store_event(&self, ev: &LoggedEvent) {
        let Some(store) = &self.store else {
            return;
        };
        let json = ev.to_json();
        let kind = ev.body.kind().to_string();
        let start = ev.body.start();
        let end = ev.body.end();
        let duration_s = match &ev.body {
            EventBody::Voltage(e) => e.duration_s,
            _ => end.map(|e| (e - start).num_microseconds().unwrap_or(0) as f64 / 1e6),
        };
        let stored = crate::store::StoredEvent {
            source: ev.source.clone(),
            source_key: format!("{kind}@{}", crate::store::format_ts(start)),
            site_id: Some(self.site.id.clone()),
            kind,
            start,
            end,
            duration_s,
            extreme_pct: json["extreme_pct"].as_f64(),
            worst_channel: json["worst_channel"].as_str().map(str::to_string),
            open: ev.is_open(),
            json,
            profile_json: ev
                .profile
                .as_ref()
                .and_then(|p| serde_json::to_value(&**p).ok()),
            waveform: None,
        };
        match store.upsert_event(stored).await {
            Ok(id) => {
                self.stored
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(ev.id, id);
            }
            Err(e) => tracing::error!(event = ev.id, "event NOT stored: {e}"),
        }
    }

    /// Stores the RMS profiles and waveform captures that arrived for stored events.
    async fn store_attachments(&self) {
        let Some(store) = &self.store else {
            return;
        };
        let ids: Vec<u64> =
            std::mem::take(&mut *self.attached.lock().unwrap_or_else(|p| p.into_inner()));
        for id in ids {
            let (Some(ev), Some(sid)) = (
                self.log.get(id),
                self.stored
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&id)
                    .copied(),
            ) else {
                continue;
            };
            if let (Some(_), Some(influx)) = (&ev.profile, &self.influx) {
                influx.event(&ev);
            }
            if let Some(p) = &ev.profile {
                if let Ok(json) = serde_json::to_value(&**p) {
                    if let Err(e) = store.attach_profile(sid, json).await {
                        tracing::error!(event = id, "RMS profile NOT stored: {e}");
                    }
                }
            }
            if let Some(w) = &ev.waveform {
                // The capture as JSON (channels, rate, start, volts): readable without kare.
                if let Ok(bytes) = serde_json::to_vec(&**w) {
                    if let Err(e) = store.attach_waveform(sid, bytes).await {
                        tracing::error!(event = id, "waveform NOT stored: {e}");
                    }
                }
            }
        }
    }

    /// Records ticket changes: durably (ticket and its deliveries in one transaction) before the
    /// API, the console or anyone else hears of them.
    /// `cause`: the stored event whose rule input produced `ops`, if any (linked to the ticket).
    async fn tickets(&self, ops: Vec<TicketOp>, cause: Option<i64>, now: DateTime<Utc>) {
        for op in ops {
            let revision = match &self.store {
                Some(store) => {
                    match crate::actions::desk::save(
                        store,
                        &self.routes,
                        &self.site,
                        &op,
                        cause,
                        now,
                    )
                    .await
                    {
                        Ok(r) => Some(r as u32),
                        Err(e) => {
                            // Not lost: the rules will state it again (restart or next change), and the
                            // operator sees why here and in /api/v1/status.
                            tracing::error!(key = %op.key, "ticket NOT stored: {e}");
                            None
                        }
                    }
                }
                None => None,
            };
            let mut rec = self.tickets.apply(op, now);
            if let Some(r) = revision {
                rec.revision = r;
            }
            tracing::info!(key = %rec.op.key, revision = rec.revision, "ticket: {}", rec.op.title);
            if let Some(influx) = &self.influx {
                influx.ticket(&rec);
            }
            let _ = self.ticket_updates.send(rec);
        }
    }
}

/// What the rules make of a source's message, if anything.
fn rule_input(msg: &SourceMessage) -> Option<RuleInput> {
    Some(match msg {
        SourceMessage::Stream(source, StreamOutput::Started { event, .. })
            if event.kind == EventKind::Interruption =>
        {
            RuleInput::SupplyLost {
                source: source.to_string(),
                at: event.start,
                via: "half-cycle".into(),
            }
        }
        SourceMessage::Stream(source, StreamOutput::Ended { event, .. }) => {
            let end = event.start
                + chrono::Duration::microseconds((event.duration_s? * 1e6).round() as i64);
            if event.kind == EventKind::Interruption {
                RuleInput::SupplyBack {
                    source: source.to_string(),
                    at: end,
                }
            } else {
                RuleInput::Disturbance {
                    source: source.to_string(),
                    kind: event.kind.as_str().into(),
                    start: event.start,
                    duration_s: event.duration_s?,
                    extreme_pct: event.extreme_pct,
                }
            }
        }
        SourceMessage::Stream(source, StreamOutput::SupplyPresent { at }) => {
            RuleInput::SupplyPresent {
                source: source.to_string(),
                at: *at,
            }
        }
        SourceMessage::SensorLost {
            source,
            since,
            reason,
        } => RuleInput::SensorLost {
            source: source.to_string(),
            since: *since,
            reason: reason.clone(),
        },
        SourceMessage::SensorBack { source, at } => RuleInput::SensorBack {
            source: source.to_string(),
            at: *at,
        },
        _ => return None,
    })
}

async fn consume(
    mut rx: mpsc::Receiver<SourceMessage>,
    mut readings: broadcast::Receiver<Reading>,
    out: Outputs,
    mut rules: Rules,
    mut meters: MeterDesk,
    battery_low: Arc<tokio::sync::Notify>,
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The rules' clock: the wall clock, or the data's when it runs ahead (an accelerated
    // simulation), so that "an outage lasting 15 minutes" means 15 minutes of the data.
    // After a restart, the open tickets in the store are the outage still in progress.
    if let Some(store) = &out.store {
        match store.open_tickets().await {
            Ok(open) => {
                for t in open {
                    let failures = t.body_json["detail"]["failures"].as_u64().unwrap_or(1) as u32;
                    match t.kind.as_str() {
                        "repair" => rules.restore_outage(&t.key, t.opened_at, failures),
                        "generator" => rules.restore_generator(&t.key, t.opened_at),
                        _ => {}
                    }
                    tracing::info!(key = %t.key, "open ticket carried over from before the restart");
                }
            }
            Err(e) => tracing::error!("cannot read open tickets from the store: {e}"),
        }
    }
    let mut data_now = DateTime::<Utc>::UNIX_EPOCH;
    let mut ticked = data_now;
    let now = |data: DateTime<Utc>| Utc::now().max(data);
    loop {
        let msg = tokio::select! {
            m = rx.recv() => match m {
                Some(m) => m,
                None => break,
            },
            r = readings.recv() => {
                if let Ok(r) = r {
                    data_now = data_now.max(r.end);
                }
                // Time-driven rules follow the data too (ten times a data second), so that an
                // accelerated run meets its limits as a real one does.
                if data_now - ticked >= chrono::Duration::milliseconds(100) {
                    ticked = data_now;
                    out.tickets(rules.tick(now(data_now)), None, now(data_now)).await;
                }
                continue;
            }
            _ = tick.tick() => {
                out.tickets(rules.tick(now(data_now)), None, now(data_now)).await;
                continue;
            }
        };
        let (logged, inputs) = match &msg {
            SourceMessage::Meter(m) => meters.handle(m, &out),
            // A maintenance ticket about a failing delivery, unless the failed one was itself
            // such a ticket (which would loop).
            SourceMessage::DeadLetter(d) if d.ticket_kind != "maintenance" => (
                Vec::new(),
                vec![RuleInput::DeliveryDead {
                    endpoint: d.endpoint.clone(),
                    reason: d.reason.clone(),
                    at: Utc::now(),
                }],
            ),
            SourceMessage::DeadLetter(_) => (Vec::new(), Vec::new()),
            SourceMessage::Ups(signal, at) => {
                use crate::sources::ups::UpsSignal;
                let input = match signal {
                    UpsSignal::MainsLost => RuleInput::SupplyLost {
                        source: "ups".into(),
                        at: *at,
                        via: "UPS input (appliance on battery)".into(),
                    },
                    UpsSignal::MainsRestored => RuleInput::SupplyBack {
                        source: "ups".into(),
                        at: *at,
                    },
                    UpsSignal::BatteryLow => RuleInput::BatteryLow { at: *at },
                };
                tracing::warn!("UPS: {signal:?}");
                match signal {
                    UpsSignal::MainsLost => {
                        *out.on_battery.lock().unwrap_or_else(|p| p.into_inner()) = Some(true)
                    }
                    UpsSignal::MainsRestored => {
                        *out.on_battery.lock().unwrap_or_else(|p| p.into_inner()) = Some(false)
                    }
                    UpsSignal::BatteryLow => {}
                }
                (Vec::new(), vec![input])
            }
            _ => (
                log_message(&msg, &out).into_iter().collect(),
                rule_input(&msg).into_iter().collect(),
            ),
        };
        // Events are stored before anyone hears of them, and before any ticket is raised; the
        // first of them is what the message's rule inputs are about (the ticket's cause).
        let mut cause = None;
        for ev in logged {
            out.store_event(&ev).await;
            if cause.is_none() {
                cause = out
                    .stored
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&ev.id)
                    .copied();
            }
            if let Some(influx) = &out.influx {
                influx.event(&ev);
            }
            let _ = out.updates.send(ev);
        }
        out.store_attachments().await;
        let battery = inputs
            .iter()
            .any(|i| matches!(i, RuleInput::BatteryLow { .. }));
        for input in inputs {
            out.tickets(rules.handle(input, now(data_now)), cause, now(data_now))
                .await;
        }
        if battery {
            // The tickets saying so are stored: the daemon may now shut down cleanly.
            battery_low.notify_one();
        }
    }
}

/// What the service knows of its meter buses: a coarse detector per bus that has a declared
/// voltage, and the latest values and counters for the status page.
#[derive(Debug, Default)]
pub struct MeterDesk {
    coarse: BTreeMap<String, CoarseDetector>,
}

impl MeterDesk {
    /// Coarse detection on the buses given with their thresholds (Udin phase-neutral, volts).
    pub fn new(
        coarse: impl IntoIterator<Item = (String, kare_firmware::detector::Thresholds)>,
    ) -> Self {
        MeterDesk {
            coarse: coarse
                .into_iter()
                .map(|(bus, t)| (bus, CoarseDetector::new(t)))
                .collect(),
        }
    }

    /// Logs what a meter message means and says what the rules should hear.
    fn handle(&mut self, m: &MeterMessage, out: &Outputs) -> (Vec<LoggedEvent>, Vec<RuleInput>) {
        let mut logged = Vec::new();
        let mut inputs = Vec::new();
        if let (MeterMessage::Event(e), Some(influx)) = (m, &out.influx) {
            influx.meter_event(e);
        }
        match m {
            MeterMessage::Readings(rs) => {
                let Some(first) = rs.first() else {
                    return (logged, inputs);
                };
                {
                    let mut st = out.meters.lock().unwrap_or_else(|p| p.into_inner());
                    let dev = st
                        .entry(first.source.to_string())
                        .or_default()
                        .devices
                        .entry(first.device.to_string())
                        .or_default();
                    dev.online = true;
                    for r in rs {
                        dev.values.insert(r.quantity, (r.value, r.at));
                    }
                }
                for r in rs {
                    let _ = out.meter_readings.send(r.clone());
                }
                if let Some(influx) = &out.influx {
                    influx.meter_readings(rs);
                }
                // Demand for generator sizing: the meter's demand register, else its power.
                let demand = rs
                    .iter()
                    .find(|r| r.quantity == Quantity::DemandKw)
                    .or_else(|| rs.iter().find(|r| r.quantity == Quantity::ActivePowerTotal));
                if let Some(d) = demand {
                    inputs.push(RuleInput::Demand {
                        at: d.at,
                        kw: d.value.abs(),
                    });
                }
                if let Some(det) = self.coarse.get_mut(&*first.source) {
                    for c in det.observe(rs) {
                        let who = format!("{}/{}", c.source, c.device);
                        if c.kind == CoarseKind::Outage {
                            inputs.push(match c.end {
                                None => RuleInput::SupplyLost {
                                    source: who,
                                    at: c.start,
                                    via: format!("meter (coarse, {:.0} s polls)", c.resolution_s),
                                },
                                Some(end) => RuleInput::SupplyBack {
                                    source: who,
                                    at: end,
                                },
                            });
                        }
                        logged.push(out.log.coarse(c));
                    }
                }
            }
            // History: to InfluxDB (and, through it, to the demand before an outage) only.
            MeterMessage::Interval(rs) => {
                if let Some(influx) = &out.influx {
                    influx.interval(rs);
                }
            }
            MeterMessage::Event(e) => match e {
                MeterEvent::Offline {
                    source,
                    device,
                    since,
                    reason,
                } => {
                    let who = format!("{source}/{device}");
                    if let Some(dev) = out
                        .meters
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .entry(source.to_string())
                        .or_default()
                        .devices
                        .get_mut(&**device)
                    {
                        dev.online = false;
                    }
                    logged.extend(out.log.sensor_lost(&who, *since, reason.clone()));
                    inputs.push(RuleInput::SensorLost {
                        source: who,
                        since: *since,
                        reason: reason.clone(),
                    });
                }
                MeterEvent::Online { source, device, at } => {
                    let who = format!("{source}/{device}");
                    logged.extend(out.log.sensor_back(&who, *at));
                    inputs.push(RuleInput::SensorBack {
                        source: who,
                        at: *at,
                    });
                }
                MeterEvent::PowerDown {
                    source,
                    device,
                    start,
                    end,
                } => {
                    let who = format!("{source}/{device}");
                    logged.extend(out.log.meter_power_down(&who, *start, *end));
                }
            },
            MeterMessage::Stats(bus, stats) => {
                out.meters
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(bus.to_string())
                    .or_default()
                    .stats = stats.clone();
            }
        }
        (logged, inputs)
    }
}

/// A meter bus as the status page shows it.
#[derive(Clone, Debug, Default)]
pub struct MeterBusStatus {
    /// Bus counters.
    pub stats: crate::sources::meters::readings::BusStats,
    /// Devices by name.
    pub devices: BTreeMap<String, MeterDeviceStatus>,
}

/// A meter as the status page shows it.
#[derive(Clone, Debug, Default)]
pub struct MeterDeviceStatus {
    /// Whether it answers.
    pub online: bool,
    /// Latest value of each quantity, with when it was read.
    pub values: BTreeMap<Quantity, (f64, DateTime<Utc>)>,
}

fn log_message(msg: &SourceMessage, out: &Outputs) -> Option<LoggedEvent> {
    let (log, status) = (&out.log, &out.status);
    match msg.clone() {
        SourceMessage::Stream(source, StreamOutput::Started { core_id, event }) => {
            Some(log.voltage_started(&source, core_id, event))
        }
        SourceMessage::Stream(source, StreamOutput::Ended { core_id, event }) => {
            Some(log.voltage_ended(&source, core_id, event))
        }
        SourceMessage::Stream(_, StreamOutput::SupplyPresent { .. }) => None,
        SourceMessage::Meter(_) | SourceMessage::DeadLetter(_) | SourceMessage::Ups(..) => None,
        SourceMessage::Stream(source, StreamOutput::Capture(w)) => {
            match log.attach_waveform(&source, w) {
                Some(id) => out
                    .attached
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(id),
                None => tracing::debug!(source = %source, "a waveform capture matched no event"),
            }
            None
        }
        SourceMessage::Stream(source, StreamOutput::Hello(h)) => {
            let mut st = status.lock().unwrap_or_else(|p| p.into_inner());
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
            // Not an update worth announcing: the event itself has not changed. Stored too.
            if let Some(ev) = log.attach_profile(&source, core_id, profile) {
                out.attached
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(ev.id);
            }
            None
        }
        SourceMessage::SensorLost {
            source,
            since,
            reason,
        } => {
            if let Some(s) = status
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(&*source)
            {
                s.connected = false;
            }
            log.sensor_lost(&source, since, reason)
        }
        SourceMessage::SensorBack { source, at } => {
            if let Some(s) = status
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(&*source)
            {
                s.connected = true;
            }
            log.sensor_back(&source, at)
        }
        SourceMessage::Stats(source, stats) => {
            if let Some(s) = status
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(&*source)
            {
                s.stats = stats;
                s.connected = true;
            }
            None
        }
    }
}
