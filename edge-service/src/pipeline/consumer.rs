//! The consumer: takes every source's message in turn, logs and stores events before anyone
//! hears of them, runs the ticket rules on the data clock, and records ticket changes durably
//! before announcing them (the writes themselves, and what happens when the store cannot take
//! them, are in [`super::durable`]).

use crate::actions::rules::{OpenTicket, RuleInput, Rules, TicketDetail, TicketKind, TicketOp};
use crate::actions::site::Site;
use crate::actions::tickets::{TicketBook, TicketRecord};
use crate::pipeline::event_log::{EventLog, LoggedEvent};
use crate::pipeline::meters::MeterDesk;
use crate::pipeline::status::{MeterBusStatus, SourceStatus};
use crate::sinks::Sink;
use crate::sources::pqlink::{Reading, SourceMessage, StreamOutput};
use chrono::{DateTime, Utc};
use kare_firmware::detector::EventKind;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc};

/// Where the consumer puts what it learns.
pub(crate) struct Outputs {
    pub(crate) store: Option<crate::store::StoreHandle>,
    /// Log id → store id of every event stored, for what is attached to it later.
    pub(crate) stored: Mutex<HashMap<u64, i64>>,
    /// Events that just got a profile or a waveform, to store.
    pub(crate) attached: Mutex<Vec<u64>>,
    pub(crate) routes: crate::actions::record::Routes,
    pub(crate) site: Site,
    pub(crate) log: Arc<EventLog>,
    pub(crate) meters: Arc<Mutex<BTreeMap<String, MeterBusStatus>>>,
    pub(crate) meter_readings: broadcast::Sender<crate::sources::meters::readings::MeterReading>,
    pub(crate) updates: broadcast::Sender<LoggedEvent>,
    pub(crate) status: Arc<Mutex<BTreeMap<String, SourceStatus>>>,
    pub(crate) tickets: Arc<TicketBook>,
    pub(crate) ticket_updates: broadcast::Sender<TicketRecord>,
    /// Every sink (InfluxDB, …): handed everything announced, as it is announced.
    pub(crate) sinks: crate::sinks::Sinks,
    /// The UPS's word on the appliance's supply (`None`: no UPS inputs).
    pub(crate) on_battery: Arc<Mutex<Option<bool>>>,
    /// Writes waiting in memory for a store that cannot write (issue 11).
    pub(crate) pending: Mutex<crate::pipeline::pending::Pending>,
    /// The store alarm, while it is open.
    pub(crate) alarm: Mutex<Option<crate::pipeline::store_alarm::StoreAlarm>>,
    /// The delivery channels, for the store alarm sent from memory (`None`: no delivery).
    pub(crate) senders: Option<Arc<crate::actions::delivery::Senders>>,
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

/// Before the first message: events the last run left open are closed (it stopped before it saw
/// them end: see [`crate::store::StoreHandle::close_open_events`]), and every ticket still open
/// in the store is handed back to its rule, which carries it on and ends it.
async fn restore(
    store: &crate::store::StoreHandle,
    rules: &mut Rules,
    started: DateTime<Utc>,
) -> Vec<TicketOp> {
    match store.close_open_events(started).await {
        Ok(ids) if !ids.is_empty() => tracing::warn!(
            events = ids.len(),
            "events left open by the last run closed: unknown end, service restarted"
        ),
        Ok(_) => {}
        Err(e) => tracing::error!("cannot close the events left open by the last run: {e}"),
    }
    let open = match store.open_tickets().await {
        Ok(open) => open,
        Err(e) => {
            tracing::error!("cannot read open tickets from the store: {e}");
            return Vec::new();
        }
    };
    let mut closing = Vec::new();
    for t in open {
        let Ok(kind) = t.kind.parse::<TicketKind>() else {
            tracing::warn!(key = %t.key, kind = %t.kind, "open ticket of an unknown kind left as it is");
            continue;
        };
        let raw = t.body_json.get("detail").cloned().unwrap_or_default();
        let detail = TicketDetail::from_json(kind, &raw).unwrap_or_else(|e| {
            tracing::warn!(key = %t.key, "open ticket's detail unreadable ({e}); restored without it");
            TicketDetail::from_json(kind, &serde_json::Value::Null).unwrap_or(
                TicketDetail::Outage(Default::default()),
            )
        });
        // A store alarm left open (the last run stopped before the store wrote again): the
        // store has just been read and written (events closed above), so it ends now. No rule
        // owns it: handed to the maintenance rule it would wait for "store" to be heard.
        if let Some(op) = crate::pipeline::store_alarm::close_restored(&t, &detail, started) {
            closing.push(op);
            continue;
        }
        rules.restore(OpenTicket {
            key: t.key.clone(),
            kind,
            opened_at: t.opened_at,
            detail,
        });
        tracing::info!(key = %t.key, "open ticket carried over from before the restart");
    }
    closing
}

pub(crate) async fn consume(
    mut rx: mpsc::Receiver<SourceMessage>,
    mut readings: broadcast::Receiver<Reading>,
    out: Outputs,
    mut rules: Rules,
    mut meters: MeterDesk,
    battery_low: Arc<tokio::sync::Notify>,
    heartbeat: Arc<crate::pipeline::heartbeat::Heartbeat>,
) {
    let mut beat = tokio::time::interval(crate::pipeline::heartbeat::BEAT_EVERY);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Test-only (`crate::fault`): `stall-consumer=N` stops this loop N seconds after it starts,
    // as a deadlock would, to prove the watchdog's pings stop.
    let stall_at = crate::fault::value("stall-consumer").map(|v| {
        tokio::time::Instant::now() + std::time::Duration::from_secs_f64(v.parse().unwrap_or(1.0))
    });
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The rules' clock: the wall clock, or the data's when it runs ahead (an accelerated
    // simulation), so that "an outage lasting 15 minutes" means 15 minutes of the data.
    if let Some(store) = &out.store {
        let started = Utc::now();
        let closing = restore(store, &mut rules, started).await;
        out.tickets(closing, None, started).await;
    }
    let mut data_now = DateTime::<Utc>::UNIX_EPOCH;
    let mut ticked = data_now;
    let now = |data: DateTime<Utc>| Utc::now().max(data);
    // Test-only (`crate::fault`): die at the first message, as a rule bug would.
    let mut fault = crate::fault::armed("panic-rules");
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
            _ = beat.tick() => {
                if stall_at.is_some_and(|t| tokio::time::Instant::now() >= t) {
                    tracing::warn!("KARE_FAULT=stall-consumer: the consumer stops here (test-only switch)");
                    std::future::pending::<()>().await;
                }
                heartbeat.beat();
                continue;
            }
            _ = tick.tick() => {
                // What waits for the store is tried again once a second (and the store alarm
                // raised or closed), before the rules add more.
                out.flush(now(data_now)).await;
                out.store_attachments().await;
                out.tickets(rules.tick(now(data_now)), None, now(data_now)).await;
                continue;
            }
        };
        if std::mem::take(&mut fault) {
            crate::fault::trip("panic-rules");
        }
        let (logged, inputs) = match &msg {
            SourceMessage::Meter(m) => {
                let (logged, mut inputs) = meters.handle(m, &out);
                // A device that answers is heard: a maintenance ticket about its silence (one
                // restored after a restart included) ends.
                if let crate::sources::meters::readings::MeterMessage::Readings(rs) = m {
                    if let Some(r) = rs.first() {
                        inputs.push(RuleInput::Heard {
                            source: format!("{}/{}", r.source, r.device),
                            at: r.at,
                        });
                    }
                }
                (logged, inputs)
            }
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
            // The endpoint works again: a maintenance ticket about it ends.
            SourceMessage::Delivered { endpoint, at } => (
                Vec::new(),
                vec![RuleInput::Delivered {
                    endpoint: endpoint.clone(),
                    at: *at,
                }],
            ),
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
            _ => {
                let inputs: Vec<RuleInput> = rule_input(&msg).into_iter().collect();
                // A node's losses and restorations, to time the meters' coarse ones by.
                for input in &inputs {
                    meters.half_cycle(input);
                }
                (log_message(&msg, &out).into_iter().collect(), inputs)
            }
        };
        // Events are stored before anyone hears of them, and before any ticket is raised; the
        // first of them is what the message's rule inputs are about (the ticket's cause).
        // (A log id: its store id is known once written, which may be later: see `durable`.)
        let cause = logged.first().map(|ev| ev.id);
        for ev in logged {
            out.store_event(&ev, now(data_now)).await;
            out.sinks.event(&ev);
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
    out.finish().await;
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
        SourceMessage::Meter(_)
        | SourceMessage::DeadLetter(_)
        | SourceMessage::Delivered { .. }
        | SourceMessage::Ups(..) => None,
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
            s.lost = false;
            None
        }
        SourceMessage::Stream(_, StreamOutput::Reading(_) | StreamOutput::Phases(_)) => None,
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
                s.lost = true;
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
                s.lost = false;
            }
            log.sensor_back(&source, at)
        }
        SourceMessage::Stats(source, stats) => {
            if let Some(s) = status
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(&*source)
            {
                // Connected means valid frames arriving, not counters: a port that delivers only
                // bytes that never decode keeps sending counters (`sensor_lost` says why).
                if stats.frames > s.stats.frames && !s.lost {
                    s.connected = true;
                }
                s.stats = stats;
            }
            None
        }
    }
}
