//! The consumer: takes every source's message in turn, logs and stores events before anyone
//! hears of them, runs the ticket rules on the data clock, and records ticket changes durably
//! before announcing them.

use crate::actions::rules::{OpenTicket, RuleInput, Rules, TicketDetail, TicketKind, TicketOp};
use crate::actions::site::Site;
use crate::actions::tickets::{TicketBook, TicketRecord};
use crate::pipeline::event_log::{EventBody, EventLog, LoggedEvent};
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
            if ev.profile.is_some() {
                self.sinks.event(&ev);
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
                    match crate::actions::record::save(
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
            self.sinks.ticket(&rec);
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

/// Before the first message: events the last run left open are closed (it stopped before it saw
/// them end: see [`crate::store::StoreHandle::close_open_events`]), and every ticket still open
/// in the store is handed back to its rule, which carries it on and ends it.
async fn restore(store: &crate::store::StoreHandle, rules: &mut Rules, started: DateTime<Utc>) {
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
            return;
        }
    };
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
        rules.restore(OpenTicket {
            key: t.key.clone(),
            kind,
            opened_at: t.opened_at,
            detail,
        });
        tracing::info!(key = %t.key, "open ticket carried over from before the restart");
    }
}

pub(crate) async fn consume(
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
    if let Some(store) = &out.store {
        restore(store, &mut rules, Utc::now()).await;
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
            _ = tick.tick() => {
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
                // Connected means valid frames arriving, not counters: a port that delivers only
                // bytes that never decode keeps sending counters (`sensor_lost` says why).
                if stats.frames > s.stats.frames {
                    s.connected = true;
                }
                s.stats = stats;
            }
            None
        }
    }
}
