//! The live event log: every event since start, in order, open ones updated in place. It serves
//! the console and the stream; the store is the record.

use crate::pipeline::coarse::CoarseEvent;
use crate::pipeline::events::{event_json, round, ReportedEvent};
use crate::sources::pqlink::{RmsProfile, Waveform};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use std::collections::HashMap;
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
