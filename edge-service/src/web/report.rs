//! The key-account service report as HTML: [`report_document`] is the self-contained file that
//! `kare report --format html` writes (inline CSS and SVG, A4 portrait print with page breaks,
//! a header and a footer on every page); [`report_body`] is the same content, embedded in the
//! Report page. Every figure comes computed in the [`Report`]; this file only lays it out and
//! words it, in the reader's language.

use crate::report::{CountTable, Interruption, PqEvent, Report, ServiceTicket};
use crate::web::charts::{self, Curve, EventPoint, Profile};
use crate::web::i18n::Lang;
use chrono::{DateTime, Utc};
use maud::{html, Markup, PreEscaped, DOCTYPE};

/// The report's own stylesheet (screen and print).
pub(crate) const REPORT_CSS: &str = include_str!("../../assets/report.css");

/// Where an event on a chart or in a table links to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventLinks {
    /// To its row in this document's event table (`#event-7`): the printed or mailed file has
    /// no server behind it.
    InDocument,
    /// To the appliance's event page (`/events/7`).
    Pages,
}

impl EventLinks {
    fn href(self, id: i64) -> String {
        match self {
            EventLinks::InDocument => format!("#event-{id}"),
            EventLinks::Pages => format!("/events/{id}"),
        }
    }
}

/// The whole report as one HTML file: nothing loaded from elsewhere, prints on A4 portrait.
pub fn report_document(r: &Report, lang: Lang) -> String {
    let title = format!("{} · {}", lang.t("report-title"), r.site.customer);
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(REPORT_CSS)) (PreEscaped(print_margins_css(r, lang))) }
            }
            body.report-doc {
                (report_body(r, lang, EventLinks::InDocument))
            }
        }
    }
    .into_string()
}

/// The printed page's header and footer (CSS page-margin boxes): the customer and period at the
/// top, "page n / N" at the bottom. The customer's name goes into a CSS string, so it is
/// escaped for CSS (every character but letters, digits and spaces as `\hex `).
pub(crate) fn print_margins_css(r: &Report, lang: Lang) -> String {
    let head = format!(
        "{} · {} · {}",
        lang.t("report-title"),
        r.site.customer,
        period_text(r, lang)
    );
    format!(
        "@page {{ @top-center {{ content: \"{}\"; }} @bottom-right {{ content: \"{} \" counter(page) \" {} \" counter(pages) \" {}\"; }} @bottom-left {{ content: \"kare · {}\"; }} }}",
        css_string(&head),
        css_string(&lang.t("report-page-a")),
        css_string(&lang.t("report-page-b")),
        css_string(&lang.t("report-page-c")),
        css_string(&r.site.id),
    )
}

/// Escapes text for a double-quoted CSS string (and so for a `<style>` element: no `<`, `"`,
/// `\` or newline survives).
fn css_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_alphanumeric() && !c.is_ascii_control() || c == ' ' {
            out.push(c);
        } else {
            out.push_str(&format!("\\{:x} ", c as u32));
        }
    }
    out
}

fn period_text(r: &Report, lang: Lang) -> String {
    lang.ta(
        "report-period-range",
        &[
            ("from", &fmt_time(r.period.from)),
            ("to", &fmt_time(r.period.to)),
        ],
    )
}

/// A time as the report and the pages print it: UTC (said once, at the top), to the second.
pub(crate) fn fmt_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A time to the millisecond, for half-cycle timing.
pub(crate) fn fmt_time_ms(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

/// A duration in words: `0.120 s`, `6 min 40 s`, `2 h 5 min`.
pub(crate) fn fmt_duration(s: f64, lang: Lang) -> String {
    if !s.is_finite() {
        return "—".into();
    }
    if s < 60.0 {
        let v = if s < 10.0 {
            format!("{s:.3}")
        } else {
            format!("{s:.1}")
        };
        return lang.ta("dur-s", &[("s", &v)]);
    }
    let total = s.round() as i64;
    let (h, m, sec) = (total / 3600, (total % 3600) / 60, total % 60);
    if h > 0 {
        lang.ta("dur-hm", &[("h", &h.to_string()), ("m", &m.to_string())])
    } else {
        lang.ta("dur-ms", &[("m", &m.to_string()), ("s", &sec.to_string())])
    }
}

/// A number to `d` decimals, `—` when absent or not finite.
pub(crate) fn num(v: Option<f64>, d: usize) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.d$}"),
        _ => "—".into(),
    }
}

fn yes_no(b: bool, lang: Lang) -> String {
    lang.t(if b { "word-yes" } else { "word-no" })
}

/// A message by a key built from data (`kind-dip`), falling back to the raw value when this
/// build has no words for it (a kind added later shows as itself, never as an id).
pub(crate) fn word(lang: Lang, prefix: &str, value: &str) -> String {
    // Fluent ids are letters, digits, `-` and `_`: `35kV+` is looked up as `35kVplus`.
    let id = format!("{prefix}-{}", value.replace('+', "plus"));
    let s = lang.t(&id);
    if s == id {
        value.to_string()
    } else {
        s
    }
}

/// The report's content: header, then one section per chapter.
pub fn report_body(r: &Report, lang: Lang, links: EventLinks) -> Markup {
    html! {
        article.report {
            header.report-head {
                h1 { (lang.t("report-title")) }
                p.customer { (r.site.customer) }
                dl.facts {
                    dt { (lang.t("report-site")) } dd { (r.site.id) }
                    dt { (lang.t("report-customer-id")) } dd { (r.site.customer_id) }
                    dt { (lang.t("report-address")) } dd { (r.site.address) }
                    dt { (lang.t("report-tier")) } dd { (word(lang, "tier", &r.site.tier)) }
                    dt { (lang.t("report-nominal")) } dd { (num(Some(r.site.nominal_kv), 3)) " kV" }
                    dt { (lang.t("report-account-manager")) } dd { (r.site.account_manager) }
                    dt { (lang.t("report-period")) } dd { (period_text(r, lang)) " (" (lang.ta("report-hours", &[("h", &num(Some(r.period.hours), 1))])) ")" }
                    dt { (lang.t("report-generated")) } dd { (fmt_time(r.generated_at)) }
                }
                p.small { (lang.t("times-utc")) }
                @if !r.notes.is_empty() {
                    ul.notes {
                        @for n in &r.notes {
                            li { (note_text(lang, &n.code, &n.text)) }
                        }
                    }
                }
            }
            (continuity(r, lang, links))
            (quality(r, lang, links))
            (steady(r, lang))
            (energy(r, lang))
            (service(r, lang))
        }
    }
}

/// A note in the reader's language: the report writes its notes in English (with their figures),
/// so English readers get that text; other languages get the note's translation by its code,
/// or the English text when this build has none.
fn note_text(lang: Lang, code: &str, text: &str) -> String {
    if lang == Lang::En {
        return text.to_string();
    }
    let id = format!("note-{code}");
    let s = lang.t(&id);
    if s == id {
        text.to_string()
    } else {
        s
    }
}

fn continuity(r: &Report, lang: Lang, links: EventLinks) -> Markup {
    let s = &r.supply;
    let rows: Vec<(String, &str, &str, String)> = vec![
        (
            lang.t("kpi-sustained"),
            "SAIFI",
            "AITC-1",
            s.sustained_interruptions.to_string(),
        ),
        (
            lang.t("kpi-momentary"),
            "MAIFI",
            "—",
            s.momentary_interruptions.to_string(),
        ),
        (
            lang.t("kpi-momentary-events"),
            "MAIFIe",
            "—",
            s.momentary_events.to_string(),
        ),
        (
            lang.t("kpi-sustained-minutes"),
            "SAIDI",
            "AIHC-1",
            format!(
                "{} ({} h)",
                num(Some(s.sustained_minutes), 2),
                num(Some(s.aihc1_h), 3)
            ),
        ),
        (
            lang.t("kpi-without-supply"),
            "—",
            "—",
            num(Some(s.minutes_without_supply), 2),
        ),
        (
            lang.t("kpi-longest"),
            "—",
            "—",
            fmt_duration(s.longest_interruption_s, lang),
        ),
        (
            lang.t("kpi-availability"),
            "ASAI",
            "RS-1",
            format!("{} %", num(Some(s.availability_pct), 5)),
        ),
        (
            lang.t("kpi-planned"),
            "—",
            "—",
            lang.ta(
                "kpi-planned-value",
                &[
                    ("count", &s.planned.count.to_string()),
                    ("minutes", &num(Some(s.planned.minutes), 1)),
                ],
            ),
        ),
        (
            lang.t("kpi-ens"),
            "—",
            "—",
            s.energy_not_supplied_kwh
                .map(|v| format!("{v:.1} kWh"))
                .unwrap_or_else(|| lang.t("kpi-ens-none")),
        ),
    ];
    html! {
        section.chapter #continuity {
            h2 { (lang.t("sec-continuity")) }
            p.lead { (lang.ta("report-threshold", &[("s", &num(Some(s.momentary_max_s), 0))])) }
            table.kpi {
                thead { tr { th { (lang.t("col-index")) } th { "IEEE 1366" } th { "DL/T 836.1" } th.n { (lang.t("col-value")) } } }
                tbody {
                    @for (name, ieee, dlt, value) in &rows {
                        tr { td { (name) } td { (ieee) } td { (dlt) } td.n { (value) } }
                    }
                }
            }
            h3 { (lang.t("sec-interruptions")) }
            @if s.interruptions.is_empty() {
                p.empty { (lang.t("report-no-interruptions")) }
            } @else {
                table.interruptions {
                    thead { tr {
                        th { (lang.t("col-start")) } th { (lang.t("col-end")) } th.n { (lang.t("col-duration")) }
                        th { (lang.t("col-class")) } th { (lang.t("col-planned")) } th { (lang.t("col-timed-by")) }
                        th { (lang.t("col-ticket")) } th.n { (lang.t("col-ens")) }
                    } }
                    tbody {
                        @for i in &s.interruptions { (interruption_row(i, lang, links)) }
                    }
                }
            }
        }
    }
}

fn interruption_row(i: &Interruption, lang: Lang, links: EventLinks) -> Markup {
    let start = if i.timed_by == "half-cycle" {
        fmt_time_ms(i.start)
    } else {
        fmt_time(i.start)
    };
    html! {
        tr class=(format!("interruption {}", i.class.as_str())) {
            td {
                @if let Some(id) = i.event_id {
                    @if links == EventLinks::Pages { a href=(links.href(id)) { (start) } } @else { (start) }
                } @else { (start) }
            }
            td { (fmt_time(i.end)) @if i.open { " " span.tag { (lang.t("interruption-open")) } } }
            td.n { (fmt_duration(i.duration_s, lang)) @if i.clipped { " " span.tag { (lang.t("interruption-clipped")) } } }
            td.nw { (word(lang, "class", i.class.as_str())) }
            td.nw { (yes_no(i.planned, lang)) }
            td { (word(lang, "timed", &i.timed_by)) }
            td.key { (i.ticket.as_deref().unwrap_or("—")) }
            td.n { (num(i.energy_not_supplied_kwh, 1)) }
        }
    }
}

fn quality(r: &Report, lang: Lang, links: EventLinks) -> Markup {
    let pq = &r.power_quality;
    let point = |e: &PqEvent, curve: Curve| -> Option<EventPoint> {
        let d = e.duration_s?;
        let pct = e.extreme_pct?;
        let outside = match curve {
            Curve::Itic => e.itic.as_deref().is_some_and(|v| v != "inside"),
            Curve::SemiF47 => e.semi_f47.as_deref() == Some("below"),
        };
        Some(EventPoint {
            href: links.href(e.id),
            label: format!(
                "#{} {} {} % · {} · {}",
                e.id,
                word(lang, "kind", &e.kind),
                num(Some(pct), 1),
                fmt_duration(d, lang),
                fmt_time_ms(e.start)
            ),
            duration_s: d,
            pct,
            outside,
        })
    };
    let itic: Vec<EventPoint> = pq
        .events
        .iter()
        .filter_map(|e| point(e, Curve::Itic))
        .collect();
    let f47: Vec<EventPoint> = pq
        .events
        .iter()
        .filter(|e| e.kind == "dip")
        .filter_map(|e| point(e, Curve::SemiF47))
        .collect();
    html! {
        section.chapter #quality {
            h2 { (lang.t("sec-quality")) }
            table.kpi {
                tbody {
                    tr { td { (lang.t("pq-dips")) } td.n { (pq.dips) } }
                    tr { td { (lang.t("pq-swells")) } td.n { (pq.swells) } }
                    tr { td { (lang.t("pq-below-itic")) } td.n { (pq.below_itic) } }
                    tr { td { (lang.t("pq-above-itic")) } td.n { (pq.above_itic) } }
                    tr { td { (lang.t("pq-below-f47")) } td.n { (pq.below_semi_f47) } }
                }
            }
            div.tables {
                (en50160_table(&pq.en50160_dips, &lang.t("en50160-dips-title"), &lang.t("en50160-residual"), lang))
                (en50160_table(&pq.en50160_swells, &lang.t("en50160-swells-title"), &lang.t("en50160-swell-voltage"), lang))
            }
            div.charts {
                figure { (PreEscaped(charts::ride_through(Curve::Itic, &itic, lang))) figcaption { (lang.t("chart-itic-caption")) } }
                figure { (PreEscaped(charts::ride_through(Curve::SemiF47, &f47, lang))) figcaption { (lang.t("chart-f47-caption")) } }
            }
            @if !pq.worst.is_empty() {
                h3 { (lang.t("pq-worst")) }
                div.thumbs {
                    @for w in &pq.worst {
                        figure.thumb {
                            a href=(links.href(w.id)) {
                                (PreEscaped(charts::profile_chart(&Profile { t_s: w.t_s.clone(), channels: w.channels.clone() }, lang, true)))
                            }
                            figcaption { (worst_caption(pq.events.iter().find(|e| e.id == w.id), w.id, lang)) }
                        }
                    }
                }
            }
            h3 { (lang.t("pq-events")) }
            @if pq.events.is_empty() {
                p.empty { (lang.t("pq-no-events")) }
            } @else {
                table.events {
                    thead { tr {
                        th { "#" } th { (lang.t("col-start")) } th { (lang.t("col-kind")) } th.n { (lang.t("col-extreme")) }
                        th.n { (lang.t("col-duration")) } th { (lang.t("col-channel")) } th { "ITIC" } th { "SEMI F47" } th { "EN 50160" }
                    } }
                    tbody {
                        @for e in &pq.events {
                            tr id=(format!("event-{}", e.id)) {
                                td { @if links == EventLinks::Pages { a href=(links.href(e.id)) { (e.id) } } @else { (e.id) } }
                                td { (fmt_time_ms(e.start)) }
                                td { (word(lang, "kind", &e.kind)) }
                                td.n { (num(e.extreme_pct, 1)) " %" }
                                td.n { (e.duration_s.map(|d| fmt_duration(d, lang)).unwrap_or_else(|| lang.t("event-open"))) }
                                td { (e.worst_channel.as_deref().unwrap_or("—")) }
                                td { (e.itic.as_deref().map(|v| word(lang, "itic", v)).unwrap_or_else(|| "—".into())) }
                                td { (e.semi_f47.as_deref().map(|v| word(lang, "f47", v)).unwrap_or_else(|| "—".into())) }
                                td { (e.en50160.as_ref().map(|c| format!("{} / {}", c.row, c.column)).unwrap_or_else(|| "—".into())) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn worst_caption(e: Option<&PqEvent>, id: i64, lang: Lang) -> String {
    match e {
        Some(e) => format!(
            "#{id} {} {} % · {}",
            word(lang, "kind", &e.kind),
            num(e.extreme_pct, 1),
            e.duration_s
                .map(|d| fmt_duration(d, lang))
                .unwrap_or_default()
        ),
        None => format!("#{id}"),
    }
}

/// An EN 50160 table, cells shaded by count (none: white).
fn en50160_table(t: &CountTable, title: &str, row_head: &str, lang: Lang) -> Markup {
    let max = t.counts.iter().flatten().copied().max().unwrap_or(0);
    html! {
        table.en50160 {
            caption { (title) }
            thead { tr { th { (row_head) " \\ " (lang.t("en50160-duration")) } @for c in &t.columns { th.n { (c) } } } }
            tbody {
                @for (row, counts) in t.rows.iter().zip(&t.counts) {
                    tr {
                        th { (row) }
                        @for n in counts {
                            td.n class=(heat_class(*n, max)) { (n) }
                        }
                    }
                }
            }
        }
    }
}

fn heat_class(n: u32, max: u32) -> &'static str {
    if n == 0 || max == 0 {
        "heat0"
    } else if n * 3 <= max {
        "heat1"
    } else if n * 3 <= max * 2 {
        "heat2"
    } else {
        "heat3"
    }
}

fn steady(r: &Report, lang: Lang) -> Markup {
    let s = &r.steady_state;
    html! {
        section.chapter #steady {
            h2 { (lang.t("sec-steady")) }
            h3 { (lang.t("steady-voltage")) }
            @if let Some(v) = &s.voltage {
                table.kpi { tbody {
                    @if v.gbt12325_deviation_sum_pct.is_some() {
                        tr { td { (lang.t("steady-level")) } td.n { (word(lang, "level", &v.gbt12325_level)) } }
                    } @else {
                        tr { td { (lang.t("steady-level")) } td.n { (word(lang, "level", &v.gbt12325_level)) " (" (num(Some(v.gbt12325_low_pct), 0)) " % … +" (num(Some(v.gbt12325_high_pct), 0)) " %)" } }
                    }
                    tr { td { (lang.t("steady-intervals")) } td.n { (v.intervals) } }
                    tr { td { (lang.t("steady-flagged")) } td.n { (v.flagged) } }
                    @if let Some(sum) = v.gbt12325_deviation_sum_pct {
                        tr { td { (lang.t("steady-gbt-sum")) } td.n { (num(Some(sum), 2)) " % " @if let Some(w) = &v.gbt12325_worst_channel { "(" (w) ") " } (verdict(v.gbt12325_sum_within_limit == Some(true), lang)) } }
                    } @else {
                        tr { td { (lang.t("steady-gbt-in")) } td.n { (num(Some(v.gbt12325_in_limits_pct), 2)) " %" @if let Some(w) = &v.gbt12325_worst_channel { " (" (w) ")" } } }
                    }
                    tr { td { (lang.t("steady-en-in")) } td.n { (num(Some(v.en50160_in_limits_pct), 2)) " % " @if let Some(w) = &v.worst_channel { "(" (w) ") " } (verdict(v.en50160_compliant, lang)) } }
                } }
                p.caption { (lang.t("steady-worst-channel")) }
                @if !v.channels.is_empty() {
                    table { thead { tr { th { (lang.t("col-channel")) } th.n { (lang.t("steady-min")) } th.n { (lang.t("steady-max")) } th.n { (lang.t("steady-intervals")) } @if v.gbt12325_deviation_sum_pct.is_some() { th.n { (lang.t("steady-gbt-sum-short")) } } @else { th.n { (lang.t("steady-gbt-in")) } } th.n { (lang.t("steady-en-in-short")) } } }
                        tbody { @for c in &v.channels { tr { td { (c.channel) } td.n { (num(Some(c.min_pct), 2)) " %" } td.n { (num(Some(c.max_pct), 2)) " %" } td.n { (c.intervals) } @if let Some(sum) = c.gbt12325_deviation_sum_pct { td.n { (num(Some(sum), 2)) " %" } } @else { td.n { (num(Some(c.gbt12325_in_limits_pct), 2)) " %" } } td.n { (num(Some(c.en50160_in_limits_pct), 2)) " %" } } } }
                    }
                }
            } @else { p.empty { (lang.t("steady-no-voltage")) } }
            h3 { (lang.t("steady-frequency")) }
            @if let Some(f) = &s.frequency {
                table.kpi { tbody {
                    tr { td { (lang.t("steady-nominal-hz")) } td.n { (num(Some(f.nominal_hz), 0)) " Hz" } }
                    tr { td { (lang.t("steady-freq-values")) } td.n { (f.intervals) } }
                    tr { td { (lang.t("steady-flagged")) } td.n { (f.flagged) } }
                    tr { td { (lang.ta("steady-freq-gbt", &[("limit", &num(Some(f.gbt15945_limit_hz), 1))])) } td.n { (num(Some(f.gbt15945_in_limits_pct), 3)) " %" } }
                    tr { td { (lang.t("steady-freq-en")) } td.n { (num(Some(f.en50160_in_limits_pct), 3)) " %" } }
                    tr { td { (lang.t("steady-range")) } td.n { (num(Some(f.min_hz), 3)) " … " (num(Some(f.max_hz), 3)) " Hz" } }
                } }
            } @else { p.empty { (lang.t("steady-no-frequency")) } }
            h3 { (lang.t("steady-thd")) }
            @if let Some(t) = &s.thd {
                table.kpi { tbody {
                    tr { td { (lang.t("steady-thd-limit")) } td.n { (num(Some(t.limit_pct), 1)) " %" } }
                    tr { td { (lang.t("steady-thd-values")) } td.n { (t.intervals) } }
                    tr { td { (lang.t("steady-thd-p95")) } td.n { (num(Some(t.p95_pct), 2)) " % " (verdict(t.p95_pct <= t.limit_pct, lang)) } }
                    tr { td { (lang.t("steady-thd-max")) } td.n { (num(Some(t.max_pct), 2)) " %" } }
                    tr { td { (lang.t("steady-thd-in")) } td.n { (num(Some(t.in_limits_pct), 2)) " %" } }
                } }
            } @else { p.empty { (lang.t("steady-no-thd")) } }
        }
    }
}

fn verdict(ok: bool, lang: Lang) -> Markup {
    html! {
        @if ok { span.ok { (lang.t("verdict-meets")) } } @else { span.bad { (lang.t("verdict-fails")) } }
    }
}

fn energy(r: &Report, lang: Lang) -> Markup {
    let e = &r.energy;
    let days: Vec<(String, f64)> = e.days.iter().map(|d| (d.date.clone(), d.kwh)).collect();
    html! {
        section.chapter #energy {
            h2 { (lang.t("sec-energy")) }
            @if e.meters.is_empty() && e.days.is_empty() {
                p.empty { (lang.t("energy-none")) }
            } @else {
                table.kpi { tbody {
                    tr { td { (lang.t("energy-meters")) } td { (e.meters.join(", ")) } }
                    tr { td { (lang.t("energy-total")) } td.n { (num(e.total_kwh, 1)) " kWh" } }
                    tr { td { (lang.t("energy-peak")) } td.n { (num(e.peak_demand_kw, 1)) " kW" @if let Some(at) = e.peak_at { " (" (fmt_time(at)) ")" } } }
                } }
                @if !days.is_empty() {
                    figure { (PreEscaped(charts::energy_bars(&days, lang))) figcaption { (lang.t("chart-energy-title")) } }
                }
                @if !e.months.is_empty() {
                    h3 { (lang.t("energy-pf")) }
                    table { thead { tr {
                        th { (lang.t("col-month")) } th.n { "kWh" } th.n { "kvarh" } th.n { (lang.t("col-pf")) }
                        th.n { (lang.t("col-standard")) } th { (lang.t("col-verdict")) } th.n { (lang.t("col-adjustment")) }
                    } }
                    tbody { @for m in &e.months { tr {
                        td { (m.month) } td.n { (num(Some(m.kwh), 1)) } td.n { (num(Some(m.kvarh), 1)) }
                        td.n { (num(Some(m.power_factor), 3)) } td.n { (num(Some(m.standard), 2)) }
                        td { (verdict(m.meets_standard, lang)) }
                        td.n { (m.adjustment_pct.map(|a| format!("{a:+.1} %")).unwrap_or_else(|| "—".into())) }
                    } } }
                    }
                }
            }
        }
    }
}

fn service(r: &Report, lang: Lang) -> Markup {
    html! {
        section.chapter #service {
            h2 { (lang.t("sec-service")) }
            @if r.service.tickets.is_empty() {
                p.empty { (lang.t("service-none")) }
            } @else {
                table.service {
                    thead { tr {
                        th { (lang.t("col-kind")) } th { (lang.t("col-ticket")) } th { (lang.t("col-supply-failed")) }
                        th.n { (lang.t("col-desk-told")) } th { (lang.t("col-ended")) } th.n { (lang.t("col-duration")) }
                        th { (lang.t("col-generator")) } th { (lang.t("col-state")) }
                    } }
                    tbody { @for t in &r.service.tickets { (ticket_row(t, lang)) } }
                }
            }
        }
    }
}

fn ticket_row(t: &ServiceTicket, lang: Lang) -> Markup {
    html! {
        tr {
            td { (word(lang, "ticket-kind", &t.kind)) }
            td.key { (t.key) br; small { (t.title) } @if let Some(p) = &t.planned_reference { br; small { (lang.t("col-planned-ref")) ": " (p) } } }
            td { (fmt_time_ms(t.supply_failed)) }
            td.n { (t.desk_told_ms.map(|ms| format!("{ms:.0} ms")).unwrap_or_else(|| "—".into())) }
            td { (t.ended.map(fmt_time).unwrap_or_else(|| "—".into())) }
            td.n { (t.duration_s.map(|d| fmt_duration(d, lang)).unwrap_or_else(|| "—".into())) }
            td {
                @if let Some(at) = t.generator_requested { (lang.t("generator-requested")) " " (fmt_time(at)) }
                @if let Some(at) = t.generator_cancelled { br; (lang.t("generator-cancelled")) " " (fmt_time(at)) }
                @if t.generator_requested.is_none() && t.generator_cancelled.is_none() { "—" }
            }
            td { (word(lang, "state", &t.state)) @if let Some(n) = t.failures { @if n > 1 { br; small { (lang.ta("ticket-failures", &[("n", &n.to_string())])) } } } }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::report::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, h, m, s).unwrap()
    }

    fn table(rows: &[&str], cols: &[&str], hit: (usize, usize)) -> CountTable {
        let mut counts = vec![vec![0; cols.len()]; rows.len()];
        counts[hit.0][hit.1] = 1;
        CountTable {
            rows: rows.iter().map(|s| s.to_string()).collect(),
            columns: cols.iter().map(|s| s.to_string()).collect(),
            counts,
        }
    }

    /// A month with one sustained outage of 400 s (event 42, repair ticket), one dip below ITIC
    /// and F47 (event 7), one swell; a customer whose name tries to inject a script.
    pub(crate) fn fixture() -> Report {
        use kare_firmware::classify::{DIP_COLUMNS, DIP_ROWS, SWELL_COLUMNS, SWELL_ROWS};
        Report {
            site: SiteSummary {
                id: "SITE-DEMO-01".into(),
                customer: "<script>alert(1)</script> Hospital".into(),
                tier: "critical".into(),
                customer_id: "C-1".into(),
                address: "1 Road".into(),
                nominal_kv: 10.0,
                account_manager: "Li Wei".into(),
            },
            period: PeriodSummary {
                from: Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap(),
                to: Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
                hours: 720.0,
            },
            supply: Supply {
                momentary_max_s: 300.0,
                interruptions: vec![Interruption {
                    start: t(8, 15, 0),
                    end: t(8, 21, 40),
                    duration_s: 400.0,
                    class: OutageClass::Sustained,
                    planned: false,
                    event_id: Some(42),
                    ticket: Some("SITE-DEMO-01-outage-20261126T081500Z".into()),
                    energy_not_supplied_kwh: Some(55.5),
                    witnesses: vec!["demo-node".into()],
                    timed_by: "half-cycle".into(),
                    open: false,
                    clipped: false,
                    momentary_event: None,
                }],
                sustained_interruptions: 1,
                momentary_interruptions: 0,
                momentary_events: 0,
                sustained_minutes: 6.667,
                minutes_without_supply: 6.667,
                longest_interruption_s: 400.0,
                availability_pct: 99.99846,
                aihc1_h: 0.111,
                planned: PlannedSummary {
                    count: 0,
                    minutes: 0.0,
                },
                energy_not_supplied_kwh: Some(55.5),
            },
            power_quality: PowerQuality {
                dips: 1,
                swells: 1,
                below_itic: 1,
                above_itic: 0,
                below_semi_f47: 1,
                en50160_dips: table(&DIP_ROWS, &DIP_COLUMNS, (2, 1)),
                en50160_swells: table(&SWELL_ROWS, &SWELL_COLUMNS, (1, 0)),
                events: vec![
                    PqEvent {
                        id: 7,
                        kind: "dip".into(),
                        start: t(9, 0, 0),
                        duration_s: Some(0.3),
                        extreme_pct: Some(45.0),
                        worst_channel: Some("VA".into()),
                        itic: Some("below".into()),
                        semi_f47: Some("below".into()),
                        en50160: Some(Cell {
                            row: "70>u>=40".into(),
                            column: "200-500ms".into(),
                        }),
                        source: "demo-node".into(),
                    },
                    PqEvent {
                        id: 8,
                        kind: "swell".into(),
                        start: t(10, 0, 0),
                        duration_s: Some(0.1),
                        extreme_pct: Some(115.0),
                        worst_channel: Some("VB".into()),
                        itic: Some("inside".into()),
                        semi_f47: None,
                        en50160: Some(Cell {
                            row: "120>u>110".into(),
                            column: "10-500ms".into(),
                        }),
                        source: "demo-node".into(),
                    },
                ],
                worst: vec![WorstEvent {
                    id: 7,
                    t_s: vec![-0.02, 0.0, 0.1, 0.3, 0.32],
                    channels: vec![("VA".into(), vec![100.0, 45.0, 45.0, 100.0, 100.0])],
                }],
            },
            steady_state: SteadyState {
                voltage: Some(VoltageCompliance {
                    gbt12325_level: "20kV-3ph".into(),
                    gbt12325_low_pct: -7.0,
                    gbt12325_high_pct: 7.0,
                    intervals: 12960,
                    flagged: 3,
                    gbt12325_in_limits_pct: 99.9,
                    gbt12325_worst_channel: Some("demo-node/VA".into()),
                    en50160_in_limits_pct: 100.0,
                    en50160_compliant: true,
                    worst_channel: Some("demo-node/VA".into()),
                    gbt12325_deviation_sum_pct: None,
                    gbt12325_sum_within_limit: None,
                    channels: vec![ChannelRange {
                        channel: "demo-node/VA".into(),
                        min_pct: 97.1,
                        max_pct: 103.2,
                        intervals: 4317,
                        gbt12325_in_limits_pct: 99.9,
                        en50160_in_limits_pct: 100.0,
                        gbt12325_deviation_sum_pct: None,
                    }],
                }),
                frequency: None,
                thd: None,
            },
            energy: Energy {
                meters: vec!["meters/incomer".into()],
                days: vec![
                    DayEnergy {
                        date: "2026-11-01".into(),
                        kwh: 1200.0,
                    },
                    DayEnergy {
                        date: "2026-11-02".into(),
                        kwh: 1100.0,
                    },
                ],
                total_kwh: Some(2300.0),
                peak_demand_kw: Some(210.0),
                peak_at: Some(t(11, 0, 0)),
                months: vec![MonthPowerFactor {
                    month: "2026-11".into(),
                    kwh: 2300.0,
                    kvarh: 900.0,
                    power_factor: 0.931,
                    standard: 0.9,
                    meets_standard: true,
                    adjustment_pct: Some(-0.15),
                }],
            },
            service: Service {
                tickets: vec![ServiceTicket {
                    key: "SITE-DEMO-01-outage-20261126T081500Z".into(),
                    kind: "repair".into(),
                    state: "closed".into(),
                    title: "Supply lost".into(),
                    supply_failed: t(8, 15, 0),
                    desk_told_ms: Some(412.0),
                    ended: Some(t(8, 21, 40)),
                    duration_s: Some(400.0),
                    failures: Some(1),
                    generator_requested: Some(t(8, 20, 0)),
                    generator_cancelled: Some(t(8, 21, 40)),
                    planned_reference: None,
                }],
            },
            notes: vec![Note {
                code: "no-frequency".into(),
                text: "No frequency values in the period.".into(),
            }],
            generated_at: Utc.with_ymd_and_hms(2026, 12, 1, 6, 0, 0).unwrap(),
        }
    }

    /// The text a person reads: tags removed, whitespace folded.
    pub(crate) fn visible_text(html: &str) -> String {
        let mut out = String::new();
        let mut in_tag = false;
        let mut skip_until: Option<&str> = None;
        let mut i = 0;
        while i < html.len() {
            let rest = &html[i..];
            if let Some(end) = skip_until {
                if rest.starts_with(end) {
                    skip_until = None;
                    i += end.len();
                } else {
                    i += rest.chars().next().map_or(1, char::len_utf8);
                }
                continue;
            }
            if !in_tag && rest.starts_with("<style") {
                skip_until = Some("</style>");
                continue;
            }
            if !in_tag && rest.starts_with("<script") {
                skip_until = Some("</script>");
                continue;
            }
            let c = rest.chars().next().unwrap_or(' ');
            match c {
                '<' => {
                    in_tag = true;
                    out.push(' ');
                }
                '>' if in_tag => in_tag = false,
                c if !in_tag => out.push(c),
                _ => {}
            }
            i += c.len_utf8();
        }
        let out = out
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
            .replace("&quot;", "\"");
        out.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn the_outage_is_in_the_continuity_table_in_english() {
        let html = report_document(&fixture(), Lang::En);
        let text = visible_text(&html);
        assert!(text.contains("Supply continuity"), "{text}");
        assert!(text.contains("2026-11-26 08:15:00.000 2026-11-26 08:21:40 6 min 40 s sustained no half-cycle witness SITE-DEMO-01-outage-20261126T081500Z 55.5"), "{text}");
        assert!(text.contains("Availability ASAI RS-1 99.99846 %"), "{text}");
        assert!(
            text.contains("Interruptions longer than 300 s are sustained;"),
            "{text}"
        );
    }

    #[test]
    fn the_outage_is_in_the_continuity_table_in_chinese() {
        let html = report_document(&fixture(), Lang::ZhCn);
        assert!(html.contains("<html lang=\"zh-CN\">"));
        let text = visible_text(&html);
        assert!(text.contains("供电连续性"), "{text}");
        assert!(
            text.contains(
                "2026-11-26 08:15:00.000 2026-11-26 08:21:40 6 分 40 秒 长时停电 否 半周波监测"
            ),
            "{text}"
        );
        assert!(text.contains("供电可靠率 ASAI RS-1 99.99846 %"), "{text}");
        assert!(text.contains("电压暂降"), "{text}");
        assert!(text.contains("抢修工单"), "{text}");
    }

    #[test]
    fn the_customer_name_is_escaped_everywhere() {
        for lang in Lang::ALL {
            let html = report_document(&fixture(), lang);
            assert!(
                !html.contains("<script>alert"),
                "{lang}: raw script tag in the document"
            );
            assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; Hospital"));
            // In the print header's CSS string the name is hex-escaped.
            assert!(html.contains("\\3c script\\3e alert"), "{lang}");
        }
    }

    #[test]
    fn chart_points_link_to_the_event_rows_in_the_file_and_to_pages_on_the_appliance() {
        let doc = report_document(&fixture(), Lang::En);
        assert!(
            doc.contains("<a href=\"#event-7\"><circle"),
            "ITIC point → its row"
        );
        assert!(doc.contains("id=\"event-7\""));
        let page = report_body(&fixture(), Lang::En, EventLinks::Pages).into_string();
        assert!(page.contains("<a href=\"/events/7\"><circle"));
        // Both charts, and the swell only on ITIC (F47 has no swells).
        assert_eq!(doc.matches("href=\"#event-8\"><circle").count(), 1);
        assert_eq!(doc.matches("href=\"#event-7\"><circle").count(), 2);
    }

    #[test]
    fn the_en50160_table_has_every_cell_and_shades_the_counted_one() {
        let html = report_document(&fixture(), Lang::En);
        let text = visible_text(&html);
        assert!(text.contains("70>u>=40 0 1 0 0 0"), "{text}");
        assert!(
            text.contains("20 kV and below, three-phase (-7 % … +7 %)"),
            "{text}"
        );
        assert!(html.contains("heat3"), "the counted cell is shaded");
        assert_eq!(html.matches("heat3\"").count(), 2, "one cell in each table");
    }

    #[test]
    fn the_document_is_self_contained_and_prints_on_a4() {
        let html = report_document(&fixture(), Lang::En);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("size: A4 portrait"));
        assert!(html.contains("counter(pages)"));
        assert!(
            !html.contains("src=\"http") && !html.contains("href=\"http"),
            "nothing fetched"
        );
        assert!(!html.contains("<link"), "no external stylesheet");
    }

    #[test]
    fn an_empty_period_says_so() {
        let mut r = fixture();
        r.supply.interruptions.clear();
        r.power_quality.events.clear();
        r.power_quality.worst.clear();
        r.service.tickets.clear();
        r.energy = Energy {
            meters: vec![],
            days: vec![],
            total_kwh: None,
            peak_demand_kw: None,
            peak_at: None,
            months: vec![],
        };
        r.notes = vec![Note {
            code: "no-data".into(),
            text: "No data in the period.".into(),
        }];
        for lang in Lang::ALL {
            let text = visible_text(&report_document(&r, lang));
            assert!(text.contains(&lang.t("report-no-interruptions")));
            assert!(text.contains(&lang.t("pq-no-events")));
            assert!(text.contains(&lang.t("energy-none")));
            let note = if lang == Lang::En {
                "No data in the period.".to_string()
            } else {
                lang.t("note-no-data")
            };
            assert!(text.contains(&note), "{text}");
        }
    }
}
