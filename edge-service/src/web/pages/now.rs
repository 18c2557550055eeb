//! *Now*: the supply at this moment. Each source's phase voltages and frequency (filled in live
//! from `/api/v1/stream` by `assets/kare.js`), the supply state, the open tickets, and every
//! source and meter with its health.

use super::{render, Ctx, Nav};
use crate::web::report::{fmt_time, word};
use crate::web::ApiState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{html, Markup};

/// GET /now
pub async fn page(
    State(st): State<ApiState>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let ctx = match Ctx::from_request("/now", &headers, query, &[]) {
        Ok(c) => c,
        Err((c, e)) => return super::error_page(&c, Nav::Now, e),
    };
    let title = ctx.lang.t("now-title");
    let body = body(&st, &ctx).await;
    render(&ctx, Nav::Now, &title, body, true)
}

/// The supply as the live event log sees it: lost while an interruption or a meter's outage
/// is open, disturbed while a dip or swell is.
fn supply_state(st: &ApiState) -> &'static str {
    let all = st.log.all();
    let open: Vec<String> = all
        .iter()
        .filter(|e| e.is_open())
        .map(|e| e.body.kind().to_string())
        .collect();
    if open
        .iter()
        .any(|k| k == "interruption" || k == "outage_coarse" || k == "meter_power_down")
    {
        "supply-lost"
    } else if open.iter().any(|k| k == "dip" || k == "swell") {
        "supply-disturbed"
    } else {
        "supply-normal"
    }
}

async fn body(st: &ApiState, ctx: &Ctx) -> Result<Markup, super::PageError> {
    let l = ctx.lang;
    let state = supply_state(st);
    let sources: Vec<(String, crate::pipeline::status::SourceStatus)> = st
        .status
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let meters: Vec<(String, crate::pipeline::status::MeterBusStatus)> = st
        .meters
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let open_tickets: Vec<_> = super::data::tickets(st)
        .await
        .map_err(|e| super::PageError {
            status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
            message: l.ta("error-store", &[("why", &e)]),
        })?
        .into_iter()
        .filter(|t| t.state == "open")
        .collect();
    Ok(html! {
        h1 { (l.t("now-title")) }
        p #supply-state class=(format!("state {state}")) { (l.t(state)) }
        section {
            h2 { (l.t("now-sources")) }
            @if sources.is_empty() { p.empty { (l.t("now-no-sources")) } }
            div.cards {
                @for (name, s) in &sources {
                    div.card {
                        h3 { (name) " " @if s.connected && !s.lost { span.ok { (l.t("health-connected")) } } @else { span.bad { (l.t("health-lost")) } } }
                        table.live {
                            tbody {
                                @for (i, ch) in s.channels.iter().enumerate() {
                                    tr { th { (ch) } td.n data-src=(name) data-ch=(i) { "—" } }
                                }
                                tr { th { (l.t("now-frequency")) } td.n data-src=(name) data-freq="1" { "—" } }
                            }
                        }
                        p.small { (s.port) @if let Some(hz) = s.nominal_hz { " · " (hz) " Hz" } }
                    }
                }
            }
        }
        section {
            h2 { (l.t("now-meters")) }
            @if meters.is_empty() { p.empty { (l.t("now-no-meters")) } }
            div.cards {
                @for (bus, b) in &meters {
                    @for (dev, d) in &b.devices {
                        div.card {
                            h3 { (bus) " / " (dev) " " @if d.online { span.ok { (l.t("meter-online")) } } @else { span.bad { (l.t("meter-offline")) } } }
                            table.live { tbody {
                                @for (q, (v, at)) in &d.values {
                                    tr title=(fmt_time(*at)) {
                                        th { (word(l, "q", q.as_str())) }
                                        td.n data-meter=(format!("{bus}/{dev}")) data-q=(q.as_str()) { (format!("{v:.2}")) " " (q.unit()) }
                                    }
                                }
                            } }
                        }
                    }
                }
            }
        }
        section {
            h2 { (l.t("now-open-tickets")) }
            @if open_tickets.is_empty() { p.empty { (l.t("now-none-open")) } } @else {
                table { thead { tr { th { (l.t("col-kind")) } th { (l.t("col-priority")) } th { (l.t("col-title")) } th { (l.t("col-opened")) } } }
                    tbody { @for t in &open_tickets { tr {
                        td { (word(l, "ticket-kind", &t.kind)) } td { (t.priority) } td { (t.title) br; small.key { (t.key) } } td { (fmt_time(t.opened_at)) }
                    } } }
                }
            }
        }
        p.small.live-note { (l.t("now-live-note")) }
    })
}
