//! The running service: starts the sources, the consumer, the delivery outbox, the InfluxDB
//! sink and the health report, and stops them in order.
//!
//! Sources run as tokio tasks and talk to the service through one bounded channel
//! ([`SourceMessage`]); the consumer ([`super::consumer`]) takes it from there.

use crate::actions::rules::{RuleSettings, Rules};
use crate::actions::site::Site;
use crate::actions::tickets::{TicketBook, TicketRecord};
use crate::pipeline::consumer::{consume, Outputs};
use crate::pipeline::event_log::{EventLog, LoggedEvent};
use crate::pipeline::health::{report_health, HealthSources};
use crate::pipeline::meters::MeterDesk;
use crate::pipeline::status::{MeterBusStatus, SourceStatus};
use crate::sinks::{SinkContext, Sinks};
use crate::sources::meters::readings::MeterMessage;
use crate::sources::pqlink::{self, PqlinkSourceConfig, Reading, SourceMessage};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

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
    pub routes: crate::actions::record::Routes,
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
    /// The store, for its health (writable, last error, free space).
    pub store: Option<crate::store::StoreHandle>,
    /// Events and ticket changes waiting in memory for the store, and what the bound dropped.
    pub pending: Arc<Mutex<crate::pipeline::pending::PendingStats>>,
    /// The loops the watchdog needs alive: the consumer, and the store writer when there is a
    /// store.
    pub heartbeats: Vec<Arc<crate::pipeline::heartbeat::Heartbeat>>,
    shutdown: CancellationToken,
    /// Dropping the service without `stop` stops its tasks too.
    _stop_on_drop: tokio_util::sync::DropGuard,
    tasks: Vec<JoinHandle<()>>,
    /// The sink stops last (its own signal), after the consumer has handed over everything.
    sink_writers: Vec<(CancellationToken, JoinHandle<()>)>,
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
        let mut senders = None;
        if let (Some(store), Some(delivery)) = (cfg.store.clone(), cfg.delivery.clone()) {
            crate::actions::delivery::init_tls();
            // The same channels, for the store alarm sent from memory (no outbox, no disk).
            senders = Some(Arc::new(crate::actions::delivery::Senders::build(
                &delivery,
            )));
            let (news_tx, mut news_rx) = mpsc::channel(64);
            tasks.push(tokio::spawn(crate::actions::delivery::run_outbox(
                store,
                delivery,
                shutdown_rx.clone(),
                news_tx,
            )));
            let fwd = tx.clone();
            tasks.push(tokio::spawn(async move {
                use crate::actions::delivery::DeliveryNews;
                while let Some(news) = news_rx.recv().await {
                    let msg = match news {
                        DeliveryNews::Dead(d) => SourceMessage::DeadLetter(d),
                        DeliveryNews::Recovered { endpoint, at } => {
                            SourceMessage::Delivered { endpoint, at }
                        }
                    };
                    if fwd.send(msg).await.is_err() {
                        break;
                    }
                }
            }));
        }
        drop(tx);
        let started = Utc::now();
        let pending = Arc::new(Mutex::new(crate::pipeline::pending::PendingStats::default()));
        // Sinks: each started sink's feed joins the one fan-out the consumer hands things to;
        // writers are stopped last. A new sink is one more `if let` here.
        let mut sinks = Sinks::default();
        let mut writers = Vec::new();
        let mut health_every: Option<Duration> = None;
        let ctx = SinkContext {
            readings: readings.clone(),
            updates: updates.clone(),
            log: log.clone(),
            udin: nodes_udin,
            shutdown: shutdown_rx.clone(),
        };
        let mut started_sinks = Vec::new();
        let mut influx_stats = None;
        if let Some(icfg) = cfg.influx {
            let (started, stats) = crate::sinks::influx::start(icfg.with_site(&cfg.site), &ctx);
            influx_stats = Some(stats);
            started_sinks.push(started);
        }
        // The reports' history (10-minute aggregates, 10-s frequency, meter intervals) and the
        // site record they read: recorded whenever there is a store.
        if let Some(store) = &cfg.store {
            started_sinks.push(crate::sinks::history::start(
                store.clone(),
                site_record(&cfg.site, &cfg.rules),
                &ctx,
                status.clone(),
            ));
        }
        for started in started_sinks {
            sinks.push(started.feed);
            tasks.extend(started.tasks);
            writers.push((started.stop, started.writer));
            health_every = match (health_every, started.health_every) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        if let Some(every) = health_every {
            tasks.push(tokio::spawn(report_health(
                HealthSources {
                    started,
                    status: status.clone(),
                    meters: meters.clone(),
                    tickets: tickets.clone(),
                    sinks: sinks.clone(),
                    on_battery: on_battery.clone(),
                    store: cfg.store.clone(),
                    pending: pending.clone(),
                },
                every,
                shutdown_rx.clone(),
            )));
        }
        let consumer_beat = crate::pipeline::heartbeat::Heartbeat::new("consumer");
        let mut heartbeats = vec![consumer_beat.clone()];
        heartbeats.extend(cfg.store.as_ref().map(|s| s.heartbeat()));
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
                sinks,
                on_battery,
                pending: Mutex::new(crate::pipeline::pending::Pending::new(pending.clone())),
                alarm: Mutex::new(None),
                senders,
            },
            rules,
            MeterDesk::new(cfg.coarse),
            battery_low.clone(),
            consumer_beat,
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
            store: cfg.store,
            pending,
            heartbeats,
            _stop_on_drop: shutdown.clone().drop_guard(),
            shutdown,
            tasks,
            sink_writers: writers,
        }
    }

    /// Stops the sources and waits for every task to finish; the InfluxDB sink last, so that
    /// what the consumer handed over on the way out is sent or kept in its backlog.
    pub async fn stop(self) {
        self.shutdown.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        for (stop, writer) in self.sink_writers {
            stop.cancel();
            let _ = writer.await;
        }
    }
}

/// The site as the reports read it from the store (`kare report --store`): `[site]`, the
/// momentary / sustained threshold of `[rules]`, and 50 Hz until a node says otherwise.
pub fn site_record(site: &Site, rules: &RuleSettings) -> crate::store::SiteRecord {
    crate::store::SiteRecord {
        id: site.id.clone(),
        customer_id: site.customer_id.clone(),
        customer_name: site.customer_name.clone(),
        tier: serde_json::to_value(site.tier)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        address: site.address.clone(),
        nominal_kv: site.nominal_kv,
        utc_offset_minutes: site.utc_offset_minutes,
        momentary_max_s: rules.momentary_max_s,
        account_manager: site.account_manager.name.clone(),
        ..crate::store::SiteRecord::default()
    }
}
