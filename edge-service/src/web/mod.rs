//! The web layer: the JSON API (`/api/v1/status`, `/api/v1/events`, `/api/v1/stream`: server-sent
//! events of live readings and event updates) and the pages built on the same state ([`pages`]:
//! Now, Events, Tickets, Report; [`report`]: the printable report; [`i18n`], [`charts`]).

pub mod charts;
pub mod i18n;
pub mod pages;
pub mod report;

pub use i18n::Lang;
pub use report::report_document;

use crate::pipeline::event_log::LoggedEvent;
use crate::pipeline::service::Service;
use crate::pipeline::status::SourceStatus;
use crate::sources::pqlink::Reading;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{SecondsFormat, Utc};
use futures::Stream;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    log: Arc<crate::pipeline::event_log::EventLog>,
    tickets: Arc<crate::actions::tickets::TicketBook>,
    status: Arc<Mutex<BTreeMap<String, SourceStatus>>>,
    readings: broadcast::Sender<Reading>,
    updates: broadcast::Sender<LoggedEvent>,
    started: chrono::DateTime<Utc>,
    influx: Option<Arc<Mutex<crate::sinks::influx::InfluxStats>>>,
    meters: Arc<Mutex<BTreeMap<String, crate::pipeline::status::MeterBusStatus>>>,
    meter_readings: broadcast::Sender<crate::sources::meters::readings::MeterReading>,
    ticket_updates: broadcast::Sender<crate::actions::tickets::TicketRecord>,
    store: Option<crate::store::StoreHandle>,
    pending: Arc<Mutex<crate::pipeline::pending::PendingStats>>,
}

impl ApiState {
    /// The API over a running service.
    pub fn new(service: &Service) -> Self {
        ApiState {
            log: service.log.clone(),
            tickets: service.tickets.clone(),
            status: service.status.clone(),
            readings: service.readings.clone(),
            updates: service.updates.clone(),
            started: service.started,
            influx: service.influx.clone(),
            meters: service.meters.clone(),
            meter_readings: service.meter_readings.clone(),
            ticket_updates: service.ticket_updates.clone(),
            store: service.store.clone(),
            pending: service.pending.clone(),
        }
    }
}

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/events", get(events))
        .route("/api/v1/events/{id}", get(event))
        .route("/api/v1/events/{id}/waveform", get(waveform))
        .route("/api/v1/tickets", get(tickets))
        .route("/api/v1/stream", get(stream))
        .with_state(state.clone())
        .merge(pages::router(state))
}

async fn status(State(s): State<ApiState>) -> Json<Value> {
    let now = Utc::now();
    let sources: serde_json::Map<String, Value> = s
        .status
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(name, st)| {
            (
                name.clone(),
                json!({
                    "kind": "pqlink",
                    "port": st.port,
                    "connected": st.connected,
                    "node_id": st.node_id,
                    "channels": st.channels,
                    "sample_rate_hz": st.sample_rate_hz,
                    "nominal_hz": st.nominal_hz,
                    "stats": st.stats,
                }),
            )
        })
        .collect();
    let meters: serde_json::Map<String, Value> = s
        .meters
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(bus, b)| {
            let devices: serde_json::Map<String, Value> = b
                .devices
                .iter()
                .map(|(name, d)| {
                    let values: serde_json::Map<String, Value> = d
                        .values
                        .iter()
                        .map(|(q, (v, at))| {
                            (
                                q.as_str().to_string(),
                                json!({
                                    "value": v,
                                    "unit": q.unit(),
                                    "at": at.to_rfc3339_opts(SecondsFormat::Millis, true),
                                }),
                            )
                        })
                        .collect();
                    (name.clone(), json!({"online": d.online, "values": values}))
                })
                .collect();
            (bus.clone(), json!({"stats": b.stats, "devices": devices}))
        })
        .collect();
    let all = s.log.all();
    Json(json!({
        "service": "kare",
        "version": env!("CARGO_PKG_VERSION"),
        "now": now.to_rfc3339_opts(SecondsFormat::Millis, true),
        "started": s.started.to_rfc3339_opts(SecondsFormat::Millis, true),
        "uptime_s": (now - s.started).num_milliseconds() as f64 / 1000.0,
        "sources": sources,
        "meters": meters,
        "events": {"total": all.len(), "open": all.iter().filter(|e| e.is_open()).count()},
        // The store (issue 11: a full disk must be visible): writable, `problem` (what is wrong
        // and what to do), the last error and since when, free space, and what waits in memory
        // (null: no store).
        "store": s.store.as_ref().map(|st| {
            let h = st.health();
            let mut v = json!(&h);
            v["problem"] = json!(h.problem());
            v["pending"] = json!(&*s.pending.lock().unwrap_or_else(|p| p.into_inner()));
            v
        }),
        // The central InfluxDB: up, written, held in the backlog, evicted (null: not configured).
        "influx": s.influx.as_ref().map(|i| json!(&*i.lock().unwrap_or_else(|p| p.into_inner()))),
    }))
}

async fn waveform(
    State(s): State<ApiState>,
    Path(id): Path<u64>,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    let not_found = |why: String| (StatusCode::NOT_FOUND, Json(json!({ "error": why })));
    let e = s
        .log
        .get(id)
        .ok_or_else(|| not_found(format!("no event {id}; /api/v1/events lists them")))?;
    let w = e.waveform.ok_or_else(|| {
        not_found(format!(
            "event {id} has no waveform capture (only sensor nodes capture, and only at an event's start)"
        ))
    })?;
    Ok(Json(json!(&*w)))
}

async fn tickets(State(s): State<ApiState>) -> Json<Value> {
    let tickets: Vec<Value> = s.tickets.all().iter().map(|t| t.to_json()).collect();
    Json(json!({ "tickets": tickets }))
}

async fn events(State(s): State<ApiState>) -> Json<Value> {
    let events: Vec<Value> = s.log.all().iter().map(LoggedEvent::to_json).collect();
    Json(json!({ "events": events }))
}

async fn event(
    State(s): State<ApiState>,
    Path(id): Path<u64>,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    s.log
        .get(id)
        .map(|e| Json(e.to_json_with_profile()))
        .ok_or_else(|| {
            (
                StatusCode::NOT_FOUND,
                Json(json!({"error": format!("no event {id}; /api/v1/events lists them")})),
            )
        })
}

/// A reading as JSON: volts per channel by position, with the window in UTC.
pub fn reading_json(r: &Reading) -> Value {
    json!({
        "source": &*r.source,
        "seq": r.seq,
        "start": r.start.to_rfc3339_opts(SecondsFormat::Micros, true),
        "end": r.end.to_rfc3339_opts(SecondsFormat::Micros, true),
        "frequency_hz": r.frequency_hz,
        "volts": &r.volts[..r.channels as usize],
        "locked": r.locked,
    })
}

/// A polled meter value as JSON.
pub fn meter_json(r: &crate::sources::meters::readings::MeterReading) -> Value {
    json!({
        "source": &*r.source,
        "device": &*r.device,
        "at": r.at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "quantity": r.quantity.as_str(),
        "value": r.value,
        "unit": r.quantity.unit(),
    })
}

async fn stream(
    State(s): State<ApiState>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    use broadcast::error::RecvError;
    let subs = (
        s.readings.subscribe(),
        s.updates.subscribe(),
        s.ticket_updates.subscribe(),
        s.meter_readings.subscribe(),
    );
    let lagged = |what: &str, n: u64| {
        SseEvent::default()
            .event("lagged")
            .data(json!({ what: n }).to_string())
    };
    let st = futures::stream::unfold(subs, move |(mut r, mut u, mut t, mut m)| async move {
        // Events and tickets first: a slow viewer misses readings, never an event or the
        // notice that it missed something.
        let ev = tokio::select! {
            biased;
            e = u.recv() => match e {
                Ok(ev) => SseEvent::default().event("event").data(ev.to_json().to_string()),
                Err(RecvError::Lagged(n)) => lagged("missed_events", n),
                Err(RecvError::Closed) => return None,
            },
            e = t.recv() => match e {
                Ok(tk) => SseEvent::default().event("ticket").data(tk.to_json().to_string()),
                Err(RecvError::Lagged(n)) => lagged("missed_tickets", n),
                Err(RecvError::Closed) => return None,
            },
            e = m.recv() => match e {
                Ok(mr) => SseEvent::default().event("meter").data(meter_json(&mr).to_string()),
                Err(RecvError::Lagged(n)) => lagged("missed_meter_readings", n),
                Err(RecvError::Closed) => return None,
            },
            e = r.recv() => match e {
                Ok(rd) => SseEvent::default().event("reading").data(reading_json(&rd).to_string()),
                Err(RecvError::Lagged(n)) => lagged("missed_readings", n),
                Err(RecvError::Closed) => return None,
            },
        };
        Some((Ok(ev), (r, u, t, m)))
    });
    Sse::new(st).keep_alive(KeepAlive::default())
}
