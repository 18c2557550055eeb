//! The JSON API: `/api/v1/status`, `/api/v1/events` (from the store: paged, filtered, ids stable
//! across restarts), one event with its profile, waveform and COMTRADE download, tickets, and
//! `/api/v1/stream` (server-sent events of live readings and event updates). The pages
//! (`web/mod.rs`) are built on the same state.
//!
//! Bad input is a 400 with `{"error": "..."}` saying what is wrong and what would be right;
//! a store that cannot be read is a 503 saying why; never a 500.

mod events;

use crate::pipeline::event_log::LoggedEvent;
use crate::pipeline::service::Service;
use crate::pipeline::status::SourceStatus;
use crate::sources::pqlink::Reading;
use axum::extract::State;
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

/// What the handlers share (the API's and the pages').
#[derive(Clone)]
pub struct ApiState {
    pub(in crate::web) log: Arc<crate::pipeline::event_log::EventLog>,
    pub(in crate::web) tickets: Arc<crate::actions::tickets::TicketBook>,
    pub(in crate::web) status: Arc<Mutex<BTreeMap<String, SourceStatus>>>,
    pub(in crate::web) readings: broadcast::Sender<Reading>,
    pub(in crate::web) updates: broadcast::Sender<LoggedEvent>,
    pub(in crate::web) started: chrono::DateTime<Utc>,
    pub(in crate::web) influx: Option<Arc<Mutex<crate::sinks::influx::InfluxStats>>>,
    pub(in crate::web) meters:
        Arc<Mutex<BTreeMap<String, crate::pipeline::status::MeterBusStatus>>>,
    pub(in crate::web) meter_readings:
        broadcast::Sender<crate::sources::meters::readings::MeterReading>,
    pub(in crate::web) ticket_updates: broadcast::Sender<crate::actions::tickets::TicketRecord>,
    pub(in crate::web) store: Option<crate::store::StoreHandle>,
    pub(in crate::web) pending: Arc<Mutex<crate::pipeline::pending::PendingStats>>,
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

/// The API's routes, with their state applied (the pages' router merges them).
pub fn api_router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/events", get(events::events))
        .route("/api/v1/events/{id}", get(events::event))
        .route("/api/v1/events/{id}/waveform", get(events::waveform))
        .route("/api/v1/events/{id}/comtrade", get(events::comtrade))
        .route("/api/v1/tickets", get(tickets))
        .route("/api/v1/stream", get(stream))
        .route("/api/v1/commissioning", get(commissioning))
        .with_state(state)
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
        // The live log's view (bounded: `dropped` closed events left it; the store keeps them).
        "events": {
            "total": all.len(),
            "open": all.iter().filter(|e| e.is_open()).count(),
            "dropped": s.log.dropped(),
        },
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

/// The signed commissioning records (admin only: `web::auth::required_role`).
async fn commissioning(State(s): State<ApiState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(store) = &s.store else {
        return Json(json!({ "records": [] })).into_response();
    };
    match store.commissioning_records().await {
        Ok(rows) => {
            let records: Vec<Value> = rows
                .iter()
                .map(|r| {
                    json!({
                        "id": r.id,
                        "at": r.at,
                        "crew": r.crew,
                        "verdict": r.verdict,
                        "record": serde_json::from_str::<Value>(&r.record).unwrap_or(Value::Null),
                    })
                })
                .collect();
            Json(json!({ "records": records })).into_response()
        }
        Err(e) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": format!("cannot read the store: {e}") })),
        )
            .into_response(),
    }
}

async fn tickets(State(s): State<ApiState>) -> Json<Value> {
    let tickets: Vec<Value> = s.tickets.all().iter().map(|t| t.to_json()).collect();
    Json(json!({ "tickets": tickets }))
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
    let s_log = s.log.clone();
    let st = futures::stream::unfold(subs, move |(mut r, mut u, mut t, mut m)| {
        let s_log = s_log.clone();
        async move {
            // Events and tickets first: a slow viewer misses readings, never an event or the
            // notice that it missed something.
            let ev = tokio::select! {
                biased;
                e = u.recv() => match e {
                    Ok(ev) => SseEvent::default()
                        .event("event")
                        .data(events::live_json(&s_log, &ev).to_string()),
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
        }
    });
    Sse::new(st).keep_alive(KeepAlive::default())
}
