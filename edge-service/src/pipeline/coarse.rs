//! Coarse supply detection from polled meter voltages, for sites without a sensor node.
//!
//! A meter polled every few seconds cannot see a dip; it can see that the supply is gone or has
//! been low for minutes. This module judges polled phase voltages with the same thresholds as the
//! half-cycle detector, and says in every event how coarse it is: the start and end are the polls
//! that saw the change, so each is late by up to one poll period.
//!
//! - **outage**: every phase below the interruption threshold; ends when any phase is at or above
//!   threshold + hysteresis.
//! - **undervoltage** / **overvoltage** (IEEE 1159 long-duration variations): any phase below the
//!   dip threshold / above the swell threshold for longer than `sustain` (1 min by default);
//!   reported once the minute has passed, with its start at the first poll that saw it.

use crate::sources::meters::readings::{MeterReading, Quantity};
use chrono::{DateTime, Duration, Utc};
use kare_firmware::detector::Thresholds;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What the coarse detector reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CoarseKind {
    /// Every phase below the interruption threshold.
    Outage,
    /// A phase below the dip threshold for longer than the sustain time.
    Undervoltage,
    /// A phase above the swell threshold for longer than the sustain time.
    Overvoltage,
}

impl CoarseKind {
    /// The event's kind as the API, the store and InfluxDB name it.
    pub fn as_str(self) -> &'static str {
        match self {
            CoarseKind::Outage => "outage_coarse",
            CoarseKind::Undervoltage => "undervoltage",
            CoarseKind::Overvoltage => "overvoltage",
        }
    }
}

/// A coarse event, started or ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CoarseEvent {
    /// Bus name.
    pub source: Arc<str>,
    /// Device name.
    pub device: Arc<str>,
    /// What.
    pub kind: CoarseKind,
    /// The first poll that saw it.
    pub start: DateTime<Utc>,
    /// The first poll that saw it over; `None` while it lasts.
    pub end: Option<DateTime<Utc>>,
    /// Lowest (outage, undervoltage) or highest (overvoltage) phase voltage polled, % of Udin.
    pub extreme_pct: f64,
    /// Each time stamp is late by up to this much (the poll period).
    pub resolution_s: f64,
}

#[derive(Debug, Default)]
struct DeviceState {
    latest: BTreeMap<Quantity, f64>,
    last_poll: Option<DateTime<Utc>>,
    outage: Option<CoarseEvent>,
    low_since: Option<(DateTime<Utc>, f64)>,
    high_since: Option<(DateTime<Utc>, f64)>,
    under: Option<CoarseEvent>,
    over: Option<CoarseEvent>,
}

/// The coarse detector for every device of one bus.
#[derive(Debug)]
pub struct CoarseDetector {
    thresholds: Thresholds,
    sustain: Duration,
    devices: BTreeMap<Arc<str>, DeviceState>,
}

impl CoarseDetector {
    /// A detector with `thresholds` (Udin in volts, phase to neutral) and the IEEE 1159 minute
    /// for sustained under- and overvoltage.
    pub fn new(thresholds: Thresholds) -> Self {
        CoarseDetector {
            thresholds,
            sustain: Duration::seconds(60),
            devices: BTreeMap::new(),
        }
    }

    /// Sets how long a low or high voltage must last to be reported.
    pub fn with_sustain(mut self, sustain: Duration) -> Self {
        self.sustain = sustain;
        self
    }

    /// Judges one poll of one device (all its readings, same time stamp); returns events that
    /// started or ended.
    pub fn observe(&mut self, readings: &[MeterReading]) -> Vec<CoarseEvent> {
        let mut out = Vec::new();
        let Some(first) = readings.iter().find(|r| r.quantity.is_phase_voltage()) else {
            return out;
        };
        let (source, device, at) = (first.source.clone(), first.device.clone(), first.at);
        let t = self.thresholds;
        let pct = |v: f64| v / t.udin as f64 * 100.0;
        let st = self.devices.entry(device.clone()).or_default();
        for r in readings.iter().filter(|r| r.quantity.is_phase_voltage()) {
            st.latest.insert(r.quantity, r.value);
        }
        let resolution_s = st
            .last_poll
            .map(|p| (at - p).num_milliseconds() as f64 / 1000.0)
            .unwrap_or(0.0);
        st.last_poll = Some(at);
        let phases: Vec<f64> = st.latest.values().map(|v| pct(*v)).collect();
        let lowest = phases.iter().copied().fold(f64::INFINITY, f64::min);
        let highest = phases.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let event = |kind, extreme_pct| CoarseEvent {
            source: source.clone(),
            device: device.clone(),
            kind,
            start: at,
            end: None,
            extreme_pct,
            resolution_s,
        };

        // Outage: all phases gone.
        match &mut st.outage {
            None if highest < t.interruption_pct as f64 => {
                let e = event(CoarseKind::Outage, lowest);
                st.outage = Some(e.clone());
                out.push(e);
            }
            Some(e) if highest >= (t.interruption_pct + t.hysteresis_pct) as f64 => {
                e.end = Some(at);
                e.resolution_s = e.resolution_s.max(resolution_s);
                out.push(e.clone());
                st.outage = None;
            }
            Some(e) => e.extreme_pct = e.extreme_pct.min(lowest),
            None => {}
        }

        // Sustained undervoltage (not during an outage, which is reported as such).
        if st.outage.is_some() {
            st.low_since = None;
        }
        let low = lowest < t.dip_pct as f64 && st.outage.is_none();
        let recovered_low = lowest >= (t.dip_pct + t.hysteresis_pct) as f64;
        sustained(
            &mut st.low_since,
            &mut st.under,
            low,
            recovered_low,
            lowest,
            f64::min,
            at,
            self.sustain,
            || event(CoarseKind::Undervoltage, lowest),
            &mut out,
        );
        let high = highest > t.swell_pct as f64;
        let recovered_high = highest <= (t.swell_pct - t.hysteresis_pct) as f64;
        sustained(
            &mut st.high_since,
            &mut st.over,
            high,
            recovered_high,
            highest,
            f64::max,
            at,
            self.sustain,
            || event(CoarseKind::Overvoltage, highest),
            &mut out,
        );
        out
    }
}

/// The shared rule of under- and overvoltage: remember when the level was first crossed; report
/// once it has held for `sustain`; end when it has recovered past the hysteresis.
#[allow(clippy::too_many_arguments)]
fn sustained(
    since: &mut Option<(DateTime<Utc>, f64)>,
    active: &mut Option<CoarseEvent>,
    crossed: bool,
    recovered: bool,
    level: f64,
    worse: fn(f64, f64) -> f64,
    at: DateTime<Utc>,
    sustain: Duration,
    make: impl FnOnce() -> CoarseEvent,
    out: &mut Vec<CoarseEvent>,
) {
    if let Some(e) = active {
        if recovered {
            e.end = Some(at);
            out.push(e.clone());
            *active = None;
            *since = None;
        } else {
            e.extreme_pct = worse(e.extreme_pct, level);
        }
        return;
    }
    match since {
        Some((start, extreme)) if crossed || !recovered => {
            *extreme = worse(*extreme, level);
            if at - *start >= sustain {
                let mut e = make();
                e.start = *start;
                e.extreme_pct = *extreme;
                *active = Some(e.clone());
                out.push(e);
            }
        }
        Some(_) => *since = None,
        None if crossed => *since = Some((at, level)),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll(secs: i64, volts: [f64; 3]) -> Vec<MeterReading> {
        let at = DateTime::<Utc>::UNIX_EPOCH + Duration::seconds(1_800_000_000 + secs);
        [Quantity::VoltageA, Quantity::VoltageB, Quantity::VoltageC]
            .iter()
            .zip(volts)
            .map(|(q, v)| MeterReading {
                source: "bus".into(),
                device: "meter-1".into(),
                at,
                quantity: *q,
                value: v,
            })
            .collect()
    }

    #[test]
    fn an_outage_starts_and_ends_at_the_polls_that_saw_it() {
        let mut d = CoarseDetector::new(Thresholds::typical(230.0));
        assert!(d.observe(&poll(0, [230.0; 3])).is_empty());
        let s = d.observe(&poll(5, [0.5, 0.4, 0.6]));
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].kind, CoarseKind::Outage);
        assert_eq!(s[0].resolution_s, 5.0, "late by up to one poll");
        assert!(s[0].end.is_none());
        assert!(d.observe(&poll(10, [0.0; 3])).is_empty());
        // One phase back at 11 % (< 10 + 2): still out.
        assert!(d.observe(&poll(15, [25.3, 0.0, 0.0])).is_empty());
        let e = d.observe(&poll(20, [229.0, 230.0, 231.0]));
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].end.unwrap() - e[0].start).num_seconds(), 15);
        assert!(e[0].extreme_pct < 0.2);
    }

    #[test]
    fn one_phase_lost_is_not_an_outage_but_a_sustained_undervoltage_after_a_minute() {
        let mut d = CoarseDetector::new(Thresholds::typical(230.0));
        let mut events = Vec::new();
        for s in (0..=120).step_by(10) {
            events.extend(d.observe(&poll(s, [0.0, 230.0, 230.0])));
        }
        assert!(events.iter().all(|e| e.kind != CoarseKind::Outage));
        let under: Vec<_> = events
            .iter()
            .filter(|e| e.kind == CoarseKind::Undervoltage)
            .collect();
        assert_eq!(under.len(), 1, "reported once, after the minute");
        assert_eq!(under[0].start, poll(0, [0.0; 3])[0].at);
        assert!(under[0].end.is_none());
    }

    #[test]
    fn a_long_outage_is_not_also_an_undervoltage() {
        let mut d = CoarseDetector::new(Thresholds::typical(230.0));
        let mut events = Vec::new();
        for s in (0..=180).step_by(10) {
            events.extend(d.observe(&poll(s, [0.0; 3])));
        }
        events.extend(d.observe(&poll(190, [230.0; 3])));
        let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [CoarseKind::Outage, CoarseKind::Outage],
            "start and end only"
        );
    }

    #[test]
    fn a_short_sag_between_polls_is_not_reported() {
        let mut d = CoarseDetector::new(Thresholds::typical(230.0));
        let mut events = Vec::new();
        for (s, v) in [(0, 230.0), (10, 200.0), (20, 230.0), (90, 230.0)] {
            events.extend(d.observe(&poll(s, [v; 3])));
        }
        assert!(events.is_empty(), "{events:?}");
    }

    #[test]
    fn sustained_overvoltage_ends_past_the_hysteresis() {
        let mut d =
            CoarseDetector::new(Thresholds::typical(230.0)).with_sustain(Duration::seconds(30));
        let mut events = Vec::new();
        for (s, v) in [
            (0, 260.0),
            (20, 262.0),
            (40, 258.0),
            (50, 250.0),
            (60, 248.0),
        ] {
            events.extend(d.observe(&poll(s, [v, 230.0, 230.0])));
        }
        // 250 V is 108.7 %: at or below 110 − 2 = 108? No; 248 V (107.8 %) is.
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[1].kind, CoarseKind::Overvoltage);
        assert!((events[1].extreme_pct - 262.0 / 2.3).abs() < 1e-9);
        assert_eq!((events[1].end.unwrap() - events[1].start).num_seconds(), 60);
    }
}
