//! *Tickets*: repair tickets, generator requests, planned outages and notices, newest first,
//! each with its state and the event that raised it.

use super::{render, Ctx, Nav};
use crate::web::report::{fmt_duration, fmt_time, word};
use crate::web::ApiState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::html;

/// GET /tickets
pub async fn page(
    State(st): State<ApiState>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let ctx = match Ctx::from_request("/tickets", &headers, query, &[]) {
        Ok(c) => c,
        Err((c, e)) => return super::error_page(&c, Nav::Tickets, e),
    };
    let l = ctx.lang;
    let title = l.t("tickets-title");
    let body = super::data::tickets(&st)
        .await
        .map_err(|e| super::events::store_error(&ctx, e))
        .map(|tickets| {
            html! {
                h1 { (title) }
                @if tickets.is_empty() { p.empty { (l.t("tickets-none")) } } @else {
                    div.scroll { table.tickets {
                        thead { tr {
                            th { (l.t("col-kind")) } th { (l.t("col-state")) } th { (l.t("col-priority")) } th { (l.t("col-title")) }
                            th { (l.t("col-opened")) } th { (l.t("col-ended")) } th.n { (l.t("col-duration")) } th { (l.t("col-event")) }
                        } }
                        tbody { @for t in &tickets { tr class=(format!("state-{}", t.state)) {
                            td { (word(l, "ticket-kind", &t.kind)) }
                            td { (word(l, "state", &t.state)) }
                            td { (t.priority) }
                            td { (t.title) br; small.key { (t.key) } }
                            td { (fmt_time(t.opened_at)) }
                            td { (t.closed_at.map(fmt_time).unwrap_or_else(|| "—".into())) }
                            td.n { (t.duration_s.map(|d| fmt_duration(d, l)).unwrap_or_else(|| "—".into())) }
                            td { @if let Some(id) = t.event_id { a href=(format!("/events/{id}")) { (id) } } @else { "—" } }
                        } } }
                    } }
                }
            }
        });
    render(&ctx, Nav::Tickets, &l.t("tickets-title"), body, false)
}
