//! *Events*: the list (filters by time, kind and source; newest first, paged by id) and one
//! event (its figures, RMS profile, waveform and the COMTRADE download).

use super::data::{self, EventFilter, EventItem};
use super::{enc, parse_time, render, svg, Ctx, Nav, PageError};
use crate::web::charts;
use crate::web::report::{fmt_duration, fmt_time_ms, num, word};
use crate::web::ApiState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{html, Markup};

/// The kinds the filter offers (the store keeps any; these are the ones kare writes).
pub const KINDS: [&str; 8] = [
    "dip",
    "swell",
    "interruption",
    "outage_coarse",
    "undervoltage",
    "overvoltage",
    "meter_power_down",
    "sensor_lost",
];

/// Default and largest page.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// The list's parameters, checked: a 400 names the first bad one.
pub fn filter(ctx: &Ctx) -> Result<EventFilter, PageError> {
    let time = |name: &str| -> Result<Option<chrono::DateTime<chrono::Utc>>, PageError> {
        match ctx.param(name) {
            None => Ok(None),
            Some(v) => parse_time(v)
                .map(Some)
                .ok_or_else(|| ctx.bad_param(name, v, "why-date")),
        }
    };
    let from = time("from")?;
    let to = time("to")?;
    if let (Some(f), Some(t)) = (from, to) {
        if t <= f {
            let v = ctx.param("to").unwrap_or_default();
            return Err(ctx.bad_param("to", v, "why-to-before-from"));
        }
    }
    let kind = match ctx.param("kind") {
        None => None,
        Some(k) if KINDS.contains(&k) => Some(k.to_string()),
        Some(k) => {
            let why = ctx.lang.ta("why-kind", &[("kinds", &KINDS.join(", "))]);
            return Err(PageError {
                status: StatusCode::BAD_REQUEST,
                message: ctx.bad_param_message("kind", k, &why),
            });
        }
    };
    let limit = match ctx.param("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => return Err(ctx.bad_param("limit", v, "why-limit")),
        },
    };
    let before = match ctx.param("before") {
        None => None,
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(ctx.bad_param("before", v, "why-id")),
        },
    };
    Ok(EventFilter {
        from,
        to,
        kind,
        source: ctx.param("source").map(|s| s.trim().to_string()),
        limit,
        before,
    })
}

/// GET /events
pub async fn list(
    State(st): State<ApiState>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let ctx = match Ctx::from_request(
        "/events",
        &headers,
        query,
        &["from", "to", "kind", "source", "limit", "before"],
    ) {
        Ok(c) => c,
        Err((c, e)) => return super::error_page(&c, Nav::Events, e),
    };
    let title = ctx.lang.t("events-title");
    let body = match filter(&ctx) {
        Ok(f) => match data::events(&st, &f).await {
            Ok((items, more)) => Ok(list_body(&ctx, &f, &items, more)),
            Err(e) => Err(store_error(&ctx, e)),
        },
        Err(e) => Err(e),
    };
    render(&ctx, Nav::Events, &title, body, false)
}

pub(crate) fn store_error(ctx: &Ctx, why: String) -> PageError {
    PageError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: ctx.lang.ta("error-store", &[("why", &why)]),
    }
}

fn list_body(ctx: &Ctx, f: &EventFilter, items: &[EventItem], more: bool) -> Markup {
    let l = ctx.lang;
    let date = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    };
    let next = items.last().filter(|_| more).map(|last| {
        let mut q: Vec<String> = ctx
            .params
            .iter()
            .filter(|(k, _)| k != "before")
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect();
        q.push(format!("before={}", last.id));
        format!("/events?{}", q.join("&"))
    });
    html! {
        h1 { (l.t("events-title")) }
        form.filters method="get" action="/events" {
            label { (l.t("filter-from")) " " input type="date" name="from" value=(date(f.from)); }
            label { (l.t("filter-to")) " " input type="date" name="to" value=(date(f.to)); }
            label { (l.t("filter-kind")) " "
                select name="kind" {
                    option value="" { (l.t("filter-any")) }
                    @for k in KINDS {
                        option value=(k) selected[f.kind.as_deref() == Some(k)] { (word(l, "kind", k)) }
                    }
                }
            }
            label { (l.t("filter-source")) " " input type="text" name="source" value=(f.source.as_deref().unwrap_or("")); }
            input type="hidden" name="lang" value=(l.code());
            button type="submit" { (l.t("filter-apply")) }
        }
        p.small { (l.ta("events-count", &[("count", &items.len().to_string())])) }
        @if items.is_empty() {
            p.empty { (l.t("events-none")) }
        } @else {
            div.scroll { table.events {
                thead { tr {
                    th { "#" } th { (l.t("col-start")) } th { (l.t("col-kind")) } th.n { (l.t("col-extreme")) }
                    th.n { (l.t("col-duration")) } th { (l.t("col-channel")) } th { (l.t("col-source")) }
                    th { "ITIC" } th { "SEMI F47" } th { "EN 50160" }
                } }
                tbody { @for e in items { (row(ctx, e)) } }
            } }
        }
        @if let Some(href) = next { p { a.button href=(href) { (l.t("events-older")) } } }
    }
}

fn row(ctx: &Ctx, e: &EventItem) -> Markup {
    let l = ctx.lang;
    html! {
        tr class=(if e.open { "open" } else { "" }) {
            td { a href=(format!("/events/{}", e.id)) { (e.id) } }
            td { (fmt_time_ms(e.start)) }
            td { (word(l, "kind", &e.kind)) }
            td.n { (num(e.extreme_pct, 1)) " %" }
            td.n { (e.duration_s.map(|d| fmt_duration(d, l)).unwrap_or_else(|| l.t("event-open"))) }
            td { (e.worst_channel.as_deref().unwrap_or("—")) }
            td { (e.source) }
            td { (e.itic.as_deref().map(|v| word(l, "itic", v)).unwrap_or_else(|| "—".into())) }
            td { (e.semi_f47.as_deref().map(|v| word(l, "f47", v)).unwrap_or_else(|| "—".into())) }
            td { (e.en50160.as_ref().map(|c| format!("{} / {}", c.row, c.column)).unwrap_or_else(|| "—".into())) }
        }
    }
}

/// GET /events/{id}
pub async fn one(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let path = format!("/events/{}", enc(&id));
    let ctx = match Ctx::from_request(&path, &headers, query, &[]) {
        Ok(c) => c,
        Err((c, e)) => return super::error_page(&c, Nav::Events, e),
    };
    let l = ctx.lang;
    let Some(n) = id.trim().parse::<i64>().ok().filter(|n| *n > 0) else {
        let mut back = ctx.clone();
        back.path = "/events".into();
        return super::error_page(&back, Nav::Events, ctx.bad_param("id", &id, "why-id"));
    };
    let title = l.ta("event-title", &[("id", &n.to_string())]);
    let body = match data::event(&st, n).await {
        Ok(Some(d)) => Ok(event_body(&ctx, &d)),
        Ok(None) => Err(PageError {
            status: StatusCode::NOT_FOUND,
            message: l.ta("event-not-found", &[("id", &n.to_string())]),
        }),
        Err(e) => Err(store_error(&ctx, e)),
    };
    render(&ctx, Nav::Events, &title, body, false)
}

fn event_body(ctx: &Ctx, d: &data::EventDetail) -> Markup {
    let l = ctx.lang;
    let e = &d.item;
    html! {
        h1 { (l.ta("event-title", &[("id", &e.id.to_string())])) " · " (word(l, "kind", &e.kind)) }
        dl.facts {
            dt { (l.t("col-start")) } dd { (fmt_time_ms(e.start)) }
            dt { (l.t("col-duration")) } dd { (e.duration_s.map(|s| fmt_duration(s, l)).unwrap_or_else(|| l.t("event-open"))) }
            dt { (l.t("col-extreme")) } dd { (num(e.extreme_pct, 1)) " %" @if let Some(c) = &e.worst_channel { " (" (c) ")" } }
            dt { (l.t("col-source")) } dd { (e.source) }
            dt { "ITIC" } dd { (e.itic.as_deref().map(|v| word(l, "itic", v)).unwrap_or_else(|| "—".into())) }
            dt { "SEMI F47" } dd { (e.semi_f47.as_deref().map(|v| word(l, "f47", v)).unwrap_or_else(|| "—".into())) }
            dt { "EN 50160" } dd { (e.en50160.as_ref().map(|c| format!("{} / {}", c.row, c.column)).unwrap_or_else(|| "—".into())) }
        }
        h2 { (l.t("event-profile")) }
        @match &d.profile {
            Some(p) => figure { (svg(charts::profile_chart(p, l, false))) },
            None => p.empty { (l.t("event-no-profile")) },
        }
        h2 { (l.t("event-waveform")) }
        @if let Some(w) = &d.waveform {
            figure { (svg(charts::waveform_chart(w, l))) }
        } @else if !d.has_waveform {
            p.empty { (l.t("event-no-waveform")) }
        }
        @if d.has_waveform {
            p { a.button href=(format!("/api/v1/events/{}/comtrade", e.id)) download { (l.t("event-download-comtrade")) } }
        }
        p.small { a href=(format!("/api/v1/events/{}", e.id)) { (l.t("event-json")) } " · " a href="/events" { (l.t("event-back")) } }
    }
}
