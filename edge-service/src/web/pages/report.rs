//! *Report*: the key-account service report for a month, a quarter, a year or any range
//! (default: the last full calendar month, as `kare report`), with a print button. The report
//! itself is [`crate::web::report::report_body`], the same as the printable file.

use super::data::{self, NoReport};
use super::{parse_time, render, Ctx, Nav, PageError};
use crate::report::Report;
use crate::web::report::{print_margins_css, report_body, EventLinks};
use crate::web::ApiState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use maud::{html, Markup, PreEscaped};

/// How the period is picked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeriodKind {
    /// The calendar month holding `start`.
    Month,
    /// The calendar quarter holding `start`.
    Quarter,
    /// The calendar year holding `start`.
    Year,
    /// `[from, to)`.
    Custom,
}

impl PeriodKind {
    fn as_str(self) -> &'static str {
        match self {
            PeriodKind::Month => "month",
            PeriodKind::Quarter => "quarter",
            PeriodKind::Year => "year",
            PeriodKind::Custom => "custom",
        }
    }
}

/// The picked period: kind, a date inside it, and `[from, to)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Picked {
    /// How it was picked.
    pub kind: PeriodKind,
    /// Start, inclusive.
    pub from: DateTime<Utc>,
    /// End, exclusive.
    pub to: DateTime<Utc>,
}

/// The longest custom range: ten years (and their leap days). A report's work grows with its
/// range, and anyone who can reach the page can ask for one.
pub const MAX_CUSTOM: chrono::TimeDelta = chrono::TimeDelta::days(3653);

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// The first day of the month `months` after `(y, m)`.
fn month_start(y: i32, m: u32, months: u32) -> Option<NaiveDate> {
    let idx = y.checked_mul(12)? + (m as i32 - 1) + months as i32;
    NaiveDate::from_ymd_opt(idx.div_euclid(12), idx.rem_euclid(12) as u32 + 1, 1)
}

/// The period from the page's parameters (`period`, `start`, `from`, `to`); `now` for the default.
pub fn pick(ctx: &Ctx, now: DateTime<Utc>) -> Result<Picked, PageError> {
    let kind = match ctx.param("period") {
        None | Some("month") => PeriodKind::Month,
        Some("quarter") => PeriodKind::Quarter,
        Some("year") => PeriodKind::Year,
        Some("custom") => PeriodKind::Custom,
        Some(v) => return Err(ctx.bad_param("period", v, "why-period")),
    };
    if kind == PeriodKind::Custom {
        let get = |n: &str| -> Result<DateTime<Utc>, PageError> {
            let v = ctx
                .param(n)
                .ok_or_else(|| ctx.bad_param(n, "", "why-missing"))?;
            parse_time(v).ok_or_else(|| ctx.bad_param(n, v, "why-date"))
        };
        let (from, to) = (get("from")?, get("to")?);
        if to <= from {
            return Err(ctx.bad_param(
                "to",
                ctx.param("to").unwrap_or_default(),
                "why-to-before-from",
            ));
        }
        if to - from > MAX_CUSTOM {
            return Err(ctx.bad_param(
                "to",
                ctx.param("to").unwrap_or_default(),
                "why-range-too-long",
            ));
        }
        return Ok(Picked { kind, from, to });
    }
    let at = match ctx.param("start") {
        Some(v) => parse_time(v).ok_or_else(|| ctx.bad_param("start", v, "why-date"))?,
        // Default: the last full calendar month (UTC), as `kare report`.
        None => month_start(now.year(), now.month(), 0)
            .and_then(|d| d.pred_opt())
            .map(midnight)
            .unwrap_or(now),
    };
    let (y, m) = (at.year(), at.month());
    let (first, months) = match kind {
        PeriodKind::Month => ((y, m), 1),
        PeriodKind::Quarter => ((y, (m - 1) / 3 * 3 + 1), 3),
        _ => ((y, 1), 12),
    };
    let bad = || ctx.bad_param("start", ctx.param("start").unwrap_or_default(), "why-date");
    let from = month_start(first.0, first.1, 0).ok_or_else(bad)?;
    let to = month_start(first.0, first.1, months).ok_or_else(bad)?;
    let (from, to) = (midnight(from), midnight(to));
    // December 9999's end is in the year 10000, which the store's stamps cannot hold.
    if !crate::store::in_years(to) {
        return Err(bad());
    }
    Ok(Picked { kind, from, to })
}

/// GET /report
pub async fn page(
    State(st): State<ApiState>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let ctx = match Ctx::from_request(
        "/report",
        &headers,
        query,
        &["period", "start", "from", "to"],
    ) {
        Ok(c) => c,
        Err((c, e)) => return super::error_page(&c, Nav::Report, e),
    };
    let title = ctx.lang.t("report-page-title");
    let body = match pick(&ctx, Utc::now()) {
        Ok(p) => {
            let r = data::report(&st, p.from, p.to).await;
            Ok(body(&ctx, &p, r))
        }
        Err(e) => Err(e),
    };
    render(&ctx, Nav::Report, &title, body, false)
}

/// The page's content: the picker, then the report or why there is none.
pub fn body(ctx: &Ctx, p: &Picked, r: Result<Report, NoReport>) -> Markup {
    let l = ctx.lang;
    let d = |t: DateTime<Utc>| t.format("%Y-%m-%d").to_string();
    let last =
        p.to.checked_sub_signed(chrono::Duration::days(1))
            .unwrap_or(p.to);
    html! {
        form.filters.no-print method="get" action="/report" {
            label { (l.t("period-kind")) " "
                select name="period" {
                    @for k in [PeriodKind::Month, PeriodKind::Quarter, PeriodKind::Year, PeriodKind::Custom] {
                        option value=(k.as_str()) selected[k == p.kind] { (l.t(&format!("period-{}", k.as_str()))) }
                    }
                }
            }
            label { (l.t("period-start")) " " input type="date" name="start" value=(d(p.from)); }
            label { (l.t("filter-from")) " " input type="date" name="from" value=(d(p.from)); }
            label { (l.t("filter-to")) " " input type="date" name="to" value=(d(p.to)); }
            input type="hidden" name="lang" value=(l.code());
            button type="submit" { (l.t("report-show")) }
            button type="button" onclick="window.print()" { (l.t("report-print")) }
        }
        p.small.no-print { (l.ta("report-period-days", &[("from", &d(p.from)), ("last", &d(last))])) }
        @match r {
            Ok(report) => {
                style { (PreEscaped(print_margins_css(&report, l))) }
                (report_body(&report, l, EventLinks::Pages))
            },
            Err(NoReport::NoStore) => p.empty { (l.t("report-no-store")) },
            Err(NoReport::Store(why)) => p.empty { (l.ta("error-store", &[("why", &why)])) },
        }
    }
}
