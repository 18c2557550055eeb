//! The report's tables as CSV (RFC 4180: comma-separated, fields with a comma, quote or line
//! break quoted, CRLF-free `\n` lines, UTF-8): one file per table, for `kare report --format csv`.
//! Times are RFC 3339 UTC; an unknown value is an empty field.

use crate::report::model::{CountTable, Report};
use chrono::{DateTime, SecondsFormat, Utc};
use std::fmt::Display;
use std::path::Path;

/// One CSV field.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn opt<T: Display>(v: &Option<T>) -> String {
    v.as_ref().map(|v| v.to_string()).unwrap_or_default()
}

fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn opt_ts(t: &Option<DateTime<Utc>>) -> String {
    t.as_ref().map(ts).unwrap_or_default()
}

struct Table {
    text: String,
}

impl Table {
    fn new(header: &[&str]) -> Table {
        let mut t = Table {
            text: String::new(),
        };
        t.row(header.iter().map(|s| s.to_string()).collect());
        t
    }

    fn row(&mut self, cells: Vec<String>) {
        let line: Vec<String> = cells.iter().map(|c| field(c)).collect();
        self.text.push_str(&line.join(","));
        self.text.push('\n');
    }
}

fn count_table(t: &CountTable) -> String {
    let mut header = vec!["residual_or_max".to_string()];
    header.extend(t.columns.iter().cloned());
    let mut out = Table::new(&header.iter().map(String::as_str).collect::<Vec<_>>());
    for (r, counts) in t.rows.iter().zip(&t.counts) {
        let mut cells = vec![r.clone()];
        cells.extend(counts.iter().map(|n| n.to_string()));
        out.row(cells);
    }
    out.text
}

/// Every table: (file name, contents), in the report's order.
pub fn tables(r: &Report) -> Vec<(&'static str, String)> {
    let s = &r.supply;
    let mut summary = Table::new(&["key", "value"]);
    let kv: Vec<(&str, String)> = vec![
        ("site_id", r.site.id.clone()),
        ("customer", r.site.customer.clone()),
        ("tier", r.site.tier.clone()),
        ("period_from", ts(&r.period.from)),
        ("period_to", ts(&r.period.to)),
        ("period_hours", r.period.hours.to_string()),
        ("momentary_max_s", s.momentary_max_s.to_string()),
        (
            "sustained_interruptions",
            s.sustained_interruptions.to_string(),
        ),
        (
            "momentary_interruptions",
            s.momentary_interruptions.to_string(),
        ),
        ("momentary_events", s.momentary_events.to_string()),
        ("sustained_minutes", s.sustained_minutes.to_string()),
        (
            "minutes_without_supply",
            s.minutes_without_supply.to_string(),
        ),
        (
            "longest_interruption_s",
            s.longest_interruption_s.to_string(),
        ),
        ("availability_pct", s.availability_pct.to_string()),
        ("aihc1_h", s.aihc1_h.to_string()),
        ("planned_count", s.planned.count.to_string()),
        ("planned_minutes", s.planned.minutes.to_string()),
        ("energy_not_supplied_kwh", opt(&s.energy_not_supplied_kwh)),
        ("dips", r.power_quality.dips.to_string()),
        ("swells", r.power_quality.swells.to_string()),
        ("below_itic", r.power_quality.below_itic.to_string()),
        ("above_itic", r.power_quality.above_itic.to_string()),
        ("below_semi_f47", r.power_quality.below_semi_f47.to_string()),
        ("energy_total_kwh", opt(&r.energy.total_kwh)),
        ("peak_demand_kw", opt(&r.energy.peak_demand_kw)),
        ("peak_at", opt_ts(&r.energy.peak_at)),
        ("generated_at", ts(&r.generated_at)),
    ];
    for (k, v) in kv {
        summary.row(vec![k.into(), v]);
    }

    let mut ints = Table::new(&[
        "start",
        "end",
        "duration_s",
        "class",
        "planned",
        "event_id",
        "ticket",
        "energy_not_supplied_kwh",
        "witnesses",
        "timed_by",
        "open",
        "clipped",
        "momentary_event",
    ]);
    for i in &s.interruptions {
        ints.row(vec![
            ts(&i.start),
            ts(&i.end),
            i.duration_s.to_string(),
            i.class.as_str().into(),
            i.planned.to_string(),
            opt(&i.event_id),
            opt(&i.ticket),
            opt(&i.energy_not_supplied_kwh),
            i.witnesses.join(" "),
            i.timed_by.clone(),
            i.open.to_string(),
            i.clipped.to_string(),
            opt(&i.momentary_event),
        ]);
    }

    let mut events = Table::new(&[
        "id",
        "kind",
        "start",
        "duration_s",
        "extreme_pct",
        "worst_channel",
        "itic",
        "semi_f47",
        "en50160_row",
        "en50160_column",
        "source",
    ]);
    for e in &r.power_quality.events {
        events.row(vec![
            e.id.to_string(),
            e.kind.clone(),
            ts(&e.start),
            opt(&e.duration_s),
            opt(&e.extreme_pct),
            opt(&e.worst_channel),
            opt(&e.itic),
            opt(&e.semi_f47),
            e.en50160
                .as_ref()
                .map(|c| c.row.clone())
                .unwrap_or_default(),
            e.en50160
                .as_ref()
                .map(|c| c.column.clone())
                .unwrap_or_default(),
            e.source.clone(),
        ]);
    }

    let mut steady = Table::new(&[
        "quantity",
        "standard",
        "limit",
        "intervals",
        "flagged",
        "in_limits_pct",
    ]);
    if let Some(v) = &r.steady_state.voltage {
        let gb = format!(
            "{:+}%/{:+}% ({})",
            v.gbt12325_low_pct, v.gbt12325_high_pct, v.gbt12325_level
        );
        steady.row(vec![
            "voltage".into(),
            "GB/T 12325".into(),
            gb,
            v.intervals.to_string(),
            v.flagged.to_string(),
            v.gbt12325_in_limits_pct.to_string(),
        ]);
        steady.row(vec![
            "voltage".into(),
            "EN 50160".into(),
            "±10% for 95%".into(),
            v.intervals.to_string(),
            v.flagged.to_string(),
            v.en50160_in_limits_pct.to_string(),
        ]);
    }
    if let Some(f) = &r.steady_state.frequency {
        steady.row(vec![
            "frequency".into(),
            "GB/T 15945".into(),
            format!("±{} Hz", f.gbt15945_limit_hz),
            f.intervals.to_string(),
            f.flagged.to_string(),
            f.gbt15945_in_limits_pct.to_string(),
        ]);
        steady.row(vec![
            "frequency".into(),
            "EN 50160".into(),
            "±1%".into(),
            f.intervals.to_string(),
            f.flagged.to_string(),
            f.en50160_in_limits_pct.to_string(),
        ]);
    }
    if let Some(t) = &r.steady_state.thd {
        steady.row(vec![
            "voltage THD".into(),
            "GB/T 14549".into(),
            format!("{}%", t.limit_pct),
            t.intervals.to_string(),
            "0".into(),
            t.in_limits_pct.to_string(),
        ]);
    }

    let mut days = Table::new(&["date", "kwh"]);
    for d in &r.energy.days {
        days.row(vec![d.date.clone(), d.kwh.to_string()]);
    }
    let mut months = Table::new(&[
        "month",
        "kwh",
        "kvarh",
        "power_factor",
        "standard",
        "meets_standard",
        "adjustment_pct",
    ]);
    for m in &r.energy.months {
        months.row(vec![
            m.month.clone(),
            m.kwh.to_string(),
            m.kvarh.to_string(),
            m.power_factor.to_string(),
            m.standard.to_string(),
            m.meets_standard.to_string(),
            opt(&m.adjustment_pct),
        ]);
    }

    let mut tickets = Table::new(&[
        "key",
        "kind",
        "state",
        "title",
        "supply_failed",
        "desk_told_ms",
        "ended",
        "duration_s",
        "failures",
        "generator_requested",
        "generator_cancelled",
        "planned_reference",
    ]);
    for t in &r.service.tickets {
        tickets.row(vec![
            t.key.clone(),
            t.kind.clone(),
            t.state.clone(),
            t.title.clone(),
            ts(&t.supply_failed),
            opt(&t.desk_told_ms),
            opt_ts(&t.ended),
            opt(&t.duration_s),
            opt(&t.failures),
            opt_ts(&t.generator_requested),
            opt_ts(&t.generator_cancelled),
            opt(&t.planned_reference),
        ]);
    }

    let mut notes = Table::new(&["code", "text"]);
    for n in &r.notes {
        notes.row(vec![n.code.clone(), n.text.clone()]);
    }

    vec![
        ("summary.csv", summary.text),
        ("interruptions.csv", ints.text),
        ("pq_events.csv", events.text),
        (
            "en50160_dips.csv",
            count_table(&r.power_quality.en50160_dips),
        ),
        (
            "en50160_swells.csv",
            count_table(&r.power_quality.en50160_swells),
        ),
        ("steady_state.csv", steady.text),
        ("energy_days.csv", days.text),
        ("power_factor_months.csv", months.text),
        ("service_tickets.csv", tickets.text),
        ("notes.csv", notes.text),
    ]
}

/// Writes every table into `dir` (created if missing).
pub fn write_folder(r: &Report, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in tables(r) {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn fields_with_commas_quotes_or_breaks_are_quoted() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
    }
}
