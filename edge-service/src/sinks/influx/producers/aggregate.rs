//! The half-cycle stream (100–120 values per second per source) folded into 1-second
//! aggregates: `urms` min/mean/max per phase and `frequency`, each second flagged when an event
//! covers it (IEC 61000-4-30).

use super::phase;
use crate::pipeline::events::round;
use crate::sinks::influx::point::{Class, Point};
use crate::sinks::interval::{Interval, IntervalAggregator};
use crate::sources::pqlink::Reading;
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::HashMap;

/// Turns the half-cycle stream (100–120 Urms(1/2) values per channel per second) into one
/// point per source, phase and second: min / mean / max Urms and the count of windows, plus
/// one frequency point per source and second. The fold is the history sink's
/// ([`IntervalAggregator`], 1 s wide); this adds the Influx points. A second is emitted when a
/// window of a later second arrives, or by [`flush_before`](Self::flush_before) when its source
/// has gone quiet.
///
/// Per IEC 61000-4-30, an aggregate containing a dip, swell or interruption is *flagged*:
/// the service says when a source's event starts and ends ([`set_event_active`](Self::set_event_active)),
/// and windows that are not locked to a real zero crossing (an interruption) flag it too.
#[derive(Debug)]
pub struct SecondAggregator {
    fold: IntervalAggregator,
    udin: HashMap<String, f64>,
    in_event: HashMap<String, bool>,
    done: Vec<Interval>,
}

impl Default for SecondAggregator {
    fn default() -> Self {
        SecondAggregator {
            fold: IntervalAggregator::new(1),
            udin: HashMap::new(),
            in_event: HashMap::new(),
            done: Vec::new(),
        }
    }
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
            self.fold.flag(source);
        }
    }

    /// Adds one half-cycle reading; completed seconds are appended to `out`.
    pub fn push(&mut self, r: &Reading, out: &mut Vec<Point>) {
        let flag = self.in_event.get(&*r.source).copied().unwrap_or(false);
        self.fold.push(r, flag, &mut self.done);
        self.emit_done(out);
    }

    /// Emits every second that ended a second or more before `now` (a source that went quiet).
    pub fn flush_before(&mut self, now: DateTime<Utc>, out: &mut Vec<Point>) {
        self.fold
            .flush_before(now - TimeDelta::seconds(1), &mut self.done);
        self.emit_done(out);
    }

    /// Emits every second in progress (at shutdown).
    pub fn finish(&mut self, out: &mut Vec<Point>) {
        self.fold.finish(&mut self.done);
        self.emit_done(out);
    }

    fn emit_done(&mut self, out: &mut Vec<Point>) {
        for s in std::mem::take(&mut self.done) {
            self.emit(s, out);
        }
    }

    /// Values are written to 1 mV, 0.001 % and 0.1 mHz: ten times finer than Class A's
    /// uncertainty (0.1 % of Udin, 10 mHz), and half the line length of a full f64 (the
    /// backlog holds twice the hours).
    fn emit(&self, s: Interval, out: &mut Vec<Point>) {
        let t = s.start;
        let source = s.source.as_str();
        let udin = self.udin.get(source).copied();
        for (i, c) in s.channels.iter().enumerate() {
            let Some(mean) = c.mean() else { continue };
            let mut p = Point::new("urms", Class::Readings, t)
                .tag("source", source)
                .tag("phase", phase(i))
                .field("min", round(c.min, 3))
                .field("mean", round(mean, 3))
                .field("max", round(c.max, 3))
                .field("count", c.n)
                .field("unlocked", s.unlocked)
                .field("flagged", s.flagged);
            if let Some(u) = udin {
                p = p
                    .field("min_pct", round(c.min / u * 100.0, 3))
                    .field("mean_pct", round(mean / u * 100.0, 3))
                    .field("max_pct", round(c.max / u * 100.0, 3));
            }
            out.push(p);
        }
        if let Some(mean) = s.frequency.mean() {
            out.push(
                Point::new("frequency", Class::Readings, t)
                    .tag("source", source)
                    .field("min", round(s.frequency.min, 4))
                    .field("mean", round(mean, 4))
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
