//! What the pages read, behind a few functions that take the store when one is configured
//! (reads on its blocking pool; ids are the store's, stable across restarts) and the service's
//! memory otherwise (the live event log and ticket book). The pages never see which.

use crate::report::{Cell, Report};
use crate::web::charts::Profile;
use crate::web::ApiState;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

/// An event as the pages list it.
#[derive(Clone, Debug, PartialEq)]
pub struct EventItem {
    /// Store id (or the live log's, without a store).
    pub id: i64,
    /// `dip`, `swell`, `interruption`, `outage_coarse`…
    pub kind: String,
    /// Source name.
    pub source: String,
    /// Start.
    pub start: DateTime<Utc>,
    /// Seconds; `None` while open.
    pub duration_s: Option<f64>,
    /// Residual or maximum, % of Udin.
    pub extreme_pct: Option<f64>,
    /// Channel of the extreme.
    pub worst_channel: Option<String>,
    /// ITIC verdict.
    pub itic: Option<String>,
    /// SEMI F47 verdict.
    pub semi_f47: Option<String>,
    /// EN 50160 cell.
    pub en50160: Option<Cell>,
    /// Still in progress.
    pub open: bool,
    /// Channel names, in the profile's order.
    pub channels: Vec<String>,
}

impl EventItem {
    /// From the API's event JSON (the store keeps exactly that JSON too).
    pub fn from_json(id: i64, source: &str, open: bool, v: &Value) -> Option<EventItem> {
        let start = v.get("start")?.as_str()?;
        let start = DateTime::parse_from_rfc3339(start)
            .ok()?
            .with_timezone(&Utc);
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let f = |k: &str| v.get(k).and_then(Value::as_f64);
        let en50160 = v.get("en50160").and_then(|c| {
            Some(Cell {
                row: c.get("row")?.as_str()?.to_string(),
                column: c.get("column")?.as_str()?.to_string(),
            })
        });
        let channels = v
            .get("channel_extremes_pct")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        Some(EventItem {
            id,
            kind: s("kind")?,
            source: source.to_string(),
            start,
            duration_s: f("duration_s"),
            extreme_pct: f("extreme_pct"),
            worst_channel: s("worst_channel"),
            itic: s("itic"),
            semi_f47: s("semi_f47"),
            en50160,
            open,
            channels,
        })
    }
}

/// The events page's filter (already checked).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventFilter {
    /// Started at or after.
    pub from: Option<DateTime<Utc>>,
    /// Started before.
    pub to: Option<DateTime<Utc>>,
    /// Kind.
    pub kind: Option<String>,
    /// Source.
    pub source: Option<String>,
    /// At most this many (1…1000).
    pub limit: usize,
    /// Only ids below this (the next page, newest first).
    pub before: Option<i64>,
}

/// One page of events, newest first, and whether older ones remain. From the store: its keyset
/// page (`events_page`), one more than asked to know whether there are older ones; from memory:
/// the live log, filtered the same way (an event overlapping `[from, to)`).
pub async fn events(st: &ApiState, f: &EventFilter) -> Result<(Vec<EventItem>, bool), String> {
    let mut all: Vec<EventItem> = match &st.store {
        Some(store) => {
            let ask = crate::store::EventFilter {
                from: f.from,
                to: f.to,
                kinds: f.kind.iter().cloned().collect(),
                source: f.source.clone(),
                limit: f.limit.saturating_add(1),
                before_id: f.before,
                after_id: None,
            };
            store
                .events_page(ask)
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter_map(|r| EventItem::from_json(r.id, &r.source, r.open, &r.json))
                .collect()
        }
        None => {
            let mut v: Vec<EventItem> = st
                .log
                .all()
                .iter()
                .filter_map(|e| {
                    EventItem::from_json(e.id as i64, &e.source, e.is_open(), &e.to_json())
                })
                .collect();
            v.retain(|e| {
                let end = e.duration_s.and_then(|d| {
                    e.start
                        .checked_add_signed(Duration::microseconds((d * 1e6) as i64))
                });
                f.from.is_none_or(|t| end.is_none_or(|end| end > t))
                    && f.to.is_none_or(|t| e.start < t)
                    && f.kind.as_ref().is_none_or(|k| &e.kind == k)
                    && f.source.as_ref().is_none_or(|s| &e.source == s)
                    && f.before.is_none_or(|b| e.id < b)
            });
            v
        }
    };
    all.sort_by_key(|e| std::cmp::Reverse(e.id));
    let more = all.len() > f.limit;
    all.truncate(f.limit);
    Ok((all, more))
}

/// One event with what its page draws.
#[derive(Clone, Debug, PartialEq)]
pub struct EventDetail {
    /// The event.
    pub item: EventItem,
    /// Its Urms(1/2) profile, seconds from its start.
    pub profile: Option<Profile>,
    /// Its waveform capture, seconds from the event's start, volts.
    pub waveform: Option<Profile>,
    /// A capture is stored (downloadable as COMTRADE even when it cannot be drawn).
    pub has_waveform: bool,
}

/// One event, `None` when there is no such id.
pub async fn event(st: &ApiState, id: i64) -> Result<Option<EventDetail>, String> {
    match &st.store {
        Some(store) => {
            let Some(row) = store.event(id).await.map_err(|e| e.to_string())? else {
                return Ok(None);
            };
            let Some(item) = EventItem::from_json(row.id, &row.source, row.open, &row.json) else {
                return Ok(None);
            };
            let waveform = if row.has_waveform {
                store
                    .event_waveform(id)
                    .await
                    .map_err(|e| e.to_string())?
                    .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                    .and_then(|v| waveform_from_json(item.start, &v))
            } else {
                None
            };
            let profile = row
                .profile_json
                .as_ref()
                .and_then(|p| profile_from_json(&item, p));
            Ok(Some(EventDetail {
                item,
                profile,
                waveform,
                has_waveform: row.has_waveform,
            }))
        }
        None => {
            let Ok(uid) = u64::try_from(id) else {
                return Ok(None);
            };
            let Some(e) = st.log.get(uid) else {
                return Ok(None);
            };
            let Some(item) = EventItem::from_json(id, &e.source, e.is_open(), &e.to_json()) else {
                return Ok(None);
            };
            let profile = e
                .profile
                .as_deref()
                .and_then(|p| serde_json::to_value(p).ok())
                .and_then(|p| profile_from_json(&item, &p));
            let waveform = e
                .waveform
                .as_deref()
                .and_then(|w| serde_json::to_value(w).ok())
                .and_then(|v| waveform_from_json(item.start, &v));
            Ok(Some(EventDetail {
                item,
                profile,
                has_waveform: waveform.is_some(),
                waveform,
            }))
        }
    }
}

/// A stored RMS profile (`{records: [{start, pct: [...]}, ...]}`) as seconds from the event's
/// start and % of Udin per channel.
pub fn profile_from_json(e: &EventItem, v: &Value) -> Option<Profile> {
    let records = v.get("records")?.as_array()?;
    let mut t_s = Vec::with_capacity(records.len());
    let mut cols: Vec<Vec<f64>> = vec![];
    for r in records {
        let Some(start) = r
            .get("start")
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        else {
            continue;
        };
        let pct = r.get("pct").and_then(Value::as_array)?;
        if cols.len() < pct.len() {
            cols.resize(pct.len(), vec![f64::NAN; t_s.len()]);
        }
        t_s.push(
            (start.with_timezone(&Utc) - e.start)
                .num_microseconds()
                .unwrap_or(0) as f64
                / 1e6,
        );
        for (i, c) in cols.iter_mut().enumerate() {
            c.push(pct.get(i).and_then(Value::as_f64).unwrap_or(f64::NAN));
        }
    }
    if t_s.is_empty() {
        return None;
    }
    let channels = cols
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            (
                e.channels
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("{}", i + 1)),
                v,
            )
        })
        .collect();
    Some(Profile { t_s, channels })
}

/// Drawn samples of a waveform at most: a capture of a few cycles is kept whole.
const WAVEFORM_POINTS: usize = 4000;

/// A waveform capture (`{start, sample_rate_hz, channels, volts}`) for its chart, in seconds
/// from the event's start (the capture begins a little before it).
pub fn waveform_from_json(event_start: DateTime<Utc>, v: &Value) -> Option<Profile> {
    let rate = v.get("sample_rate_hz")?.as_f64().filter(|r| *r > 0.0)?;
    let offset = v
        .get("start")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .and_then(|t| (t.with_timezone(&Utc) - event_start).num_microseconds())
        .map_or(0.0, |us| us as f64 / 1e6);
    let names: Vec<String> = v
        .get("channels")?
        .as_array()?
        .iter()
        .map(|n| n.as_str().unwrap_or("?").to_string())
        .collect();
    let volts = v.get("volts")?.as_array()?;
    let n = volts
        .iter()
        .filter_map(Value::as_array)
        .map(Vec::len)
        .max()?;
    let step = n.div_ceil(WAVEFORM_POINTS).max(1);
    let t_s = (0..n)
        .step_by(step)
        .map(|i| offset + i as f64 / rate)
        .collect();
    let channels = volts
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let row = row.as_array().map(Vec::as_slice).unwrap_or(&[]);
            let vals = (0..n)
                .step_by(step)
                .map(|j| row.get(j).and_then(Value::as_f64).unwrap_or(f64::NAN))
                .collect();
            (
                names
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("{}", i + 1)),
                vals,
            )
        })
        .collect();
    Some(Profile { t_s, channels })
}

/// A ticket as the pages list it.
#[derive(Clone, Debug, PartialEq)]
pub struct TicketItem {
    /// Idempotency key.
    pub key: String,
    /// Kind.
    pub kind: String,
    /// `open`, `closed`, `cancelled`.
    pub state: String,
    /// `P1`…`P4`.
    pub priority: String,
    /// Title.
    pub title: String,
    /// When its subject began.
    pub opened_at: DateTime<Utc>,
    /// Ended.
    pub closed_at: Option<DateTime<Utc>>,
    /// Seconds.
    pub duration_s: Option<f64>,
    /// The event that raised it (store id), when known.
    pub event_id: Option<i64>,
}

/// How far back the tickets page reaches in the store.
const TICKETS_DAYS: i64 = 90;

/// Tickets, newest first: from the store (the last 90 days, and every open one), else those
/// raised since the service started.
pub async fn tickets(st: &ApiState) -> Result<Vec<TicketItem>, String> {
    let mut out: Vec<TicketItem> = match &st.store {
        Some(store) => {
            let now = Utc::now();
            let mut rows = store
                .tickets(now - Duration::days(TICKETS_DAYS), now + Duration::days(1))
                .await
                .map_err(|e| e.to_string())?;
            for open in store.open_tickets().await.map_err(|e| e.to_string())? {
                if !rows.iter().any(|r| r.key == open.key) {
                    rows.push(open);
                }
            }
            rows.into_iter()
                .map(|r| TicketItem {
                    key: r.key,
                    kind: r.kind,
                    state: r.state.as_str().to_string(),
                    priority: r.priority,
                    title: r.title,
                    opened_at: r.opened_at,
                    closed_at: r.closed_at,
                    duration_s: r.duration_s,
                    event_id: r.event_id,
                })
                .collect()
        }
        None => st
            .tickets
            .all()
            .into_iter()
            .map(|r| TicketItem {
                key: r.op.key,
                kind: r.op.kind.as_str().to_string(),
                state: r.op.state.as_str().to_string(),
                priority: r.op.priority,
                title: r.op.title,
                opened_at: r.op.opened_at,
                closed_at: r.op.closed_at,
                duration_s: r.op.duration_s,
                event_id: None,
            })
            .collect(),
    };
    out.sort_by(|a, b| {
        b.opened_at
            .cmp(&a.opened_at)
            .then_with(|| a.key.cmp(&b.key))
    });
    Ok(out)
}

/// Why there is no report to show.
#[derive(Clone, Debug, PartialEq)]
pub enum NoReport {
    /// No store configured: reports are computed from the store only.
    NoStore,
    /// The store could not be read.
    Store(String),
}

/// How long the report of a period that has ended is kept: a year's report takes about a second
/// to compute from the store, and an account manager flips between the languages and prints.
const REPORT_KEEP: std::time::Duration = std::time::Duration::from_secs(600);
/// Reports kept at most.
const REPORTS_KEPT: usize = 8;

type ReportKey = (String, DateTime<Utc>, DateTime<Utc>);

/// Reports of ended periods, newest last: (store path, from, to), when made, the report.
fn report_cache() -> &'static std::sync::Mutex<Vec<(ReportKey, std::time::Instant, Report)>> {
    static CACHE: std::sync::OnceLock<
        std::sync::Mutex<Vec<(ReportKey, std::time::Instant, Report)>>,
    > = std::sync::OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Whether the report of `[from, to)` from the store at `path` is kept.
#[cfg(test)]
pub(crate) fn report_kept(path: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
    let key: ReportKey = (path.to_string(), from, to);
    report_cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .any(|(k, _, _)| *k == key)
}

/// The report for `[from, to)`: the inputs read and the report built on the store's blocking
/// pool (never on an async worker). A period that has ended is kept for [`REPORT_KEEP`] (its
/// data no longer changes, except for a meter's late interval, which the next computation picks
/// up); one still running never is.
pub async fn report(
    st: &ApiState,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Report, NoReport> {
    let Some(store) = &st.store else {
        return Err(NoReport::NoStore);
    };
    let key: ReportKey = (store.path().to_string(), from, to);
    let ended = to <= Utc::now();
    if ended {
        let cache = report_cache().lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, _, r)) = cache
            .iter()
            .find(|(k, made, _)| *k == key && made.elapsed() < REPORT_KEEP)
        {
            return Ok(r.clone());
        }
    }
    let period = crate::report::Period { from, to };
    // Read and built on the store's blocking pool: a year's report is about a quarter of a
    // second of work, which an async worker must not spend.
    let r = store
        .with_reader(move |s| {
            let inputs = crate::report::load(s, &period)?;
            Ok(crate::report::build(&inputs, &period, Utc::now()))
        })
        .await
        .map_err(|e| NoReport::Store(e.to_string()))?;
    if ended {
        let mut cache = report_cache().lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|(k, made, _)| *k != key && made.elapsed() < REPORT_KEEP);
        if cache.len() >= REPORTS_KEPT {
            cache.remove(0);
        }
        cache.push((key, std::time::Instant::now(), r.clone()));
    }
    Ok(r)
}
