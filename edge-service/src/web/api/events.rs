//! `/api/v1/events` and one event (`/{id}`, `/{id}/waveform`, `/{id}/comtrade`), read from the
//! store: the store's id is the event's id, the same after a restart. Without a store (tests,
//! tools) the live log answers instead, with its own ids.
//!
//! The list is newest first, `limit` at a time (default 100, at most 1000), paged by id:
//! `before=<id>` the next (older) page, `after=<id>` the one before it; the answer's
//! `next_before` / `prev_after` are the ids to pass, null when there is no such page. Filters:
//! `from`, `to` (RFC 3339, or `YYYY-MM-DD` for midnight UTC; the events overlapping
//! `[from, to)`), `kind` (one or more, comma-separated), `source`. Events the store cannot take
//! yet (a full disk) head the first page with `"id": null, "stored": false`: the list never
//! hides what happened because the disk is full.

use super::ApiState;
use crate::pipeline::event_log::{EventLog, LoggedEvent};
use crate::store::{EventFilter, EventRow, StoreError};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

/// Most events one page may hold.
pub const MAX_LIMIT: usize = 1000;
/// Events in a page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;

/// Every kind of event kare records, for checking `kind=`.
pub const KINDS: &[&str] = &[
    "dip",
    "swell",
    "interruption",
    "outage_coarse",
    "undervoltage",
    "overvoltage",
    "meter_power_down",
    "sensor_lost",
];

/// An answer other than 200: its status and `{"error": "..."}`.
pub(crate) struct ApiError(StatusCode, String);

impl ApiError {
    fn bad(why: impl Into<String>) -> Self {
        ApiError(StatusCode::BAD_REQUEST, why.into())
    }

    fn not_found(why: impl Into<String>) -> Self {
        ApiError(StatusCode::NOT_FOUND, why.into())
    }

    fn store(e: StoreError) -> Self {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the store cannot be read: {e}"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

/// A time as the query gives it: RFC 3339, or a date meaning its midnight UTC; in the years
/// 1970 to 9999 (UTC, [`crate::store::YEARS`]): the store compares its stamps as text, which a
/// signed or five-digit year (`+10000-01-01`, which chrono reads) would sort wrong.
pub fn parse_time(key: &str, v: &str) -> Result<DateTime<Utc>, String> {
    let mut t = None;
    // A `+` written unescaped in a URL arrives as a space.
    for text in [v.to_string(), v.replace(' ', "+")] {
        if let Ok(p) = DateTime::parse_from_rfc3339(&text) {
            t = Some(p.with_timezone(&Utc));
            break;
        }
    }
    if t.is_none() {
        t = NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc());
    }
    match t {
        Some(t) if crate::store::in_years(t) => Ok(t),
        Some(_) => Err(format!(
            "`{key}` must be in the years 1970 to 9999 (UTC), got `{v}`"
        )),
        None => Err(format!(
            "`{key}` must be a time (RFC 3339, e.g. 2026-03-01T08:00:00Z) or a date \
             (2026-03-01), got `{v}`"
        )),
    }
}

fn parse_id(key: &str, v: &str) -> Result<i64, String> {
    match v.parse::<i64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "`{key}` must be an event id (a whole number from 1), got `{v}`"
        )),
    }
}

/// The filter a query asks for, or what is wrong with it. Unknown keys are refused rather
/// than ignored: a misspelt filter would otherwise show everything and look like an answer.
pub fn parse_filter(pairs: &[(String, String)]) -> Result<EventFilter, String> {
    let mut f = EventFilter {
        limit: DEFAULT_LIMIT,
        ..EventFilter::default()
    };
    let mut seen = std::collections::HashSet::new();
    for (k, v) in pairs {
        if !seen.insert(k.as_str()) {
            return Err(format!("`{k}` is given twice; give it once"));
        }
        match k.as_str() {
            "from" => f.from = Some(parse_time(k, v)?),
            "to" => f.to = Some(parse_time(k, v)?),
            "kind" => {
                for kind in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if !KINDS.contains(&kind) {
                        return Err(format!(
                            "unknown kind `{kind}`; kinds are {}",
                            KINDS.join(", ")
                        ));
                    }
                    f.kinds.push(kind.to_string());
                }
                if f.kinds.is_empty() {
                    return Err(format!("`kind` is empty; kinds are {}", KINDS.join(", ")));
                }
            }
            "source" => {
                if v.is_empty() {
                    return Err("`source` is empty; give a source's name".into());
                }
                f.source = Some(v.clone());
            }
            "limit" => {
                f.limit = match v.parse::<usize>() {
                    Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                    _ => {
                        return Err(format!(
                            "`limit` must be a whole number from 1 to {MAX_LIMIT}, got `{v}`"
                        ))
                    }
                }
            }
            "before" => f.before_id = Some(parse_id(k, v)?),
            "after" => f.after_id = Some(parse_id(k, v)?),
            other => {
                return Err(format!(
                    "unknown parameter `{other}`; the list takes from, to, kind, source, limit, \
                     before, after"
                ))
            }
        }
    }
    if let (Some(from), Some(to)) = (f.from, f.to) {
        if to <= from {
            return Err("`to` must be after `from`".into());
        }
    }
    if f.before_id.is_some() && f.after_id.is_some() {
        return Err("give `before` or `after`, not both".into());
    }
    Ok(f)
}

/// `v` as a JSON object (a stored event's JSON always is; anything else is wrapped, so that
/// setting members cannot fail).
fn object(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => {
            let mut m = serde_json::Map::new();
            m.insert("stored_json".into(), other);
            m
        }
    }
}

/// A stored event as the API shows it: its JSON with the store's id, source and state.
pub fn row_json(r: &EventRow) -> Value {
    let mut m = object(r.json.clone());
    m.insert("id".into(), json!(r.id));
    m.insert("source".into(), json!(r.source));
    m.insert("kind".into(), json!(r.kind));
    m.insert("open".into(), json!(r.open));
    Value::Object(m)
}

/// A live event as the stream shows it: with the store's id once it is written (the same id
/// the list and the event's page use), the log's own id when there is no store.
pub fn live_json(log: &EventLog, ev: &LoggedEvent) -> Value {
    let mut m = object(ev.to_json());
    if let Some(id) = log.store_id(ev.id) {
        m.insert("id".into(), json!(id));
    }
    Value::Object(m)
}

/// Whether a live event passes the filter (everything but paging).
fn matches(f: &EventFilter, e: &LoggedEvent) -> bool {
    f.from
        .is_none_or(|from| e.body.end().is_none_or(|end| end > from))
        && f.to.is_none_or(|to| e.body.start() < to)
        && (f.kinds.is_empty() || f.kinds.iter().any(|k| k == e.body.kind()))
        && f.source.as_ref().is_none_or(|s| *s == e.source)
}

pub(crate) async fn events(
    State(s): State<ApiState>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(pairs) = q.map_err(|e| ApiError::bad(format!("bad query string: {e}")))?;
    let f = parse_filter(&pairs).map_err(ApiError::bad)?;
    let limit = f.limit;
    let first_page = f.before_id.is_none() && f.after_id.is_none();
    let (mut events, ids): (Vec<Value>, Vec<i64>) = match &s.store {
        Some(store) => {
            // One more than asked: whether there is a further page.
            let ask = EventFilter {
                limit: limit + 1,
                ..f.clone()
            };
            let mut rows = store.events_page(ask).await.map_err(ApiError::store)?;
            trim_page(&mut rows, limit, f.after_id.is_some());
            (
                rows.iter().map(row_json).collect(),
                rows.iter().map(|r| r.id).collect(),
            )
        }
        None => {
            let mut evs: Vec<LoggedEvent> = s
                .log
                .all()
                .into_iter()
                .filter(|e| matches(&f, e))
                .filter(|e| f.before_id.is_none_or(|b| (e.id as i64) < b))
                .filter(|e| f.after_id.is_none_or(|a| (e.id as i64) > a))
                .collect();
            // Newest first; after `after`, the nearest ones above it (one extra, trimmed).
            let upwards = f.after_id.is_some();
            if upwards {
                evs.truncate(limit + 1);
            }
            evs.reverse();
            trim_page(&mut evs, limit, upwards);
            (
                evs.iter().map(LoggedEvent::to_json).collect(),
                evs.iter().map(|e| e.id as i64).collect(),
            )
        }
    };
    let more_older = ids.len() == limit && !pages_end(&s, &f, &ids).await;
    let next_before = match (f.after_id, ids.last()) {
        // Paging back: older events exist (the page we came from).
        (Some(_), Some(last)) => Some(*last),
        (None, Some(last)) if more_older => Some(*last),
        _ => None,
    };
    let prev_after = match (first_page, ids.first()) {
        (false, Some(first)) if f.before_id.is_some() || more_newer(&s, &f, *first).await => {
            Some(*first)
        }
        _ => None,
    };
    if first_page && s.store.is_some() {
        // Waiting for the disk: the newest of all, so on top, marked.
        let waiting: Vec<Value> = s
            .log
            .unstored()
            .iter()
            .rev()
            .filter(|e| matches(&f, e))
            .map(|e| {
                let mut m = object(e.to_json());
                m.insert("id".into(), Value::Null);
                m.insert("stored".into(), json!(false));
                Value::Object(m)
            })
            .collect();
        events.splice(0..0, waiting);
    }
    Ok(Json(json!({
        "events": events,
        "next_before": next_before,
        "prev_after": prev_after,
    })))
}

/// Cuts a page read with one extra row back to `limit`. Newest first: the extra row is the
/// oldest (last) when paging down, the newest (first) when paging up from `after`.
fn trim_page<T>(rows: &mut Vec<T>, limit: usize, upwards: bool) {
    if rows.len() > limit {
        if upwards {
            rows.drain(..rows.len() - limit);
        } else {
            rows.truncate(limit);
        }
    }
}

/// Whether nothing older than the page matches (so there is no next page).
async fn pages_end(s: &ApiState, f: &EventFilter, ids: &[i64]) -> bool {
    let Some(&last) = ids.last() else {
        return true;
    };
    let probe = EventFilter {
        limit: 1,
        before_id: Some(last),
        after_id: None,
        ..f.clone()
    };
    match &s.store {
        Some(store) => store
            .events_page(probe)
            .await
            .map_or(true, |r| r.is_empty()),
        None => !s
            .log
            .all()
            .iter()
            .any(|e| (e.id as i64) < last && matches(f, e)),
    }
}

/// Whether anything newer than `first` matches (so there is a page before this one).
async fn more_newer(s: &ApiState, f: &EventFilter, first: i64) -> bool {
    let probe = EventFilter {
        limit: 1,
        before_id: None,
        after_id: Some(first),
        ..f.clone()
    };
    match &s.store {
        Some(store) => store.events_page(probe).await.is_ok_and(|r| !r.is_empty()),
        None => s
            .log
            .all()
            .iter()
            .any(|e| (e.id as i64) > first && matches(f, e)),
    }
}

fn event_id(raw: &str) -> Result<i64, ApiError> {
    parse_id("id", raw).map_err(|_| {
        ApiError::bad(format!(
            "`{}` is not an event id (a whole number from 1); /api/v1/events lists them",
            crate::recording::printable(raw)
        ))
    })
}

fn no_event(id: i64) -> ApiError {
    ApiError::not_found(format!("no event {id}; /api/v1/events lists them"))
}

pub(crate) async fn event(
    State(s): State<ApiState>,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = event_id(&raw)?;
    match &s.store {
        Some(store) => {
            let row = store
                .event(id)
                .await
                .map_err(ApiError::store)?
                .ok_or_else(|| no_event(id))?;
            let mut v = object(row_json(&row));
            v.insert(
                "rms_profile".into(),
                row.profile_json.clone().unwrap_or(Value::Null),
            );
            v.insert("has_waveform".into(), json!(row.has_waveform));
            Ok(Json(Value::Object(v)))
        }
        None => s
            .log
            .get(id as u64)
            .map(|e| Json(e.to_json_with_profile()))
            .ok_or_else(|| no_event(id)),
    }
}

/// An event's capture as stored: the node's waveform as JSON (channels, rate, start, volts),
/// or bytes written by something else (a COMTRADE file).
enum Capture {
    Json(Value),
    Bytes(Vec<u8>),
}

async fn capture(s: &ApiState, id: i64) -> Result<(Capture, DateTime<Utc>, String), ApiError> {
    let none = || {
        ApiError::not_found(format!(
            "event {id} has no waveform capture (only sensor nodes capture, and only at an \
             event's start)"
        ))
    };
    match &s.store {
        Some(store) => {
            let row = store
                .event(id)
                .await
                .map_err(ApiError::store)?
                .ok_or_else(|| no_event(id))?;
            let bytes = store
                .event_waveform(id)
                .await
                .map_err(ApiError::store)?
                .ok_or_else(none)?;
            let c = match serde_json::from_slice::<Value>(&bytes) {
                Ok(v) => Capture::Json(v),
                Err(_) => Capture::Bytes(bytes),
            };
            Ok((c, row.start, row.source))
        }
        None => {
            let e = s.log.get(id as u64).ok_or_else(|| no_event(id))?;
            let w = e.waveform.as_ref().ok_or_else(none)?;
            Ok((Capture::Json(json!(&**w)), e.body.start(), e.source.clone()))
        }
    }
}

pub(crate) async fn waveform(
    State(s): State<ApiState>,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = event_id(&raw)?;
    Ok(match capture(&s, id).await?.0 {
        Capture::Json(v) => Json(v).into_response(),
        Capture::Bytes(b) => {
            ([(header::CONTENT_TYPE, "application/octet-stream")], b).into_response()
        }
    })
}

/// The node's capture as stored (`sources::pqlink::Waveform` serialised).
#[derive(Deserialize)]
struct StoredCapture {
    start: DateTime<Utc>,
    sample_rate_hz: u32,
    channels: Vec<String>,
    volts: Vec<Vec<f32>>,
}

/// The capture as a COMTRADE recording: one analog channel per node channel, in volts, the
/// event's start as the trigger.
fn recording_of(
    c: StoredCapture,
    source: &str,
    trigger: DateTime<Utc>,
) -> Result<crate::recording::Recording, String> {
    use crate::recording::{AnalogChannel, DataFormat, Recording, Revision, Scaling};
    if c.sample_rate_hz == 0 {
        return Err("the capture gives no sample rate".into());
    }
    let n = c.volts.first().map_or(0, Vec::len);
    let analog = c
        .channels
        .iter()
        .zip(c.volts)
        .enumerate()
        .map(|(i, (name, v))| {
            let values: Vec<f64> = v.into_iter().map(f64::from).collect();
            let (min, max) = values
                .iter()
                .filter(|v| v.is_finite())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                });
            AnalogChannel {
                index: i as u32 + 1,
                name: name.clone(),
                phase: name.clone(),
                circuit: String::new(),
                unit: "V".into(),
                a: 1.0,
                b: 0.0,
                skew_s: 0.0,
                min: if min.is_finite() { min } else { 0.0 },
                max: if max.is_finite() { max } else { 0.0 },
                primary: 1.0,
                secondary: 1.0,
                scaling: Scaling::Primary,
                values,
            }
        })
        .collect();
    Ok(Recording {
        station: source.to_string(),
        device: "kare".into(),
        revision: Revision::Y1999,
        line_frequency_hz: None,
        start: Some(c.start),
        start_unreadable: None,
        trigger: Some(trigger),
        samples_declared: None,
        time_s: (0..n)
            .map(|i| i as f64 / f64::from(c.sample_rate_hz))
            .collect(),
        rates: Vec::new(),
        analog,
        digital: Vec::new(),
        data_format: DataFormat::Ascii,
    })
}

pub(crate) async fn comtrade(
    State(s): State<ApiState>,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = event_id(&raw)?;
    let (c, trigger, source) = capture(&s, id).await?;
    let cannot = |why: String| {
        ApiError::not_found(format!(
            "event {id}'s capture cannot be written as COMTRADE: {why}"
        ))
    };
    let bytes = match c {
        Capture::Bytes(b) if b.starts_with(b"--- file type:") => b,
        Capture::Bytes(_) => return Err(cannot("it is not a capture kare wrote".into())),
        Capture::Json(v) => {
            let c: StoredCapture = serde_json::from_value(v).map_err(|e| cannot(e.to_string()))?;
            let rec = recording_of(c, &source, trigger).map_err(cannot)?;
            crate::recording::comtrade::cff_bytes(&rec).map_err(cannot)?
        }
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"kare-event-{id}.cff\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Vec<(String, String)> {
        s.split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    #[test]
    fn events_query_defaults_and_every_filter() {
        let f = parse_filter(&q("")).unwrap();
        assert_eq!(f.limit, DEFAULT_LIMIT);
        // A `+` left unescaped in a URL arrives as a space: taken as the `+` it was.
        let f = parse_filter(&q("to=2026-03-02T06:00:00 08:00")).unwrap();
        assert_eq!(f.to.unwrap().to_rfc3339(), "2026-03-01T22:00:00+00:00");
        let f = parse_filter(&q(
            "from=2026-03-01&to=2026-03-02T06:00:00+08:00&kind=dip,swell&source=feeder-1&limit=1000&before=7",
        ))
        .unwrap();
        assert_eq!(f.from.unwrap().to_rfc3339(), "2026-03-01T00:00:00+00:00");
        assert_eq!(f.to.unwrap().to_rfc3339(), "2026-03-01T22:00:00+00:00");
        assert_eq!(f.kinds, vec!["dip", "swell"]);
        assert_eq!(f.source.as_deref(), Some("feeder-1"));
        assert_eq!((f.limit, f.before_id), (1000, Some(7)));
    }

    #[test]
    fn events_query_refusals_say_what_is_wrong() {
        for (query, says) in [
            ("limit=0", "`limit` must be a whole number from 1 to 1000"),
            ("limit=1001", "from 1 to 1000"),
            ("limit=ten", "got `ten`"),
            ("before=-3", "`before` must be an event id"),
            ("after=x", "`after` must be an event id"),
            ("before=3&after=1", "not both"),
            ("from=yesterday", "`from` must be a time"),
            (
                "from=+10000-01-01",
                "`from` must be in the years 1970 to 9999",
            ),
            (
                "from=-262143-01-01",
                "`from` must be in the years 1970 to 9999",
            ),
            ("to=+10000-01-01", "`to` must be in the years"),
            ("to=1969-12-31", "`to` must be in the years"),
            ("from=2026-03-02&to=2026-03-01", "`to` must be after `from`"),
            ("from=2026-03-01&to=2026-03-01", "`to` must be after `from`"),
            ("kind=dips", "unknown kind `dips`; kinds are dip, swell"),
            ("kind=", "`kind` is empty"),
            ("source=", "`source` is empty"),
            ("limit=5&limit=6", "`limit` is given twice"),
            ("lmit=5", "unknown parameter `lmit`"),
        ] {
            let e = parse_filter(&q(query)).unwrap_err();
            assert!(e.contains(says), "{query}: {e}");
        }
    }
}
