//! The live event log: the latest events, in order, open ones updated in place, bounded (the
//! oldest closed ones go first). It serves the console and the stream; the store is the record
//! (and the API's list, when there is a store).

use crate::pipeline::coarse::CoarseEvent;
use crate::pipeline::events::{event_json, round, ReportedEvent};
use crate::sources::pqlink::{RmsProfile, Waveform};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

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

/// How many events the live log keeps by default: the store is the record, the log only serves
/// the console and the stream, so it keeps what a viewer may still be looking at.
pub const DEFAULT_CAP: usize = 10_000;

/// The events seen since start, in order, with open events updated in place. Bounded: past its
/// cap the oldest *closed* event is dropped first (an open one is still being written, and
/// there are only as many as sources × kinds).
#[derive(Debug)]
pub struct EventLog {
    inner: Mutex<LogInner>,
    cap: usize,
}

impl Default for EventLog {
    fn default() -> Self {
        EventLog::with_cap(DEFAULT_CAP)
    }
}

#[derive(Debug, Default)]
struct LogInner {
    /// Id → event, oldest first.
    events: BTreeMap<u64, LoggedEvent>,
    /// The last id given.
    last_id: u64,
    /// Events dropped to keep within the cap.
    dropped: u64,
    /// Log id → store id, once the event is written.
    stored: HashMap<u64, i64>,
    /// (source, detector id) → id of the open voltage event.
    open_voltage: HashMap<(String, u32), u64>,
    /// source → id of its open sensor-lost event.
    open_lost: HashMap<String, u64>,
    /// (source, detector id) → id of the latest voltage event with that id, for its profile.
    by_core: HashMap<(String, u32), u64>,
    /// source/device/kind → id of the open coarse event.
    open_coarse: HashMap<String, u64>,
}

impl LogInner {
    fn next_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }

    fn push(&mut self, ev: LoggedEvent, cap: usize) {
        self.events.insert(ev.id, ev);
        while self.events.len() > cap {
            let Some(oldest_closed) = self.events.values().find(|e| !e.is_open()).map(|e| e.id)
            else {
                break;
            };
            self.events.remove(&oldest_closed);
            self.stored.remove(&oldest_closed);
            self.by_core.retain(|_, id| *id != oldest_closed);
            self.dropped += 1;
        }
    }

    fn push_voltage(
        &mut self,
        source: &str,
        core_id: u32,
        e: ReportedEvent,
        cap: usize,
    ) -> LoggedEvent {
        let ev = LoggedEvent {
            id: self.next_id(),
            source: source.to_string(),
            body: EventBody::Voltage(e),
            profile: None,
            waveform: None,
        };
        self.by_core.insert((source.to_string(), core_id), ev.id);
        self.push(ev.clone(), cap);
        ev
    }
}

impl EventLog {
    /// A log that keeps at most `cap` closed events (at least 1).
    pub fn with_cap(cap: usize) -> Self {
        EventLog {
            inner: Mutex::new(LogInner::default()),
            cap: cap.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogInner> {
        // A panic elsewhere must not take the log with it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a new voltage event; returns it as logged.
    pub fn voltage_started(&self, source: &str, core_id: u32, e: ReportedEvent) -> LoggedEvent {
        let mut g = self.lock();
        let ev = g.push_voltage(source, core_id, e, self.cap);
        g.open_voltage.insert((source.to_string(), core_id), ev.id);
        ev
    }

    /// Closes a voltage event (or records it whole, if its start was never seen).
    pub fn voltage_ended(&self, source: &str, core_id: u32, e: ReportedEvent) -> LoggedEvent {
        let mut g = self.lock();
        let open = g.open_voltage.remove(&(source.to_string(), core_id));
        match open.and_then(|id| g.events.get_mut(&id)) {
            Some(ev) => {
                ev.body = EventBody::Voltage(e);
                ev.clone()
            }
            None => g.push_voltage(source, core_id, e, self.cap),
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
        let id = *g.by_core.get(&(source.to_string(), core_id))?;
        let ev = g.events.get_mut(&id)?;
        ev.profile = Some(Arc::new(profile));
        Some(ev.clone())
    }

    /// Attaches a waveform capture to the source's voltage event whose start it covers (the
    /// node captures from shortly before a trigger).
    pub fn attach_waveform(&self, source: &str, w: Arc<Waveform>) -> Option<u64> {
        let mut g = self.lock();
        let secs =
            w.volts.first().map(|v| v.len()).unwrap_or(0) as f64 / w.sample_rate_hz.max(1) as f64;
        let end = w.start + chrono::Duration::milliseconds((secs * 1000.0) as i64);
        let ev = g.events.values_mut().rev().find(|e| {
            e.source == source
                && e.waveform.is_none()
                && matches!(&e.body, EventBody::Voltage(v) if v.start >= w.start && v.start <= end)
        })?;
        ev.waveform = Some(w);
        Some(ev.id)
    }

    /// One event by id (while the log still holds it).
    pub fn get(&self, id: u64) -> Option<LoggedEvent> {
        self.lock().events.get(&id).cloned()
    }

    /// Records or updates a coarse event (keyed by source, device and kind while it lasts).
    pub fn coarse(&self, c: CoarseEvent) -> LoggedEvent {
        let mut g = self.lock();
        let key = format!("{}/{}/{:?}", c.source, c.device, c.kind);
        let ended = c.end.is_some();
        let open = g.open_coarse.get(&key).copied();
        let ev = match open.and_then(|id| g.events.get_mut(&id)) {
            Some(ev) => {
                ev.body = EventBody::Coarse(c);
                ev.clone()
            }
            None => {
                let ev = LoggedEvent {
                    id: g.next_id(),
                    source: c.source.to_string(),
                    body: EventBody::Coarse(c),
                    profile: None,
                    waveform: None,
                };
                g.open_coarse.insert(key.clone(), ev.id);
                g.push(ev.clone(), self.cap);
                ev
            }
        };
        if ended {
            g.open_coarse.remove(&key);
        }
        ev
    }

    /// Records a meter's own power-down record (each once: the same start is not logged twice).
    pub fn meter_power_down(
        &self,
        source: &str,
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
    ) -> Option<LoggedEvent> {
        let mut g = self.lock();
        let dup = g.events.values_mut().find(|e| {
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
            id: g.next_id(),
            source: source.to_string(),
            body: EventBody::MeterPowerDown { start, end },
            profile: None,
            waveform: None,
        };
        g.push(ev.clone(), self.cap);
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
            id: g.next_id(),
            source: source.to_string(),
            body: EventBody::SensorLost {
                start,
                end: None,
                reason,
            },
            profile: None,
            waveform: None,
        };
        g.open_lost.insert(source.to_string(), ev.id);
        g.push(ev.clone(), self.cap);
        Some(ev)
    }

    /// Closes the source's sensor-lost event.
    pub fn sensor_back(&self, source: &str, at: DateTime<Utc>) -> Option<LoggedEvent> {
        let mut g = self.lock();
        let id = g.open_lost.remove(source)?;
        let ev = g.events.get_mut(&id)?;
        if let EventBody::SensorLost { end, .. } = &mut ev.body {
            *end = Some(at);
        }
        Some(ev.clone())
    }

    /// Notes the store's id of a logged event, once it is written.
    pub fn set_store_id(&self, id: u64, store_id: i64) {
        let mut g = self.lock();
        if g.events.contains_key(&id) {
            g.stored.insert(id, store_id);
        }
    }

    /// The store's id of a logged event, once written (`None`: not yet, or no store).
    pub fn store_id(&self, id: u64) -> Option<i64> {
        self.lock().stored.get(&id).copied()
    }

    /// Events the log holds that are not in the store yet (waiting for a disk that cannot
    /// write), oldest first.
    pub fn unstored(&self) -> Vec<LoggedEvent> {
        let g = self.lock();
        g.events
            .values()
            .filter(|e| !g.stored.contains_key(&e.id))
            .cloned()
            .collect()
    }

    /// How many closed events were dropped to keep within the cap.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Every event the log holds, oldest first.
    pub fn all(&self) -> Vec<LoggedEvent> {
        self.lock().events.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, s).unwrap()
    }

    #[test]
    fn event_log_past_its_cap_drops_the_oldest_closed_event_and_keeps_open_ones() {
        let log = EventLog::with_cap(3);
        let lost = log.sensor_lost("node", at(0), "silent".into()).unwrap();
        let ids: Vec<u64> = (1..4)
            .map(|s| {
                log.meter_power_down("meter", at(s), Some(at(s) + chrono::Duration::seconds(1)))
                    .unwrap()
                    .id
            })
            .collect();
        // Four events, cap three: the oldest *closed* one went, the older open one stays.
        let kept: Vec<u64> = log.all().iter().map(|e| e.id).collect();
        assert_eq!(kept, vec![lost.id, ids[1], ids[2]]);
        assert_eq!(log.dropped(), 1);
        assert!(log.get(ids[0]).is_none());
        // The open event can still be ended.
        assert!(!log.sensor_back("node", at(9)).unwrap().is_open());
        // Ids go on from where they were, never reused.
        let next = log.meter_power_down("meter", at(20), None).unwrap();
        assert_eq!(next.id, ids[2] + 1);
    }

    #[test]
    fn event_log_knows_which_events_the_store_has() {
        let log = EventLog::default();
        let a = log.meter_power_down("meter", at(1), None).unwrap();
        let b = log.meter_power_down("meter", at(2), None).unwrap();
        log.set_store_id(a.id, 41);
        assert_eq!(log.store_id(a.id), Some(41));
        assert_eq!(log.store_id(b.id), None);
        let waiting: Vec<u64> = log.unstored().iter().map(|e| e.id).collect();
        assert_eq!(waiting, vec![b.id]);
    }
}
