//! The three ways `kare replay` prints a report: JSON (the contract in design.md), CSV, and a
//! table for people.

use super::ReplayReport;
pub use crate::pipeline::events::event_json;
use crate::pipeline::events::{round, timestamp};
use crate::recording::printable;
use chrono::SecondsFormat;
use serde_json::{json, Value};
use std::fmt::Write as _;

/// The whole report as the contract's JSON object.
pub fn json(r: &ReplayReport) -> Value {
    json!({
        "udin": r.udin,
        "frequency_hz": r.frequency_hz,
        "channels": r.channels,
        "events": r.events.iter().map(event_json).collect::<Vec<_>>(),
        "sample_rate_hz": round(r.sample_rate_hz, 6),
        "resampled": r.resampled,
        "samples": r.samples,
        "length_s": round(r.length_s, 6),
        "recording_start": r.start.to_rfc3339_opts(SecondsFormat::Micros, true),
        "start_from_file": r.start_from_file,
        "start_unreadable": r.start_unreadable,
        "samples_read": r.samples_read,
        "samples_declared": r.samples_declared,
        "truncated": r.truncated,
        "windows_judged": r.windows_judged,
        "flagged": {
            "windows": r.flagged.windows,
            "missing_samples": r.flagged.missing_samples,
            "out_of_range_samples": r.flagged.out_of_range_samples,
            "gaps": r.flagged.gaps.iter().map(|g| json!({
                "start": gap_start(r, g.offset_s),
                "offset_s": round(g.offset_s, 6),
                "duration_s": round(g.duration_s, 6),
            })).collect::<Vec<_>>(),
        },
        "thresholds_pct": {
            "dip": r.thresholds.dip_pct,
            "swell": r.thresholds.swell_pct,
            "interruption": r.thresholds.interruption_pct,
            "hysteresis": r.thresholds.hysteresis_pct,
        },
    })
}

/// A gap's start in UTC, from the recording's start (valid RFC 3339: analyse refuses records
/// whose times run past the year 9999).
fn gap_start(r: &ReplayReport, offset_s: f64) -> String {
    (r.start + chrono::Duration::nanoseconds((offset_s * 1e9).round() as i64))
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One header line and one line per event.
pub fn csv(r: &ReplayReport) -> String {
    let mut out = String::from(
        "kind,start,offset_s,duration_s,extreme_pct,worst_channel,itic,semi_f47,en50160_row,en50160_column,ieee1159\n",
    );
    for e in &r.events {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{}",
            e.kind.as_str(),
            timestamp(e),
            round(e.offset_s, 6),
            e.duration_s
                .map(|d| round(d, 6).to_string())
                .unwrap_or_default(),
            round(e.extreme_pct, 2),
            csv_field(&e.worst_channel),
            e.itic.as_str(),
            e.semi_f47.map(|s| s.as_str()).unwrap_or(""),
            e.en50160.map(|c| c.row).unwrap_or(""),
            e.en50160.map(|c| c.column).unwrap_or(""),
            e.ieee1159.as_str(),
        );
    }
    out
}

/// A table for people: one line per event, and a summary of what was analysed.
pub fn table(r: &ReplayReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} channel(s) {} | Udin {} | {} Hz | {:.1} samples/s{} | {:.3} s of data from {}{}",
        r.channels.len(),
        printable(&r.channels.join(", ")),
        r.udin,
        r.frequency_hz,
        r.sample_rate_hz,
        if r.resampled { " (resampled)" } else { "" },
        r.length_s,
        r.start.to_rfc3339_opts(SecondsFormat::Micros, true),
        if r.start_from_file {
            ""
        } else if r.start_unreadable.is_some() {
            " (the file's start date is impossible)"
        } else {
            " (no time stamp in file)"
        },
    );
    for w in r.warnings() {
        let _ = writeln!(out, "warning: {w}");
    }
    let _ = writeln!(
        out,
        "thresholds: dip {} %, swell {} %, interruption {} %, hysteresis {} % of Udin",
        r.thresholds.dip_pct,
        r.thresholds.swell_pct,
        r.thresholds.interruption_pct,
        r.thresholds.hysteresis_pct
    );
    if r.events.is_empty() {
        let _ = writeln!(out, "no events");
        return out;
    }
    let header = [
        "kind",
        "start (UTC)",
        "offset s",
        "duration s",
        "extreme %",
        "channel",
        "ITIC",
        "SEMI F47",
        "EN 50160 cell",
        "IEEE 1159",
    ];
    let rows: Vec<[String; 10]> = r
        .events
        .iter()
        .map(|e| {
            [
                e.kind.as_str().to_string(),
                timestamp(e),
                format!("{:.4}", e.offset_s),
                e.duration_s
                    .map(|d| format!("{d:.4}"))
                    .unwrap_or_else(|| "open at end".into()),
                format!("{:.1}", e.extreme_pct),
                printable(&e.worst_channel).into_owned(),
                e.itic.as_str().to_string(),
                e.semi_f47.map(|s| s.as_str()).unwrap_or("-").to_string(),
                e.en50160
                    .map(|c| format!("{} / {}", c.row, c.column))
                    .unwrap_or_else(|| "-".into()),
                e.ieee1159.as_str().to_string(),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::new();
        for (i, c) in cells.enumerate() {
            let _ = write!(s, "{:<w$}  ", c, w = widths[i]);
        }
        s.trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(&mut header.iter().copied()));
    for row in &rows {
        let _ = writeln!(out, "{}", line(&mut row.iter().map(|s| s.as_str())));
    }
    let _ = writeln!(out, "{} event(s)", r.events.len());
    out
}

/// Every Urms(1/2) record as CSV: window start and end (s), one column per channel (% of Udin),
/// frequency and lock.
pub fn rms_csv(r: &ReplayReport) -> String {
    let mut out = String::from("start_s,end_s");
    for c in &r.channels {
        let _ = write!(out, ",{}_pct", csv_field(c));
    }
    out.push_str(",frequency_hz,locked,flagged\n");
    for rec in &r.rms {
        let _ = write!(out, "{:.6},{:.6}", rec.start_s, rec.end_s);
        for v in &rec.pct {
            let _ = write!(out, ",{v:.3}");
        }
        let _ = writeln!(
            out,
            ",{:.3},{},{}",
            rec.frequency_hz, rec.locked, rec.flagged
        );
    }
    out
}
