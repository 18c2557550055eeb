//! The half-cycle stream (100–120 values per second per source) folded into 1-second
//! aggregates: `urms` min/mean/max per phase and `frequency`, each second flagged when an event
//! covers it (IEC 61000-4-30).

use super::phase;
use crate::pipeline::events::round;
use crate::sinks::influx::point::{Class, Point};
use crate::sources::pqlink::Reading;
use chrono::{DateTime, TimeZone, Utc};
use std::collections::HashMap;

#[derive(Clone, Copy, Debug)]
struct MinMax {
    min: f64,
    max: f64,
    sum: f64,
    n: u32,
}

impl Default for MinMax {
    fn default() -> Self {
        MinMax {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: 0.0,
            n: 0,
        }
    }
}

impl MinMax {
    fn push(&mut self, v: f64) {
        if v.is_finite() {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
            self.sum += v;
            self.n += 1;
        }
    }
    fn mean(&self) -> f64 {
        self.sum / self.n as f64
    }
}

#[derive(Clone, Debug, Default)]
struct Second {
    /// Unix second the windows start in.
    second: i64,
    channels: Vec<MinMax>,
    frequency: MinMax,
    windows: u32,
    unlocked: u32,
    flagged: bool,
}

/// Turns the half-cycle stream (100–120 Urms(1/2) values per channel per second) into one
/// point per source, phase and second: min / mean / max Urms and the count of windows, plus
/// one frequency point per source and second. A window belongs to the second its start falls
/// in; a second is emitted when a window of a later second arrives, or by
/// [`flush_before`](Self::flush_before) when its source has gone quiet.
///
/// Per IEC 61000-4-30, an aggregate containing a dip, swell or interruption is *flagged*:
/// the service says when a source's event starts and ends ([`set_event_active`](Self::set_event_active)),
/// and windows that are not locked to a real zero crossing (an interruption) flag it too.
#[derive(Debug, Default)]
pub struct SecondAggregator {
    current: HashMap<String, Second>,
    udin: HashMap<String, f64>,
    in_event: HashMap<String, bool>,
}

impl SecondAggregator {
    /// An aggregator with no sources yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declared voltage of a source, volts: adds `min_pct` / `mean_pct` / `max_pct` (of Udin)
    /// to its points, which the GB/T 12325 deviation panels use.
    pub fn set_udin(&mut self, source: &str, udin: f64) {
        if udin.is_finite() && udin > 0.0 {
            self.udin.insert(source.to_string(), udin);
        }
    }

    /// Marks a source's event as in progress (true) or over (false). The second in progress
    /// and every second until the event ends are flagged.
    pub fn set_event_active(&mut self, source: &str, active: bool) {
        self.in_event.insert(source.to_string(), active);
        if active {
            if let Some(s) = self.current.get_mut(source) {
                s.flagged = true;
            }
        }
    }

    /// Adds one half-cycle reading; completed seconds are appended to `out`.
    pub fn push(&mut self, r: &Reading, out: &mut Vec<Point>) {
        let second = r.start.timestamp();
        let key: &str = &r.source;
        if self.current.get(key).is_some_and(|s| s.second != second) {
            if let Some(done) = self.current.remove(key) {
                self.emit(key, done, out);
            }
        }
        let flagged_now = self.in_event.get(key).copied().unwrap_or(false);
        let s = self
            .current
            .entry(key.to_string())
            .or_insert_with(|| Second {
                second,
                ..Default::default()
            });
        let n = (r.channels as usize).min(r.volts.len());
        if s.channels.len() < n {
            s.channels.resize(n, MinMax::default());
        }
        for (acc, v) in s.channels.iter_mut().zip(&r.volts[..n]) {
            acc.push(*v as f64);
        }
        s.windows += 1;
        if r.locked {
            s.frequency.push(r.frequency_hz as f64);
        } else {
            s.unlocked += 1;
            s.flagged = true;
        }
        s.flagged |= flagged_now;
    }

    /// Emits every second that started before `now - 1 s` (a source that went quiet).
    pub fn flush_before(&mut self, now: DateTime<Utc>, out: &mut Vec<Point>) {
        let limit = now.timestamp() - 1;
        let done: Vec<String> = self
            .current
            .iter()
            .filter(|(_, s)| s.second < limit)
            .map(|(k, _)| k.clone())
            .collect();
        for k in done {
            if let Some(s) = self.current.remove(&k) {
                self.emit(&k, s, out);
            }
        }
    }

    /// Emits every second in progress (at shutdown).
    pub fn finish(&mut self, out: &mut Vec<Point>) {
        let all: Vec<(String, Second)> = self.current.drain().collect();
        for (k, s) in all {
            self.emit(&k, s, out);
        }
    }

    /// Values are written to 1 mV, 0.001 % and 0.1 mHz: ten times finer than Class A's
    /// uncertainty (0.1 % of Udin, 10 mHz), and half the line length of a full f64 (the
    /// backlog holds twice the hours).
    fn emit(&self, source: &str, s: Second, out: &mut Vec<Point>) {
        let Some(t) = Utc.timestamp_opt(s.second, 0).single() else {
            return;
        };
        let udin = self.udin.get(source).copied();
        for (i, c) in s.channels.iter().enumerate() {
            if c.n == 0 {
                continue;
            }
            let mut p = Point::new("urms", Class::Readings, t)
                .tag("source", source)
                .tag("phase", phase(i))
                .field("min", round(c.min, 3))
                .field("mean", round(c.mean(), 3))
                .field("max", round(c.max, 3))
                .field("count", c.n)
                .field("unlocked", s.unlocked)
                .field("flagged", s.flagged);
            if let Some(u) = udin {
                p = p
                    .field("min_pct", round(c.min / u * 100.0, 3))
                    .field("mean_pct", round(c.mean() / u * 100.0, 3))
                    .field("max_pct", round(c.max / u * 100.0, 3));
            }
            out.push(p);
        }
        if s.frequency.n > 0 {
            out.push(
                Point::new("frequency", Class::Readings, t)
                    .tag("source", source)
                    .field("min", round(s.frequency.min, 4))
                    .field("mean", round(s.frequency.mean(), 4))
                    .field("max", round(s.frequency.max, 4))
                    .field("count", s.frequency.n)
                    .field("flagged", s.flagged),
            );
        }
    }
}

/// 1-second aggregates of a run of half-cycle readings (completed seconds only; the rest stays
/// in the aggregator for the next call).
pub fn points_from_readings(agg: &mut SecondAggregator, readings: &[Reading]) -> Vec<Point> {
    let mut out = Vec::new();
    for r in readings {
        agg.push(r, &mut out);
    }
    out
}
