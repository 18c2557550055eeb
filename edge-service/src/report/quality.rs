//! Power quality: the period's dips and swells in the EN 50160 tables, against ITIC and SEMI F47,
//! and the worst few with their RMS profiles.
//!
//! A dip that contains an interruption is that interruption seen from above: it is counted in
//! the continuity section, not again here (design.md). Events are counted in the period where they
//! start, so a month boundary never counts one twice.

use super::continuity::Loss;
use super::Period;
use crate::report::model::{Cell, CountTable, PowerQuality, PqEvent, WorstEvent};
use crate::store::EventRow;
use chrono::{DateTime, Utc};
use kare_firmware::classify;
use kare_firmware::detector::EventKind;
use serde_json::Value;

/// How many worst events carry a profile thumbnail.
pub const WORST: usize = 5;

/// Points kept per thumbnail.
const THUMB_POINTS: usize = 120;

fn table(rows: &[&str], columns: &[&str]) -> CountTable {
    CountTable {
        rows: rows.iter().map(|s| s.to_string()).collect(),
        columns: columns.iter().map(|s| s.to_string()).collect(),
        counts: vec![vec![0; columns.len()]; rows.len()],
    }
}

impl CountTable {
    /// Adds one to `cell`; false when the cell is not in the table.
    fn add(&mut self, cell: &Cell) -> bool {
        let r = self.rows.iter().position(|r| *r == cell.row);
        let c = self.columns.iter().position(|c| *c == cell.column);
        match (r, c) {
            (Some(r), Some(c)) => {
                self.counts[r][c] += 1;
                true
            }
            _ => false,
        }
    }
}

fn str_of(json: &Value, key: &str) -> Option<String> {
    json.get(key).and_then(Value::as_str).map(str::to_string)
}

/// The event's EN 50160 cell: as its JSON says (written by the same classifier when it was
/// characterised), else worked out from its duration and extreme.
fn cell_of(e: &EventRow) -> Option<Cell> {
    if let Some(c) = e.json.get("en50160").filter(|c| c.is_object()) {
        if let (Some(row), Some(column)) = (str_of(c, "row"), str_of(c, "column")) {
            return Some(Cell { row, column });
        }
    }
    let (d, x) = (e.duration_s? as f32, e.extreme_pct? as f32);
    let c = match e.kind.as_str() {
        "swell" => classify::en50160_swell_cell(d, x),
        _ => classify::en50160_dip_cell(d, x),
    }?;
    Some(Cell {
        row: c.row.into(),
        column: c.column.into(),
    })
}

fn overlaps(e: &EventRow, l: &Loss) -> bool {
    let e_end = e.end.unwrap_or(DateTime::<Utc>::MAX_UTC);
    let l_end = l.end.unwrap_or(DateTime::<Utc>::MAX_UTC);
    e.start <= l_end && l.start <= e_end
}

/// The power-quality section. `losses` are the continuity section's half-cycle losses (unclipped).
pub(crate) fn power_quality(events: &[EventRow], losses: &[Loss], period: &Period) -> PowerQuality {
    let mut dips_t = table(&classify::DIP_ROWS, &classify::DIP_COLUMNS);
    let mut swells_t = table(&classify::SWELL_ROWS, &classify::SWELL_COLUMNS);
    let mut counted: Vec<&EventRow> = events
        .iter()
        .filter(|e| e.kind == "dip" || e.kind == "swell")
        .filter(|e| period.from <= e.start && e.start < period.to)
        .filter(|e| e.kind == "swell" || !losses.iter().any(|l| l.half_cycle && overlaps(e, l)))
        .collect();
    counted.sort_by_key(|e| (e.start, e.id));
    let mut out = PowerQuality {
        dips: 0,
        swells: 0,
        below_itic: 0,
        above_itic: 0,
        below_semi_f47: 0,
        en50160_dips: CountTable::default(),
        en50160_swells: CountTable::default(),
        events: Vec::new(),
        worst: Vec::new(),
    };
    for e in &counted {
        // As the event's JSON says; an event stored without them (an older kare) is judged here
        // by the same classifier.
        let judged = |f: fn(EventKind, f32, f32) -> Option<&'static str>| {
            let kind = if e.kind == "swell" {
                EventKind::Swell
            } else {
                EventKind::Dip
            };
            f(kind, e.duration_s? as f32, e.extreme_pct? as f32).map(str::to_string)
        };
        let itic = str_of(&e.json, "itic")
            .or_else(|| judged(|k, d, x| Some(classify::itic(k, d, x).as_str())));
        let semi = match e.json.get("semi_f47") {
            Some(v) => v.as_str().map(str::to_string),
            None => judged(|k, d, x| classify::semi_f47(k, d, x).map(|s| s.as_str())),
        };
        let cell = cell_of(e);
        if e.kind == "dip" {
            out.dips += 1;
        } else {
            out.swells += 1;
        }
        // `below_itic` is below the lower edge only; a swell over the upper edge is `above_itic`.
        match itic.as_deref() {
            Some("below") => out.below_itic += 1,
            Some("above") => out.above_itic += 1,
            _ => {}
        }
        if semi.as_deref() == Some("below") {
            out.below_semi_f47 += 1;
        }
        let in_table = match &cell {
            Some(c) if e.kind == "dip" => dips_t.add(c),
            Some(c) => swells_t.add(c),
            None => false,
        };
        out.events.push(PqEvent {
            id: e.id,
            kind: e.kind.clone(),
            start: e.start,
            duration_s: e.duration_s,
            extreme_pct: e.extreme_pct,
            worst_channel: e.worst_channel.clone(),
            itic,
            semi_f47: semi,
            en50160: cell.filter(|_| in_table),
            source: e.source.clone(),
        });
    }
    out.en50160_dips = dips_t;
    out.en50160_swells = swells_t;
    out.worst = worst(&counted);
    out
}

/// Severity for ranking: how far from 100 % (a dip to 40 % is worse than a swell to 115 %).
fn severity(e: &EventRow) -> f64 {
    e.extreme_pct.map(|x| (100.0 - x).abs()).unwrap_or(0.0)
}

fn worst(counted: &[&EventRow]) -> Vec<WorstEvent> {
    let mut by: Vec<&&EventRow> = counted.iter().collect();
    by.sort_by(|a, b| {
        severity(b)
            .total_cmp(&severity(a))
            .then(
                b.duration_s
                    .unwrap_or(0.0)
                    .total_cmp(&a.duration_s.unwrap_or(0.0)),
            )
            .then(a.id.cmp(&b.id))
    });
    by.into_iter().take(WORST).map(|e| thumbnail(e)).collect()
}

/// The event's Urms(1/2) profile (`records[].start`, `records[].pct[]`, channels named by the
/// event JSON's `channel_extremes_pct`), thinned to [`THUMB_POINTS`] by keeping each bucket's
/// extreme (lowest for a dip, highest for a swell).
fn thumbnail(e: &EventRow) -> WorstEvent {
    let names: Vec<String> = e
        .json
        .get("channel_extremes_pct")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let records: Vec<(f64, Vec<f64>)> = e
        .profile_json
        .as_ref()
        .and_then(|p| p.get("records"))
        .and_then(Value::as_array)
        .map(|rs| {
            rs.iter()
                .filter_map(|r| {
                    let t = r
                        .get("start")
                        .and_then(Value::as_str)
                        .and_then(crate::store::parse_ts)?;
                    let pct: Vec<f64> = r
                        .get("pct")?
                        .as_array()?
                        .iter()
                        .map(|v| v.as_f64().unwrap_or(f64::NAN))
                        .collect();
                    let dt = (t - e.start).num_microseconds()? as f64 / 1e6;
                    Some((dt, pct))
                })
                .collect()
        })
        .unwrap_or_default();
    let n_ch = records.iter().map(|r| r.1.len()).max().unwrap_or(0);
    let bucket = records.len().div_ceil(THUMB_POINTS).max(1);
    let swell = e.kind == "swell";
    let mut t_s = Vec::new();
    let mut chans: Vec<Vec<f64>> = vec![Vec::new(); n_ch];
    for chunk in records.chunks(bucket) {
        t_s.push((chunk[0].0 * 1e4).round() / 1e4);
        for (c, out) in chans.iter_mut().enumerate() {
            let vals = chunk
                .iter()
                .filter_map(|r| r.1.get(c))
                .copied()
                .filter(|v| v.is_finite());
            let v = if swell {
                vals.fold(f64::NAN, f64::max)
            } else {
                vals.fold(f64::NAN, f64::min)
            };
            out.push((v * 100.0).round() / 100.0);
        }
    }
    WorstEvent {
        id: e.id,
        t_s,
        channels: chans
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                (
                    names
                        .get(i)
                        .cloned()
                        .unwrap_or_else(|| format!("ch{}", i + 1)),
                    v,
                )
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_rows::{at, ev};
    use super::*;
    use serde_json::json;

    #[test]
    fn a_swell_above_the_itic_curve_counts_as_above_not_below() {
        // A 0.6-s swell at 115 %: ITIC allows 110 % after 0.5 s, so it is above the curve.
        let mut swell = ev(1, "swell", "n1", at(3, 10, 0, 0, 0), 0.6);
        swell.extreme_pct = Some(115.0);
        swell.json = json!({"itic": "above"});
        // The same swell from an older kare, without the judgement in its JSON.
        let mut old = ev(2, "swell", "n1", at(4, 10, 0, 0, 0), 0.6);
        old.extreme_pct = Some(115.0);
        let mut dip = ev(3, "dip", "n1", at(5, 10, 0, 0, 0), 0.3);
        dip.extreme_pct = Some(60.0);
        let period = Period {
            from: at(1, 0, 0, 0, 0),
            to: at(30, 0, 0, 0, 0),
        };
        let pq = power_quality(&[swell, old, dip], &[], &period);
        assert_eq!((pq.below_itic, pq.above_itic), (1, 2));
    }
}
