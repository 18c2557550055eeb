//! Steady state: supply voltage against GB/T 12325 (limits by voltage level) and EN 50160, frequency
//! against GB/T 15945 and EN 50160, voltage THD against GB/T 14549. Flagged intervals (a dip,
//! swell or interruption overlapped them, IEC 61000-4-30) are counted and left out.
//!
//! Every limit is judged per interval and reported as the share of the period's unflagged
//! intervals in limits; the standards' own assessment periods (EN 50160: a week for voltage, a
//! year for frequency) are the report's period here, and the report says which share it is.

use super::continuity::round3;
use crate::report::model::{
    ChannelRange, FrequencyCompliance, SteadyState, ThdCompliance, VoltageCompliance,
};
use crate::store::{AggregateRow, FrequencyRow, MeterIntervalRow, SiteRecord};
use std::collections::BTreeMap;

/// GB/T 12325-2008 §4: limits of the supply voltage deviation by level, % of nominal.
/// - 35 kV and above: the sum of the absolute positive and negative deviations at most 10 %:
///   judged per channel on its unflagged 10-min means as (largest positive deviation) +
///   |largest negative deviation| ≤ [`GBT12325_SUM_LIMIT_PCT`]; the limits returned (±10 %) only
///   bound each interval (a sum within 10 % implies it);
/// - 20 kV and below, three-phase: ±7 %;
/// - 220 V single-phase: +7 % / −10 %.
///
/// A site's `nominal_kv` picks the level; 0.25 kV and below is the 220 V single-phase supply.
pub fn gbt12325_limits(nominal_kv: f64) -> (&'static str, f64, f64) {
    if nominal_kv >= 35.0 {
        ("35kV+", -10.0, 10.0)
    } else if nominal_kv > 0.25 {
        ("20kV-3ph", -7.0, 7.0)
    } else {
        ("220V-1ph", -10.0, 7.0)
    }
}

/// GB/T 12325 at 35 kV and above: the limit on the sum of the absolute deviations, %.
pub const GBT12325_SUM_LIMIT_PCT: f64 = 10.0;

/// GB/T 14549-1993 Table 2: voltage THD limits at the point of common coupling, % by nominal
/// voltage (0.38 kV 5 %; 6 and 10 kV 4 %; 35 and 66 kV 3 %; 110 kV 2 %).
pub fn gbt14549_thd_limit(nominal_kv: f64) -> f64 {
    if nominal_kv < 1.0 {
        5.0
    } else if nominal_kv < 35.0 {
        4.0
    } else if nominal_kv < 110.0 {
        3.0
    } else {
        2.0
    }
}

/// GB/T 15945-2008: ±0.2 Hz on a normal system.
pub use crate::store::GBT15945_LIMIT_HZ;

/// EN 50160: 10-minute means within ±10 % of the nominal voltage for 95 % of the time.
pub const EN50160_VOLTAGE_PCT: f64 = 10.0;
/// And the share it asks.
pub const EN50160_SHARE_PCT: f64 = 95.0;

fn share(n: usize, of: usize) -> f64 {
    if of == 0 {
        0.0
    } else {
        round3(100.0 * n as f64 / of as f64)
    }
}

pub(crate) fn steady_state(
    site: &SiteRecord,
    aggregates: &[&AggregateRow],
    frequency: &FrequencyFold,
    meter: &[&MeterIntervalRow],
) -> SteadyState {
    SteadyState {
        voltage: voltage(site, aggregates),
        frequency: freq(site, frequency),
        thd: thd(site, meter),
    }
}

/// One channel's unflagged 10-min means, folded.
struct ChannelFold {
    min_pct: f64,
    max_pct: f64,
    intervals: u32,
    gb_in: usize,
    en_in: usize,
}

fn voltage(site: &SiteRecord, rows: &[&AggregateRow]) -> Option<VoltageCompliance> {
    if rows.is_empty() {
        return None;
    }
    let (level, low, high) = gbt12325_limits(site.nominal_kv);
    let good: Vec<&AggregateRow> = rows
        .iter()
        .copied()
        .filter(|r| !r.flagged && r.udin_v > 0.0 && r.mean_v.is_finite())
        .collect();
    // Every share is per channel (`source/channel`): a phase out of limits must not be hidden
    // by two good ones. The headline share is the worst channel's.
    let mut folds: BTreeMap<String, ChannelFold> = BTreeMap::new();
    for r in &good {
        let pct = 100.0 * r.mean_v / r.udin_v;
        let dev = pct - 100.0;
        let c = folds
            .entry(format!("{}/{}", r.source, r.channel))
            .or_insert(ChannelFold {
                min_pct: pct,
                max_pct: pct,
                intervals: 0,
                gb_in: 0,
                en_in: 0,
            });
        c.min_pct = c.min_pct.min(pct);
        c.max_pct = c.max_pct.max(pct);
        c.intervals += 1;
        c.gb_in += (low..=high).contains(&dev) as usize;
        c.en_in += (dev.abs() <= EN50160_VOLTAGE_PCT) as usize;
    }
    let by_sum = level == "35kV+";
    let channels: Vec<ChannelRange> = folds
        .into_iter()
        .map(|(channel, c)| ChannelRange {
            channel,
            min_pct: round3(c.min_pct),
            max_pct: round3(c.max_pct),
            intervals: c.intervals,
            gbt12325_in_limits_pct: share(c.gb_in, c.intervals as usize),
            en50160_in_limits_pct: share(c.en_in, c.intervals as usize),
            // 35 kV+: the largest positive deviation plus the largest negative one's size (a
            // side that never deviated adds nothing).
            gbt12325_deviation_sum_pct: by_sum
                .then(|| round3((c.max_pct - 100.0).max(0.0) + (100.0 - c.min_pct).max(0.0))),
        })
        .collect();
    // The worst channel: the lowest share (the first by name on a tie).
    let worst = |f: fn(&ChannelRange) -> f64| {
        channels
            .iter()
            .min_by(|a, b| f(a).total_cmp(&f(b)))
            .map(|c| (c.channel.clone(), f(c)))
    };
    let en = worst(|c| c.en50160_in_limits_pct);
    // 35 kV+: the worst channel is the one with the largest sum.
    let sum = channels
        .iter()
        .filter_map(|c| Some((c.channel.clone(), c.gbt12325_deviation_sum_pct?)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let gb = if by_sum {
        sum.as_ref().map(|(c, _)| {
            let share = channels.iter().find(|x| x.channel == *c).unwrap();
            (c.clone(), share.gbt12325_in_limits_pct)
        })
    } else {
        worst(|c| c.gbt12325_in_limits_pct)
    };
    Some(VoltageCompliance {
        gbt12325_level: level.into(),
        gbt12325_low_pct: low,
        gbt12325_high_pct: high,
        intervals: rows.len() as u32,
        flagged: (rows.len() - good.len()) as u32,
        gbt12325_in_limits_pct: gb.as_ref().map_or(0.0, |w| w.1),
        gbt12325_worst_channel: gb.map(|w| w.0),
        gbt12325_deviation_sum_pct: sum.as_ref().map(|w| w.1),
        gbt12325_sum_within_limit: by_sum.then(|| {
            !channels.is_empty()
                && channels.iter().all(|c| {
                    c.gbt12325_deviation_sum_pct
                        .is_some_and(|x| x <= GBT12325_SUM_LIMIT_PCT + 1e-9)
                })
        }),
        en50160_in_limits_pct: en.as_ref().map_or(0.0, |w| w.1),
        en50160_compliant: !channels.is_empty()
            && channels
                .iter()
                .all(|c| c.en50160_in_limits_pct >= EN50160_SHARE_PCT),
        worst_channel: en.map(|w| w.0),
        channels,
    })
}

/// The frequency statistics folded one 10-s value at a time: a year is three million values,
/// which a report folds as the store reads them rather than holding them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FrequencyFold {
    /// Nominal of the first value with one, Hz.
    pub nominal_hz: Option<f64>,
    /// Values folded.
    pub intervals: u32,
    /// Of those, flagged (left out).
    pub flagged: u32,
    /// Unflagged within GB/T 15945.
    pub gbt15945_in: u32,
    /// Unflagged within ±1 % (EN 50160).
    pub en50160_in: u32,
    /// Lowest unflagged mean, Hz.
    pub min_hz: Option<f64>,
    /// Highest unflagged mean, Hz.
    pub max_hz: Option<f64>,
}

impl FrequencyFold {
    /// Folds every row starting in `period`.
    pub fn of(rows: &[FrequencyRow], period: &super::Period) -> FrequencyFold {
        let mut f = FrequencyFold::default();
        for r in rows {
            f.add(r, period);
        }
        f
    }

    /// Folds one value; one starting outside `period` is left to the period it starts in.
    pub fn add(&mut self, r: &FrequencyRow, period: &super::Period) {
        if r.start < period.from || r.start >= period.to {
            return;
        }
        self.intervals += 1;
        if r.flagged || !r.mean_hz.is_finite() {
            self.flagged += 1;
            return;
        }
        let nominal = if r.nominal_hz > 0.0 {
            r.nominal_hz
        } else {
            self.nominal_hz.unwrap_or(50.0)
        };
        if self.nominal_hz.is_none() && r.nominal_hz > 0.0 {
            self.nominal_hz = Some(r.nominal_hz);
        }
        let dev = (r.mean_hz - nominal).abs();
        self.gbt15945_in += (dev <= GBT15945_LIMIT_HZ + 1e-9) as u32;
        self.en50160_in += (dev <= nominal * 0.01 + 1e-9) as u32;
        self.min_hz = Some(self.min_hz.map_or(r.mean_hz, |m| m.min(r.mean_hz)));
        self.max_hz = Some(self.max_hz.map_or(r.mean_hz, |m| m.max(r.mean_hz)));
    }
}

impl FrequencyFold {
    /// Adds another fold (another source's values).
    pub fn merge(&mut self, o: &FrequencyFold) {
        self.nominal_hz = self.nominal_hz.or(o.nominal_hz);
        self.intervals += o.intervals;
        self.flagged += o.flagged;
        self.gbt15945_in += o.gbt15945_in;
        self.en50160_in += o.en50160_in;
        let pick = |a: Option<f64>, b: Option<f64>, f: fn(f64, f64) -> f64| match (a, b) {
            (Some(a), Some(b)) => Some(f(a, b)),
            (a, b) => a.or(b),
        };
        self.min_hz = pick(self.min_hz, o.min_hz, f64::min);
        self.max_hz = pick(self.max_hz, o.max_hz, f64::max);
    }
}

fn freq(site: &SiteRecord, f: &FrequencyFold) -> Option<FrequencyCompliance> {
    if f.intervals == 0 {
        return None;
    }
    let good = (f.intervals - f.flagged) as usize;
    Some(FrequencyCompliance {
        nominal_hz: f.nominal_hz.unwrap_or(site.nominal_hz),
        gbt15945_limit_hz: GBT15945_LIMIT_HZ,
        intervals: f.intervals,
        flagged: f.flagged,
        gbt15945_in_limits_pct: share(f.gbt15945_in as usize, good),
        en50160_in_limits_pct: share(f.en50160_in as usize, good),
        min_hz: round3(f.min_hz.unwrap_or(0.0)),
        max_hz: round3(f.max_hz.unwrap_or(0.0)),
    })
}

fn thd(site: &SiteRecord, meter: &[&MeterIntervalRow]) -> Option<ThdCompliance> {
    let mut v: Vec<f64> = meter
        .iter()
        .filter_map(|r| r.thd_u_pct)
        .filter(|x| x.is_finite())
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let limit = gbt14549_thd_limit(site.nominal_kv);
    // The 95 % value: nearest rank.
    let rank = ((0.95 * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(ThdCompliance {
        limit_pct: limit,
        intervals: v.len() as u32,
        max_pct: round3(v[v.len() - 1]),
        p95_pct: round3(v[rank - 1]),
        in_limits_pct: share(v.iter().filter(|x| **x <= limit).count(), v.len()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};

    fn row(channel: &str, i: i64, mean_v: f64) -> AggregateRow {
        AggregateRow {
            source: "n1".into(),
            channel: channel.into(),
            start: Utc.with_ymd_and_hms(2026, 11, 3, 0, 0, 0).unwrap() + Duration::minutes(10 * i),
            seconds: 600.0,
            udin_v: 230.0,
            mean_v,
            min_v: mean_v,
            max_v: mean_v,
            windows: 60_000,
            flagged: false,
        }
    }

    fn site(nominal_kv: f64) -> SiteRecord {
        SiteRecord {
            nominal_kv,
            ..SiteRecord::default()
        }
    }

    #[test]
    fn voltage_compliance_is_per_channel_and_the_worst_channel_decides() {
        // VA and VB at 230 V for 100 intervals; VC at 230 V for 85 of them and 200 V (−13 %) for
        // 15. Pooled, 285 of 300 = 95 % would pass; VC alone is 85 %: not compliant.
        let mut rows = Vec::new();
        for i in 0..100 {
            rows.push(row("VA", i, 230.0));
            rows.push(row("VB", i, 230.0));
            rows.push(row("VC", i, if i < 15 { 200.0 } else { 230.0 }));
        }
        let refs: Vec<&AggregateRow> = rows.iter().collect();
        let v = voltage(&site(10.0), &refs).unwrap();
        assert_eq!(v.en50160_in_limits_pct, 85.0);
        assert!(!v.en50160_compliant);
        assert_eq!(v.worst_channel.as_deref(), Some("n1/VC"));
        assert_eq!(v.gbt12325_in_limits_pct, 85.0);
        assert_eq!(v.gbt12325_worst_channel.as_deref(), Some("n1/VC"));
        let shares: Vec<(f64, f64)> = v
            .channels
            .iter()
            .map(|c| (c.en50160_in_limits_pct, c.gbt12325_in_limits_pct))
            .collect();
        assert_eq!(shares, [(100.0, 100.0), (100.0, 100.0), (85.0, 85.0)]);
    }

    #[test]
    fn at_35kv_gbt12325_judges_each_channels_positive_plus_negative_deviation_sum() {
        // 110 kV. VA: means from −6 % to +6 %, every one within ±10 %, but the sum is 12 % > 10 %.
        // VB: −2 % to +5 %, sum 7 %. Per interval all would be "in"; by the standard VA fails.
        let mut rows = Vec::new();
        for (i, (a, b)) in [(-6.0, -2.0), (0.0, 0.0), (6.0, 5.0)]
            .into_iter()
            .enumerate()
        {
            rows.push(row("VA", i as i64, 230.0 * (1.0 + a / 100.0)));
            rows.push(row("VB", i as i64, 230.0 * (1.0 + b / 100.0)));
        }
        let refs: Vec<&AggregateRow> = rows.iter().collect();
        let v = voltage(&site(110.0), &refs).unwrap();
        let sums: Vec<Option<f64>> = v
            .channels
            .iter()
            .map(|c| c.gbt12325_deviation_sum_pct)
            .collect();
        assert_eq!(sums, [Some(12.0), Some(7.0)]);
        assert_eq!(v.gbt12325_deviation_sum_pct, Some(12.0));
        assert_eq!(v.gbt12325_sum_within_limit, Some(false));
        assert_eq!(v.gbt12325_worst_channel.as_deref(), Some("n1/VA"));
        // Below 35 kV the ±limits are judged per interval and no sum is given.
        let v = voltage(&site(10.0), &refs).unwrap();
        assert_eq!(v.gbt12325_deviation_sum_pct, None);
        assert_eq!(v.gbt12325_sum_within_limit, None);
    }
}
