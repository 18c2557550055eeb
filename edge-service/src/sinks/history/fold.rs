//! The pure part of the history sink: readings, events and meter polls in, the store's history
//! rows out. No I/O, no clock of its own (times are the data's).

use crate::sinks::interval::{interval_start, Interval, IntervalAggregator, MinMax};
use crate::sources::meters::readings::{MeterReading, Quantity};
use crate::sources::pqlink::Reading;
use crate::store::{AggregateRow, FrequencyRow, MeterIntervalRow};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// Frequency values, seconds (IEC 61000-4-30 §5.1: 10 s).
pub const FREQUENCY_S: i64 = 10;
/// Voltage aggregates, seconds (10 min).
pub const AGGREGATE_S: i64 = 600;
/// Meter intervals, seconds (the tariff's 15 min).
pub const METER_S: i64 = 900;
/// How long a completed 10-s interval waits, in data time, before it is judged and written:
/// readings and events reach the sink through different channels, so the event of a dip that
/// began in an interval's last half-cycles can arrive after the next interval's first reading.
pub const HOLD_S: i64 = 2;

/// Rows ready for the store.
#[derive(Debug, Default, PartialEq)]
pub struct Rows {
    /// 10-minute aggregates.
    pub aggregates: Vec<AggregateRow>,
    /// 10-second frequency.
    pub frequency: Vec<FrequencyRow>,
    /// 15-minute meter intervals.
    pub meters: Vec<MeterIntervalRow>,
}

impl Rows {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.aggregates.is_empty() && self.frequency.is_empty() && self.meters.is_empty()
    }
}

/// What a source's node says about itself: channel names and nominal frequency.
#[derive(Clone, Debug, Default)]
pub struct SourceInfo {
    /// Channel names by position (`VA`, `VB`, `VC`).
    pub channels: Vec<String>,
    /// Declared voltage, V.
    pub udin_v: f64,
    /// Nominal frequency, Hz (0: not known yet).
    pub nominal_hz: f64,
}

/// An event's start and end (`None` while open).
type Span = (DateTime<Utc>, Option<DateTime<Utc>>);

#[derive(Debug)]
struct MeterAcc {
    start: DateTime<Utc>,
    import_kwh: Option<f64>,
    export_kwh: Option<f64>,
    import_kvarh: Option<f64>,
    power: MinMax,
    power_factor: Option<f64>,
    thd_u_pct: Option<f64>,
    samples: u32,
}

/// The fold.
#[derive(Debug)]
pub struct HistoryFold {
    tens: IntervalAggregator,
    ten_min: HashMap<String, Interval>,
    /// Dips, swells and interruptions per source: (start, end; `None` while open).
    spans: HashMap<String, Vec<Span>>,
    meters: HashMap<(String, String), MeterAcc>,
    /// Completed 10-s intervals waiting [`HOLD_S`] for a late event, oldest first.
    held: Vec<Interval>,
}

impl Default for HistoryFold {
    fn default() -> Self {
        HistoryFold {
            tens: IntervalAggregator::new(FREQUENCY_S),
            ten_min: HashMap::new(),
            spans: HashMap::new(),
            meters: HashMap::new(),
            held: Vec::new(),
        }
    }
}

impl HistoryFold {
    /// A dip, swell or interruption of `source`, new or ended: intervals it overlaps are flagged.
    pub fn voltage_event(
        &mut self,
        source: &str,
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
    ) {
        let spans = self.spans.entry(source.to_string()).or_default();
        match spans.iter_mut().find(|(s, _)| *s == start) {
            Some(span) => span.1 = end,
            None => spans.push((start, end)),
        }
    }

    fn overlapped(&self, source: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
        self.spans
            .get(source)
            .is_some_and(|v| v.iter().any(|(s, e)| *s < to && e.is_none_or(|e| e > from)))
    }

    /// Adds a half-cycle reading; what it completes is held [`HOLD_S`] of its source's data
    /// time, then judged (flagged by any event of its source begun before its end) and goes to
    /// `out`.
    pub fn reading(&mut self, r: &Reading, info: &SourceInfo, out: &mut Rows) {
        let mut done = Vec::new();
        self.tens.push(r, false, &mut done);
        self.held.extend(done);
        let due = r.start - chrono::TimeDelta::seconds(HOLD_S);
        for i in self.take_held(|i| *i.source == *r.source && i.end() <= due) {
            self.ten_seconds(i, info, out);
        }
    }

    /// The held intervals `pick` chooses, in the order they completed.
    fn take_held(&mut self, pick: impl Fn(&Interval) -> bool) -> Vec<Interval> {
        let (take, keep) = std::mem::take(&mut self.held).into_iter().partition(pick);
        self.held = keep;
        take
    }

    /// Completes what ended before `now` (quiet sources).
    pub fn flush_before(
        &mut self,
        now: DateTime<Utc>,
        info: &dyn Fn(&str) -> SourceInfo,
        out: &mut Rows,
    ) {
        let mut done = Vec::new();
        self.tens.flush_before(now, &mut done);
        self.held.extend(done);
        // `now` is already well behind the data (the sink flushes 20 s back): no more holding.
        for i in self.take_held(|i| i.end() <= now) {
            let inf = info(&i.source);
            self.ten_seconds(i, &inf, out);
        }
        let quiet: Vec<String> = self
            .ten_min
            .iter()
            .filter(|(_, i)| i.end() <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in quiet {
            if let Some(i) = self.ten_min.remove(&k) {
                let inf = info(&k);
                self.emit_aggregate(i, &inf, out);
            }
        }
        self.prune_spans(now);
    }

    /// Completes everything in progress (at a stop).
    pub fn finish(&mut self, info: &dyn Fn(&str) -> SourceInfo, out: &mut Rows) {
        let mut done = std::mem::take(&mut self.held);
        self.tens.finish(&mut done);
        for i in done {
            let inf = info(&i.source);
            self.ten_seconds(i, &inf, out);
        }
        let all: Vec<Interval> = self.ten_min.drain().map(|(_, i)| i).collect();
        for i in all {
            let inf = info(&i.source);
            self.emit_aggregate(i, &inf, out);
        }
        let meters: Vec<((String, String), MeterAcc)> = self.meters.drain().collect();
        for ((source, device), acc) in meters {
            out.meters.push(meter_row(&source, &device, acc));
        }
    }

    fn ten_seconds(&mut self, i: Interval, info: &SourceInfo, out: &mut Rows) {
        let flagged = i.flagged || self.overlapped(&i.source, i.start, i.end());
        if let Some(mean) = i.frequency.mean() {
            out.frequency.push(FrequencyRow {
                source: i.source.clone(),
                start: i.start,
                seconds: i.seconds as f64,
                nominal_hz: info.nominal_hz,
                mean_hz: mean,
                min_hz: i.frequency.min,
                max_hz: i.frequency.max,
                windows: i.frequency.n,
                flagged,
            });
        }
        let start = interval_start(i.start, AGGREGATE_S);
        if self
            .ten_min
            .get(&i.source)
            .is_some_and(|t| t.start != start)
        {
            if let Some(prev) = self.ten_min.remove(&i.source) {
                self.emit_aggregate(prev, info, out);
            }
        }
        let acc = self
            .ten_min
            .entry(i.source.clone())
            .or_insert_with(|| Interval {
                start,
                seconds: AGGREGATE_S,
                channels: Vec::new(),
                frequency: MinMax::default(),
                windows: 0,
                unlocked: 0,
                flagged: false,
                source: i.source.clone(),
            });
        acc.merge(&i);
        acc.flagged |= flagged;
    }

    fn emit_aggregate(&mut self, i: Interval, info: &SourceInfo, out: &mut Rows) {
        let flagged = i.flagged || self.overlapped(&i.source, i.start, i.end());
        for (k, c) in i.channels.iter().enumerate() {
            let Some(mean) = c.mean() else { continue };
            out.aggregates.push(AggregateRow {
                source: i.source.clone(),
                channel: info
                    .channels
                    .get(k)
                    .cloned()
                    .unwrap_or_else(|| format!("ch{}", k + 1)),
                start: i.start,
                seconds: i.seconds as f64,
                udin_v: info.udin_v,
                mean_v: mean,
                min_v: c.min,
                max_v: c.max,
                windows: c.n,
                flagged,
            });
        }
    }

    fn prune_spans(&mut self, now: DateTime<Utc>) {
        // An event that ended more than an aggregate ago can flag nothing still open.
        let horizon = now - chrono::TimeDelta::seconds(2 * AGGREGATE_S);
        for v in self.spans.values_mut() {
            v.retain(|(_, e)| e.is_none_or(|e| e > horizon));
        }
    }

    /// One poll of one meter; a completed 15-minute interval goes to `out`.
    pub fn meter_poll(&mut self, rs: &[MeterReading], out: &mut Rows) {
        let Some(first) = rs.first() else { return };
        let key = (first.source.to_string(), first.device.to_string());
        let start = interval_start(first.at, METER_S);
        if self.meters.get(&key).is_some_and(|m| m.start != start) {
            if let Some(done) = self.meters.remove(&key) {
                out.meters.push(meter_row(&key.0, &key.1, done));
            }
        }
        let acc = self.meters.entry(key).or_insert_with(|| MeterAcc {
            start,
            import_kwh: None,
            export_kwh: None,
            import_kvarh: None,
            power: MinMax::default(),
            power_factor: None,
            thd_u_pct: None,
            samples: 0,
        });
        acc.samples += 1;
        let mut power = None;
        let mut demand = None;
        for r in rs.iter().filter(|r| r.value.is_finite()) {
            match r.quantity {
                Quantity::EnergyImportKwh => acc.import_kwh = Some(r.value),
                Quantity::EnergyExportKwh => acc.export_kwh = Some(r.value),
                Quantity::EnergyReactiveImportKvarh => acc.import_kvarh = Some(r.value),
                Quantity::ActivePowerTotal => power = Some(r.value),
                Quantity::DemandKw => demand = Some(r.value),
                Quantity::PowerFactorTotal => acc.power_factor = Some(r.value),
                Quantity::ThdUA | Quantity::ThdUB | Quantity::ThdUC => {
                    acc.thd_u_pct = Some(acc.thd_u_pct.map_or(r.value, |t| t.max(r.value)))
                }
                _ => {}
            }
        }
        // The meter's present active power; its own demand register when it gives no power.
        if let Some(p) = power.or(demand) {
            acc.power.push(p);
        }
    }
}

fn meter_row(source: &str, device: &str, m: MeterAcc) -> MeterIntervalRow {
    MeterIntervalRow {
        source: source.to_string(),
        device: device.to_string(),
        start: m.start,
        seconds: METER_S as f64,
        import_kwh: m.import_kwh,
        export_kwh: m.export_kwh,
        import_kvarh: m.import_kvarh,
        demand_kw: m.power.mean(),
        max_kw: (m.power.n > 0).then_some(m.power.max),
        power_factor: m.power_factor,
        thd_u_pct: m.thd_u_pct,
        samples: m.samples,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::pqlink::Reading;
    use chrono::TimeZone;
    use std::sync::Arc;

    fn info() -> SourceInfo {
        SourceInfo {
            channels: vec!["VA".into(), "VB".into(), "VC".into()],
            udin_v: 230.0,
            nominal_hz: 50.0,
        }
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap()
    }

    /// One reading per second of data (enough for the fold: windows are counted, not timed).
    fn reading(at: DateTime<Utc>, volts: f32, locked: bool) -> Reading {
        let mut v = [0.0f32; kare_firmware::pqlink::MAX_CHANNELS];
        v[..3].copy_from_slice(&[volts, volts, volts]);
        Reading {
            source: Arc::from("node"),
            seq: 0,
            start: at,
            end: at + chrono::TimeDelta::milliseconds(10),
            frequency_hz: 50.01,
            volts: v,
            channels: 3,
            locked,
        }
    }

    /// Feeds `minutes` of readings, one per second, at `volts`, and what `at` says per second.
    fn run(fold: &mut HistoryFold, from_s: i64, to_s: i64, volts: f32, out: &mut Rows) {
        for s in from_s..to_s {
            let at = t0() + chrono::TimeDelta::seconds(s);
            fold.reading(&reading(at, volts, true), &info(), out);
        }
    }

    #[test]
    fn history_ten_minutes_of_steady_supply_is_one_unflagged_aggregate_per_channel() {
        let mut fold = HistoryFold::default();
        let mut out = Rows::default();
        run(&mut fold, 0, 620, 231.0, &mut out);
        // 08:00–08:10 is complete once the 10 s starting at 08:10:10 begins.
        assert_eq!(out.aggregates.len(), 3);
        let a = &out.aggregates[0];
        assert_eq!((a.start, a.seconds, a.windows), (t0(), 600.0, 600));
        assert_eq!(
            (a.mean_v, a.min_v, a.max_v, a.flagged),
            (231.0, 231.0, 231.0, false)
        );
        assert_eq!(a.udin_v, 230.0);
        let names: Vec<&str> = out.aggregates.iter().map(|a| a.channel.as_str()).collect();
        assert_eq!(names, ["VA", "VB", "VC"]);
        // Sixty-one 10-s frequency values, 10 windows each, none flagged.
        assert_eq!(out.frequency.len(), 61);
        assert!(out.frequency.iter().all(|f| f.windows == 10 && !f.flagged));
        assert!((out.frequency[0].mean_hz - 50.01).abs() < 1e-4);
    }

    #[test]
    fn history_an_event_flags_every_interval_it_overlaps_and_no_other() {
        let mut fold = HistoryFold::default();
        let mut out = Rows::default();
        run(&mut fold, 0, 300, 230.0, &mut out);
        // A dip from 08:05:00 to 08:12:00 (open across the 08:10 boundary).
        let start = t0() + chrono::TimeDelta::seconds(300);
        fold.voltage_event("node", start, None);
        run(&mut fold, 300, 720, 200.0, &mut out);
        fold.voltage_event("node", start, Some(t0() + chrono::TimeDelta::seconds(720)));
        run(&mut fold, 720, 1830, 230.0, &mut out);
        let flagged: Vec<(i64, bool)> = out
            .aggregates
            .iter()
            .filter(|a| a.channel == "VA")
            .map(|a| ((a.start - t0()).num_minutes(), a.flagged))
            .collect();
        // 08:00 and 08:10 overlap the dip; 08:20 does not.
        assert_eq!(flagged, vec![(0, true), (10, true), (20, false)]);
        // 10-s values: flagged exactly from 08:05:00 to 08:12:00.
        for f in &out.frequency {
            let s = (f.start - t0()).num_seconds();
            assert_eq!(f.flagged, (300..720).contains(&s), "at {s} s");
        }
    }

    /// A dip begins at 08:00:09.95, in the last half-cycles of 08:00:00–10; its event reaches
    /// the sink only after the reading at 08:00:10 (readings and events come by different
    /// channels). The interval waits two seconds of data and is flagged.
    #[test]
    fn history_a_dip_in_the_last_half_cycles_flags_its_ten_seconds_though_its_event_comes_late() {
        let mut fold = HistoryFold::default();
        let mut out = Rows::default();
        run(&mut fold, 0, 11, 230.0, &mut out);
        assert!(out.frequency.is_empty(), "held: {:?}", out.frequency);
        let start = t0() + chrono::TimeDelta::milliseconds(9_950);
        fold.voltage_event("node", start, None);
        run(&mut fold, 11, 25, 200.0, &mut out);
        let flags: Vec<(i64, bool)> = out
            .frequency
            .iter()
            .map(|f| ((f.start - t0()).num_seconds(), f.flagged))
            .collect();
        assert_eq!(flags, vec![(0, true), (10, true)]);
    }

    #[test]
    fn history_an_unlocked_window_flags_its_intervals() {
        let mut fold = HistoryFold::default();
        let mut out = Rows::default();
        run(&mut fold, 0, 100, 230.0, &mut out);
        let at = t0() + chrono::TimeDelta::seconds(100);
        fold.reading(&reading(at, 5.0, false), &info(), &mut out);
        run(&mut fold, 101, 620, 230.0, &mut out);
        assert!(out.aggregates.iter().all(|a| a.flagged));
        assert!(out.frequency.iter().any(|f| f.flagged && f.start == at));
        // The unlocked window carries no frequency: 9 windows in that 10 s.
        assert_eq!(
            out.frequency
                .iter()
                .find(|f| f.start == at)
                .unwrap()
                .windows,
            9
        );
    }

    #[test]
    fn history_meter_polls_make_fifteen_minute_intervals() {
        let mut fold = HistoryFold::default();
        let mut out = Rows::default();
        let poll = |s: i64, kwh: f64, kw: f64| -> Vec<MeterReading> {
            let at = t0() + chrono::TimeDelta::seconds(s);
            [
                (Quantity::EnergyImportKwh, kwh),
                (Quantity::ActivePowerTotal, kw),
                (Quantity::PowerFactorTotal, 0.92),
                (Quantity::ThdUA, 2.0),
                (Quantity::ThdUB, 3.5),
            ]
            .iter()
            .map(|&(quantity, value)| MeterReading {
                source: Arc::from("bus"),
                device: Arc::from("incomer"),
                at,
                quantity,
                value,
            })
            .collect()
        };
        fold.meter_poll(&poll(0, 100.0, 400.0), &mut out);
        fold.meter_poll(&poll(450, 150.0, 420.0), &mut out);
        fold.meter_poll(&poll(899, 200.0, 380.0), &mut out);
        assert!(out.meters.is_empty());
        fold.meter_poll(&poll(900, 201.0, 100.0), &mut out);
        let m = &out.meters[0];
        assert_eq!((m.start, m.seconds, m.samples), (t0(), 900.0, 3));
        assert_eq!(m.import_kwh, Some(200.0), "the register as last read");
        assert_eq!((m.demand_kw, m.max_kw), (Some(400.0), Some(420.0)));
        assert_eq!((m.power_factor, m.thd_u_pct), (Some(0.92), Some(3.5)));
    }
}
