//! Energy from the meters: consumption per site-local day and over the period (differences of
//! the import register), peak 15-min demand, and each site-local month's average power factor
//! against the customer's standard with the tariff's bill adjustment.
//!
//! One meter is counted: the one with the most register readings in the period. Meters on one
//! site usually measure the same incomer (the demo's two meters do), so adding them would count
//! the supply twice; the report names the meter it used and notes the ones it left out.

use super::continuity::round3;
use super::Period;
use crate::report::model::{DayEnergy, Energy, MonthPowerFactor};
use crate::store::{MeterIntervalRow, SiteRecord};
use chrono::{DateTime, Duration, FixedOffset, Utc};
use std::collections::BTreeMap;

/// The meter's name: `source/device`.
pub fn meter_name(r: &MeterIntervalRow) -> String {
    format!("{}/{}", r.source, r.device)
}

/// The meter counted for energy (and for the demand before an outage and THD), with its
/// intervals oldest first; and the names of the others.
pub(crate) fn choose_meter<'a>(
    intervals: &'a [MeterIntervalRow],
    period: &Period,
) -> (Option<String>, Vec<&'a MeterIntervalRow>, Vec<String>) {
    let mut score: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for r in intervals {
        let s = score.entry(meter_name(r)).or_default();
        if period.from <= r.start && r.start < period.to {
            s.0 += r.import_kwh.is_some() as usize;
            s.1 += r.demand_kw.is_some() as usize;
        }
    }
    // Most register readings, then most demand values; ties to the first name.
    let best = score
        .iter()
        .filter(|(_, s)| s.0 + s.1 > 0)
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(n, _)| n.clone());
    let others = score
        .keys()
        .filter(|n| Some(*n) != best.as_ref())
        .cloned()
        .collect();
    let mut rows: Vec<&MeterIntervalRow> = match &best {
        Some(b) => intervals.iter().filter(|r| meter_name(r) == *b).collect(),
        None => Vec::new(),
    };
    rows.sort_by_key(|r| r.start);
    (best, rows, others)
}

/// The bill adjustment of 《功率因数调整电费办法》 ((83) 水电财字第 215 号, 水利电力部 and 国家物价局,
/// 1983), Tables 1–3, for a monthly average power factor `pf` (rounded to 0.01, as the Measures
/// say) against the standard `standard` (0.90, 0.85 or 0.80). Percent of the bill; positive
/// raises it. `None` for another standard.
///
/// The tables as data (hundredths of the PF against the standard S):
/// - at or above S, a reduction: for 0.90 0.15 % per 0.01 up to 0.75 % at 0.95 and over; for 0.85
///   and 0.80 0.1 % per 0.01 up to 0.90, then 0.15 % per 0.01, up to 1.10 % (0.85, from 0.94) and
///   1.30 % (0.80, from 0.92);
/// - below S, an increase of 0.5 % per 0.01 down to S − 0.20 (10 %), then 1 % per 0.01 for the next
///   five hundredths (15 % at S − 0.25), then 2 % per 0.01 below that.
///
/// Reproduced from the tables as printed in the Measures; check against the issuing utility's
/// tariff before quoting a bill.
pub fn pf_adjustment_pct(pf: f64, standard: f64) -> Option<f64> {
    let k = (pf * 100.0).round() as i64;
    let s = (standard * 100.0).round() as i64;
    let reductions: &[f64] = match s {
        90 => &[0.0, 0.15, 0.30, 0.45, 0.60, 0.75],
        85 => &[0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.65, 0.80, 0.95, 1.10],
        80 => &[
            0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.15, 1.30,
        ],
        _ => return None,
    };
    let pct = if k >= s {
        let i = ((k - s) as usize).min(reductions.len() - 1);
        -reductions[i]
    } else if k >= s - 20 {
        0.5 * (s - k) as f64
    } else if k >= s - 25 {
        10.0 + (s - 20 - k) as f64
    } else {
        15.0 + 2.0 * (s - 25 - k) as f64
    };
    Some((pct * 100.0).round() / 100.0)
}

fn local(t: DateTime<Utc>, offset: FixedOffset) -> DateTime<FixedOffset> {
    t.with_timezone(&offset)
}

pub(crate) fn energy(
    site: &SiteRecord,
    period: &Period,
    meter_name: Option<String>,
    meter: &[&MeterIntervalRow],
) -> Energy {
    let offset = FixedOffset::east_opt(site.utc_offset_minutes * 60)
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("UTC is an offset"));
    let in_period = |r: &MeterIntervalRow| period.from <= r.start && r.start < period.to;
    let mut days: BTreeMap<String, f64> = BTreeMap::new();
    let mut months: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let mut prev: Option<&MeterIntervalRow> = None;
    for r in meter {
        if in_period(r) {
            let l = local(r.start, offset);
            // The energy of an interval: its register less the previous interval's (the
            // intervals before the period are loaded for this). A register that went back
            // (a replaced meter) gives nothing rather than a negative day.
            let d_kwh = match (prev.and_then(|p| p.import_kwh), r.import_kwh) {
                (Some(a), Some(b)) if b >= a => Some(b - a),
                _ => None,
            };
            let d_kvarh = match (prev.and_then(|p| p.import_kvarh), r.import_kvarh) {
                (Some(a), Some(b)) if b >= a => Some(b - a),
                _ => None,
            };
            if let Some(e) = d_kwh {
                *days.entry(l.format("%Y-%m-%d").to_string()).or_default() += e;
            }
            if d_kwh.is_some() || d_kvarh.is_some() {
                let m = months.entry(l.format("%Y-%m").to_string()).or_default();
                m.0 += d_kwh.unwrap_or(0.0);
                m.1 += d_kvarh.unwrap_or(0.0);
            }
        }
        if r.import_kwh.is_some() || r.import_kvarh.is_some() {
            prev = Some(r);
        }
    }
    let peak = meter
        .iter()
        .filter(|r| in_period(r))
        .filter_map(|r| r.demand_kw.map(|d| (d, r.start)))
        .fold(None::<(f64, DateTime<Utc>)>, |best, x| match best {
            Some(b) if b.0 >= x.0 => Some(b),
            _ => Some(x),
        });
    let total: f64 = days.values().sum();
    Energy {
        meters: meter_name.into_iter().collect(),
        total_kwh: (!days.is_empty()).then(|| round3(total)),
        days: days
            .into_iter()
            .map(|(date, kwh)| DayEnergy {
                date,
                kwh: round3(kwh),
            })
            .collect(),
        peak_demand_kw: peak.map(|p| round3(p.0)),
        peak_at: peak.map(|p| p.1),
        months: months
            .into_iter()
            .filter(|(_, (kwh, kvarh))| kwh + kvarh > 0.0)
            .map(|(month, (kwh, kvarh))| {
                let pf = kwh / (kwh * kwh + kvarh * kvarh).sqrt();
                let pf2 = (pf * 100.0).round() / 100.0;
                MonthPowerFactor {
                    month,
                    kwh: round3(kwh),
                    kvarh: round3(kvarh),
                    power_factor: (pf * 1e4).round() / 1e4,
                    standard: site.pf_standard,
                    meets_standard: pf2 >= site.pf_standard - 1e-9,
                    adjustment_pct: pf_adjustment_pct(pf2, site.pf_standard),
                }
            })
            .collect(),
    }
}

/// Intervals loaded before the period so the first interval's energy is known.
pub const LEAD_IN: Duration = Duration::hours(2);

#[cfg(test)]
mod tests {
    use super::pf_adjustment_pct as adj;

    #[test]
    fn the_090_table_reads_as_published() {
        assert_eq!(adj(0.90, 0.90), Some(0.0));
        assert_eq!(adj(0.91, 0.90), Some(-0.15));
        assert_eq!(adj(0.95, 0.90), Some(-0.75));
        assert_eq!(adj(1.00, 0.90), Some(-0.75));
        assert_eq!(adj(0.89, 0.90), Some(0.5));
        assert_eq!(adj(0.70, 0.90), Some(10.0));
        assert_eq!(adj(0.65, 0.90), Some(15.0));
        assert_eq!(adj(0.64, 0.90), Some(17.0));
    }

    #[test]
    fn the_085_and_080_tables_and_no_other() {
        assert_eq!(adj(0.90, 0.85), Some(-0.5));
        assert_eq!(adj(0.94, 0.85), Some(-1.1));
        assert_eq!(adj(0.60, 0.85), Some(15.0));
        assert_eq!(adj(0.92, 0.80), Some(-1.3));
        assert_eq!(adj(0.79, 0.80), Some(0.5));
        assert_eq!(adj(0.9, 0.75), None);
    }
}
