//! The pages' login: `GET /login` (the form), `POST /login` (user name and password, checked
//! against the argon2 hashes of the users file; a session cookie on success), `GET|POST
//! /logout` (the session ends, the cookie is cleared). Sessions live in memory: a restart logs
//! everyone out.
//!
//! The cookie `kare_session` is HttpOnly (no script reads it), SameSite=Strict (no other site
//! can send it: no cross-site request forgery), `Secure` when the pages are served over TLS,
//! and lasts `[auth] session_hours`. May never: log a password or a session id.

use super::{Auth, Role};
use crate::web::i18n::Lang;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use maud::{html, DOCTYPE};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The cookie's name.
pub const COOKIE: &str = "kare_session";
/// At most this many live sessions (the oldest goes first).
const MAX_SESSIONS: usize = 256;

/// Live sessions: a random id (256 bits, hex) → the user and role, until when.
pub struct Sessions {
    lifetime: Duration,
    map: Mutex<HashMap<String, (String, Role, Instant)>>,
}

impl Sessions {
    /// No sessions yet; each lasts `lifetime`.
    pub fn new(lifetime: Duration) -> Sessions {
        Sessions {
            lifetime,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// A new session for `user`; its id.
    fn open(&self, user: &str, role: Role) -> Option<String> {
        let mut id = [0u8; 32];
        getrandom::getrandom(&mut id).ok()?;
        let id = hex::encode(id);
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, (_, _, until)| *until > now);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, (_, _, until))| *until)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(id.clone(), (user.to_string(), role, now + self.lifetime));
        Some(id)
    }

    /// The role of a live session.
    pub fn role(&self, id: &str) -> Option<Role> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id)
            .filter(|(_, _, until)| *until > Instant::now())
            .map(|(_, role, _)| *role)
    }

    fn close(&self, id: &str) -> Option<String> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(id).map(|(user, _, _)| user)
    }
}

/// The session id in the request's cookie.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim().to_string())
}

/// Percent-encodes a path for `?next=`.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Where to go after the login: a path on this appliance only (never `//host`, an open
/// redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.into(),
        _ => "/now".into(),
    }
}

/// `/login` and `/logout`.
pub fn router(auth: Arc<Auth>) -> Router {
    Router::new()
        .route("/login", get(form).post(submit))
        .route("/logout", get(logout).post(logout))
        .with_state(auth)
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

fn page(lang: Lang, next: &str, failed: bool, no_users: bool) -> axum::response::Html<String> {
    axum::response::Html(
        html! {
            (DOCTYPE)
            html lang=(lang.code()) {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { "kare: " (lang.t("login-title")) }
                    link rel="stylesheet" href="/assets/kare.css";
                }
                body {
                    main class="login" {
                        h1 { "kare" }
                        @if failed {
                            p class="error" role="alert" { (lang.t("login-failed")) }
                        }
                        @if no_users {
                            p class="error" { (lang.t("login-no-users")) }
                        }
                        form method="post" action="/login" {
                            input type="hidden" name="next" value=(next);
                            p { label { (lang.t("login-user")) " " input type="text" name="username" autocomplete="username" required autofocus; } }
                            p { label { (lang.t("login-password")) " " input type="password" name="password" autocomplete="current-password" required; } }
                            p { button type="submit" { (lang.t("login-submit")) } }
                        }
                    }
                }
            }
        }
        .into_string(),
    )
}

/// The reader's language: the `lang` cookie, else `Accept-Language`, else English.
fn lang(headers: &HeaderMap) -> Lang {
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == "lang")
        .map(|(_, v)| v.trim().to_string());
    Lang::negotiate(
        None,
        cookie.as_deref(),
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    )
}

fn no_store(resp: impl IntoResponse) -> Response {
    let mut r = resp.into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

async fn form(
    State(auth): State<Arc<Auth>>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Response {
    no_store(page(
        lang(&headers),
        &safe_next(q.next.as_deref()),
        false,
        auth.users.is_empty(),
    ))
}

async fn submit(
    State(auth): State<Arc<Auth>>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = safe_next(f.next.as_deref());
    let check = auth.clone();
    let (user, password) = (f.username.clone(), f.password);
    // argon2 is deliberately slow and large: off the async workers, two at a time.
    let Ok(_permit) = auth.verifying.acquire().await else {
        return (StatusCode::SERVICE_UNAVAILABLE, "kare is stopping").into_response();
    };
    let role = tokio::task::spawn_blocking(move || check.users.verify(&user, &password))
        .await
        .ok()
        .flatten();
    let Some(role) = role else {
        // Not the name typed: it may be a password typed in the wrong field.
        tracing::warn!("failed login to the pages (wrong user name or password)");
        return no_store((
            StatusCode::UNAUTHORIZED,
            page(lang(&headers), &next, true, auth.users.is_empty()),
        ));
    };
    let Some(id) = auth.sessions.open(&f.username, role) else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "no randomness for a session: try again",
        )
            .into_response();
    };
    tracing::info!(user = %f.username, role = role.as_str(), "logged in to the pages");
    let cookie = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        auth.sessions.lifetime.as_secs(),
        if auth.secure_cookie { "; Secure" } else { "" }
    );
    no_store(([(header::SET_COOKIE, cookie)], Redirect::to(&next)))
}

async fn logout(State(auth): State<Arc<Auth>>, headers: HeaderMap) -> Response {
    if let Some(user) = session_cookie(&headers).and_then(|id| auth.sessions.close(&id)) {
        tracing::info!(user = %user, "logged out of the pages");
    }
    let cookie = format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if auth.secure_cookie { "; Secure" } else { "" }
    );
    no_store(([(header::SET_COOKIE, cookie)], Redirect::to("/login")))
}
