//! The appliance's pages, server-rendered (maud escapes every value it interpolates): *Now*,
//! *Events* (list and one event), *Tickets*, *Report*; the shared layout with the language
//! switch; the embedded stylesheet and the few lines of script that keep *Now* live over
//! `/api/v1/stream`. A bad query parameter is a 400 page saying which and why, never a 500.
//!
//! - [`data`]: what the pages read (the store when there is one, else the service's memory).
//! - [`now`], [`events`], [`tickets`], [`report`]: one page each.

pub mod data;
pub mod events;
pub mod now;
pub mod report;
pub mod tickets;

use crate::web::i18n::Lang;
use crate::web::ApiState;
use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, NaiveDate, Utc};
use maud::{html, Markup, PreEscaped, DOCTYPE};

/// The pages' stylesheet.
const PAGES_CSS: &str = include_str!("../../../assets/kare.css");
/// Live updates on *Now* (server-sent events); nothing else runs script.
const PAGES_JS: &str = include_str!("../../../assets/kare.js");

/// The pages' routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/now") }))
        .route("/now", get(now::page))
        .route("/events", get(events::list))
        .route("/events/{id}", get(events::one))
        .route("/tickets", get(tickets::page))
        .route("/report", get(report::page))
        .route(
            "/assets/kare.css",
            get(|| async { asset("text/css; charset=utf-8", PAGES_CSS) }),
        )
        .route(
            "/assets/report.css",
            get(|| async { asset("text/css; charset=utf-8", crate::web::report::REPORT_CSS) }),
        )
        .route(
            "/assets/kare.js",
            get(|| async { asset("text/javascript; charset=utf-8", PAGES_JS) }),
        )
        .fallback(not_found)
        .with_state(state)
}

/// Any other address: a 404 page in the reader's language (JSON under `/api/`).
async fn not_found(uri: axum::http::Uri, headers: HeaderMap) -> Response {
    if uri.path().starts_with("/api/") {
        let body = serde_json::json!({
            "error": format!("no API at {}; see /api/v1/status", uri.path())
        });
        return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    }
    let lang = Lang::negotiate(
        None,
        cookie(&headers, "lang").as_deref(),
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let ctx = Ctx {
        lang,
        remember: false,
        path: "/now".into(),
        params: vec![],
        logged_in: false,
    };
    let message = lang.ta("page-not-found", &[("path", uri.path())]);
    error_page(
        &ctx,
        Nav::Now,
        PageError {
            status: StatusCode::NOT_FOUND,
            message,
        },
    )
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// Which page the navigation marks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nav {
    /// Now.
    Now,
    /// Events.
    Events,
    /// Tickets.
    Tickets,
    /// Report.
    Report,
}

/// One request's context: its language (and whether the switch was used, so the cookie is
/// set), its path and its query parameters.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// The language the page is in.
    pub lang: Lang,
    /// `?lang=` was given: remember it.
    pub remember: bool,
    /// The request's path (for the switch's links).
    pub path: String,
    /// Query parameters other than `lang`, in order.
    pub params: Vec<(String, String)>,
    /// The reader came with a login session (`[auth]`): the header offers "Log out".
    pub logged_in: bool,
}

/// A page that cannot be served: status and what to tell the reader (already in their language).
#[derive(Debug)]
pub struct PageError {
    /// 400, 404, 503.
    pub status: StatusCode,
    /// One line for a person.
    pub message: String,
}

impl Ctx {
    /// Reads the language and the parameters; `allowed` are this page's parameter names (besides
    /// `lang`). An unknown parameter or a `lang` we do not speak is a 400.
    pub fn from_request(
        path: &str,
        headers: &HeaderMap,
        query: Result<Query<Vec<(String, String)>>, QueryRejection>,
        allowed: &[&str],
    ) -> Result<Ctx, (Ctx, PageError)> {
        let cookie = cookie(headers, "lang");
        let accept = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        let mut ctx = Ctx {
            lang: Lang::negotiate(None, cookie.as_deref(), accept),
            remember: false,
            path: path.to_string(),
            params: vec![],
            logged_in: crate::web::auth::login::session_cookie(headers).is_some(),
        };
        let Query(pairs) = match query {
            Ok(q) => q,
            Err(e) => {
                let message = ctx.lang.ta("error-query", &[("why", &e.body_text())]);
                return Err((ctx, bad_request(message)));
            }
        };
        let mut problem = None;
        for (k, v) in pairs {
            if k == "lang" {
                match Lang::parse(&v) {
                    Some(l) => {
                        ctx.lang = l;
                        ctx.remember = true;
                    }
                    None => {
                        problem.get_or_insert((
                            "lang".to_string(),
                            v.clone(),
                            "why-lang".to_string(),
                        ));
                    }
                }
            } else if allowed.contains(&k.as_str()) {
                ctx.params.push((k, v));
            } else {
                problem.get_or_insert((k.clone(), v.clone(), "why-unknown".to_string()));
            }
        }
        if let Some((name, value, why)) = problem {
            let why = ctx.lang.ta(&why, &[("allowed", &allowed.join(", "))]);
            let message = ctx.bad_param_message(&name, &value, &why);
            return Err((ctx, bad_request(message)));
        }
        Ok(ctx)
    }

    /// The value of parameter `name`, if given and not empty.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.trim().is_empty())
    }

    /// "`name` = `value`: why" in the reader's language.
    pub fn bad_param_message(&self, name: &str, value: &str, why: &str) -> String {
        self.lang.ta(
            "error-bad-param",
            &[("name", name), ("value", value), ("why", why)],
        )
    }

    /// A 400 for parameter `name` whose value is wrong, `why_id` saying how.
    pub fn bad_param(&self, name: &str, value: &str, why_id: &str) -> PageError {
        bad_request(self.bad_param_message(name, value, &self.lang.t(why_id)))
    }

    /// This page's URL in the other language.
    fn switch_href(&self, lang: Lang) -> String {
        let mut q: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect();
        q.push(format!("lang={}", lang.code()));
        format!("{}?{}", self.path, q.join("&"))
    }
}

/// Percent-encodes a query component.
pub(crate) fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn bad_request(message: String) -> PageError {
    PageError {
        status: StatusCode::BAD_REQUEST,
        message,
    }
}

/// A cookie's value from the request.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
}

/// A date (`YYYY-MM-DD`, midnight UTC) or an RFC 3339 time, in the years 1970 to 9999 (UTC,
/// [`crate::store::YEARS`]: chrono also reads `-262143-01-01`, whose arithmetic overflows).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    let t = match DateTime::parse_from_rfc3339(s) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc()),
    };
    t.filter(|t| crate::store::in_years(*t))
}

/// The layout around a page's content.
pub fn layout(ctx: &Ctx, nav: Nav, title: &str, content: Markup, live: bool) -> Markup {
    let l = ctx.lang;
    let item = |n: Nav, href: &str, id: &str| {
        html! { a href=(href) class=(if n == nav { "on" } else { "" }) { (l.t(id)) } }
    };
    html! {
        (DOCTYPE)
        html lang=(l.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · kare" }
                link rel="stylesheet" href="/assets/kare.css";
                link rel="stylesheet" href="/assets/report.css";
            }
            body data-lang=(l.code()) {
                header.top {
                    span.brand { "kare" }
                    nav {
                        (item(Nav::Now, "/now", "nav-now"))
                        (item(Nav::Events, "/events", "nav-events"))
                        (item(Nav::Tickets, "/tickets", "nav-tickets"))
                        (item(Nav::Report, "/report", "nav-report"))
                        @if ctx.logged_in { a href="/logout" { (l.t("nav-logout")) } }
                    }
                    span.langs aria-label=(l.t("lang-switch")) {
                        @for other in Lang::ALL {
                            @if other == l { strong { (other.name()) } } @else { a href=(ctx.switch_href(other)) hreflang=(other.code()) { (other.name()) } }
                        }
                    }
                }
                main { (content) }
                footer.bottom { (l.t("times-utc")) " · kare " (env!("CARGO_PKG_VERSION")) }
                @if live { script src="/assets/kare.js" {} }
            }
        }
    }
}

/// A page as a response (setting the language cookie when the switch was used).
pub fn respond(ctx: &Ctx, status: StatusCode, body: Markup) -> Response {
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body.into_string(),
    )
        .into_response();
    if ctx.remember {
        let c = format!(
            "lang={}; Path=/; Max-Age=31536000; SameSite=Lax",
            ctx.lang.code()
        );
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    r
}

/// The error page.
pub fn error_page(ctx: &Ctx, nav: Nav, e: PageError) -> Response {
    let l = ctx.lang;
    let title = match e.status {
        StatusCode::BAD_REQUEST => l.t("error-400"),
        StatusCode::NOT_FOUND => l.t("error-404"),
        _ => l.t("error-other"),
    };
    let body = html! {
        section.error {
            h1 { (title) }
            p.message { (e.message) }
            p { a href=(ctx.path) { (l.t("error-back")) } }
        }
    };
    respond(ctx, e.status, layout(ctx, nav, &title, body, false))
}

/// Renders a page body or its error.
pub fn render(
    ctx: &Ctx,
    nav: Nav,
    title: &str,
    body: Result<Markup, PageError>,
    live: bool,
) -> Response {
    match body {
        Ok(b) => respond(ctx, StatusCode::OK, layout(ctx, nav, title, b, live)),
        Err(e) => error_page(ctx, nav, e),
    }
}

/// Inline SVG from a chart function.
pub fn svg(s: String) -> Markup {
    PreEscaped(s)
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Requests against the pages' router over an in-memory state, as a browser makes them.

    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    /// GET `uri` with extra headers; status, headers and body text.
    pub async fn get(
        app: Router,
        uri: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, String) {
        let mut req = Request::builder().uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = app
            .oneshot(req.body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), 8 << 20)
            .await
            .expect("body");
        (
            status,
            headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_parse_and_rubbish_does_not() {
        assert_eq!(
            parse_time("2026-11-01").map(|t| t.to_rfc3339()),
            Some("2026-11-01T00:00:00+00:00".into())
        );
        assert!(parse_time("2026-11-01T08:00:00+08:00").is_some());
        assert!(parse_time("yesterday").is_none());
        assert!(parse_time("2026-13-01").is_none());
    }

    #[test]
    fn a_time_outside_the_years_1970_to_9999_is_not_a_time() {
        for s in [
            "-262143-01-01",
            "+10000-01-01",
            "1969-12-31",
            "9999-12-31T23:00:00-05:00",
        ] {
            assert!(parse_time(s).is_none(), "{s}");
        }
        assert!(parse_time("1970-01-01").is_some());
        assert!(parse_time("9999-12-31T23:59:59Z").is_some());
    }

    #[test]
    fn the_switch_keeps_the_page_and_its_filters() {
        let ctx = Ctx {
            lang: Lang::En,
            remember: false,
            path: "/events".into(),
            params: vec![
                ("kind".into(), "dip".into()),
                ("source".into(), "a b&c".into()),
            ],
            logged_in: false,
        };
        assert_eq!(
            ctx.switch_href(Lang::ZhCn),
            "/events?kind=dip&source=a%20b%26c&lang=zh-CN"
        );
    }
}

#[cfg(test)]
mod tests_pages;
