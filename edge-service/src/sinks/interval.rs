//! The half-cycle stream folded into fixed intervals (width a parameter): per source, each
//! channel's Urms min / mean / max, the frequency of the locked windows, and whether the
//! interval is flagged (IEC 61000-4-30: an event in progress, or a window not locked to a real
//! zero crossing). Intervals of one width merge exactly into a wider one ([`Interval::merge`]),
//! so the history sink folds once into 10 s and builds its 10-minute aggregates from those.

use crate::sources::pqlink::Reading;
use chrono::{DateTime, TimeZone, Utc};
use std::collections::HashMap;

/// Lowest, highest, sum and count of finite values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MinMax {
    /// Lowest.
    pub min: f64,
    /// Highest.
    pub max: f64,
    /// Sum.
    pub sum: f64,
    /// Values.
    pub n: u32,
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
    /// Adds a value (a value that is not finite is not one).
    pub fn push(&mut self, v: f64) {
        if v.is_finite() {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
            self.sum += v;
            self.n += 1;
        }
    }

    /// Adds everything `o` holds.
    pub fn merge(&mut self, o: &MinMax) {
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.sum += o.sum;
        self.n += o.n;
    }

    /// The mean; `None` when nothing was added.
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / f64::from(self.n))
    }
}

/// One source's fold over one interval.
#[derive(Clone, Debug, PartialEq)]
pub struct Interval {
    /// Source name.
    pub source: String,
    /// Start (a multiple of the width since the epoch).
    pub start: DateTime<Utc>,
    /// Width, seconds.
    pub seconds: i64,
    /// Urms(1/2) per channel, by position.
    pub channels: Vec<MinMax>,
    /// Frequency of the locked windows.
    pub frequency: MinMax,
    /// Windows folded in.
    pub windows: u32,
    /// Windows not locked to a zero crossing.
    pub unlocked: u32,
    /// An event was in progress, or a window was unlocked.
    pub flagged: bool,
}

impl Interval {
    fn new(source: &str, start: DateTime<Utc>, seconds: i64) -> Self {
        Interval {
            source: source.to_string(),
            start,
            seconds,
            channels: Vec::new(),
            frequency: MinMax::default(),
            windows: 0,
            unlocked: 0,
            flagged: false,
        }
    }

    /// Folds a narrower interval of the same source into this one.
    pub fn merge(&mut self, o: &Interval) {
        if self.channels.len() < o.channels.len() {
            self.channels.resize(o.channels.len(), MinMax::default());
        }
        for (a, b) in self.channels.iter_mut().zip(&o.channels) {
            a.merge(b);
        }
        self.frequency.merge(&o.frequency);
        self.windows += o.windows;
        self.unlocked += o.unlocked;
        self.flagged |= o.flagged;
    }

    /// The end.
    pub fn end(&self) -> DateTime<Utc> {
        self.start + chrono::TimeDelta::seconds(self.seconds)
    }
}

/// The start of the `seconds`-wide interval `t` falls in.
pub fn interval_start(t: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
    let w = seconds.max(1);
    let s = t.timestamp().div_euclid(w) * w;
    Utc.timestamp_opt(s, 0).single().unwrap_or(t)
}

/// Folds readings into intervals of a fixed width, per source. An interval is complete when a
/// reading of a later interval of its source arrives, or when [`Self::flush_before`] finds its
/// source quiet.
#[derive(Debug)]
pub struct IntervalAggregator {
    seconds: i64,
    current: HashMap<String, Interval>,
}

impl IntervalAggregator {
    /// An aggregator of `seconds`-wide intervals (at least 1).
    pub fn new(seconds: i64) -> Self {
        IntervalAggregator {
            seconds: seconds.max(1),
            current: HashMap::new(),
        }
    }

    /// Flags the interval in progress of `source` (an event began in it).
    pub fn flag(&mut self, source: &str) {
        if let Some(i) = self.current.get_mut(source) {
            i.flagged = true;
        }
    }

    /// Adds one half-cycle reading (`flag`: an event of its source is in progress); completed
    /// intervals are appended to `out`.
    pub fn push(&mut self, r: &Reading, flag: bool, out: &mut Vec<Interval>) {
        let start = interval_start(r.start, self.seconds);
        let key: &str = &r.source;
        if self.current.get(key).is_some_and(|i| i.start != start) {
            out.extend(self.current.remove(key));
        }
        let seconds = self.seconds;
        let i = self
            .current
            .entry(key.to_string())
            .or_insert_with(|| Interval::new(key, start, seconds));
        let n = (r.channels as usize).min(r.volts.len());
        if i.channels.len() < n {
            i.channels.resize(n, MinMax::default());
        }
        for (acc, v) in i.channels.iter_mut().zip(&r.volts[..n]) {
            acc.push(f64::from(*v));
        }
        i.windows += 1;
        if r.locked {
            i.frequency.push(f64::from(r.frequency_hz));
        } else {
            i.unlocked += 1;
            i.flagged = true;
        }
        i.flagged |= flag;
    }

    /// Completes every interval that ended before `now` (a source that went quiet).
    pub fn flush_before(&mut self, now: DateTime<Utc>, out: &mut Vec<Interval>) {
        let done: Vec<String> = self
            .current
            .iter()
            .filter(|(_, i)| i.end() <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in done {
            out.extend(self.current.remove(&k));
        }
    }

    /// Completes every interval in progress (at a stop).
    pub fn finish(&mut self, out: &mut Vec<Interval>) {
        out.extend(self.current.drain().map(|(_, i)| i));
    }
}
