//! No open doors (issue 15): who may read and who may change what, when kare listens anywhere
//! but loopback.
//!
//! - **Tokens** for the API (and scripts): `Authorization: Bearer <token>`, read from the files
//!   `[auth] admin_token_file` and `viewer_token_file` (0600), compared in constant time.
//! - **Users** for the pages: `kare passwd USER --role viewer|admin` writes an argon2id hash to
//!   `[auth] users_file` (0600, [`users`]); `/login` gives a session cookie (HttpOnly,
//!   SameSite=Strict, Secure over TLS), `/logout` ends it ([`login`]).
//! - **Roles**: a viewer reads events, tickets, reports and pages; an admin may also read the
//!   commissioning records and do anything that changes state (every method but GET and HEAD).
//!   [`required_role`] is the one place that says which route needs which.
//!
//! [`Access::for_listen`] is the start-up gate: a listen address other than loopback without
//! `[auth]` is refused, with how to set it up; every secret file must be 0600. Loopback without
//! `[auth]` is served as before (the demo, the tests, a technician's SSH tunnel).
//!
//! May never: log a token, a password or a session id (the role and the user name only); accept
//! a default or empty credential; compare a secret with `==`.

pub mod login;
#[cfg(test)]
mod tests;
pub mod users;

use crate::web::tls::{TlsConfig, TlsError};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The shortest token kare accepts (the package writes 32 random bytes as 64 hex digits).
pub const MIN_TOKEN_LEN: usize = 32;

/// `[auth]` in kare.toml.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The admin's bearer token (the package writes `/etc/kare/secrets/api-admin.token`).
    pub admin_token_file: PathBuf,
    /// The viewers' bearer token (`/etc/kare/secrets/api-viewer.token`); optional.
    pub viewer_token_file: Option<PathBuf>,
    /// The pages' users and their argon2 hashes (`kare passwd`, `/etc/kare/secrets/users`);
    /// without it the pages answer bearer tokens only.
    pub users_file: Option<PathBuf>,
    /// How long a login lasts, in hours (default 12).
    #[serde(default = "default_session_hours")]
    pub session_hours: f64,
}

fn default_session_hours() -> f64 {
    12.0
}

/// Why kare refuses to start serving.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("kare would listen on {listen}, beyond this machine, without authentication: add an [auth] section with admin_token_file = \"/etc/kare/secrets/api-admin.token\" (and viewer_token_file, users_file: see systemd/kare.toml; the Debian package creates the tokens, `kare passwd USER --role admin` adds a user for the pages), or listen on 127.0.0.1")]
    OpenListen { listen: SocketAddr },
    #[error("the secret file {path} can be read by others (mode {mode:03o}): run `chmod 600 {path}` (and `chown kare {path}`)")]
    Permissions { path: String, mode: u32 },
    #[error("cannot read the secret file {path}: {source}; check [auth] in the configuration (the Debian package creates it; `chmod 600` it if you write it by hand)")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the token in {path} is too short (at least {MIN_TOKEN_LEN} characters): write a random one, e.g. `head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > {path}; chmod 600 {path}`")]
    WeakToken { path: String },
    #[error("{path}: {problem}")]
    Users { path: String, problem: String },
    #[error("[auth] session_hours must be between 0.1 and 720 (it is {0})")]
    SessionHours(f64),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// A role, least first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Reads events, tickets, reports and pages.
    Viewer,
    /// Also commissioning and anything that changes state.
    Admin,
}

impl Role {
    /// `viewer` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Admin => "admin",
        }
    }

    /// Parses `viewer` or `admin`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Reads a secret file, refusing it unless only its owner may read it.
pub fn read_secret(path: &Path) -> Result<String, AuthError> {
    let p = path.display().to_string();
    check_private(path)?;
    std::fs::read_to_string(path).map_err(|source| AuthError::Read { path: p, source })
}

/// Refuses a file that its group or others may read or write (the fix: `chmod 600`).
pub fn check_private(path: &Path) -> Result<(), AuthError> {
    use std::os::unix::fs::PermissionsExt;
    let p = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| AuthError::Read {
        path: p.clone(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(AuthError::Permissions { path: p, mode });
    }
    Ok(())
}

fn read_token(path: &Path) -> Result<[u8; 32], AuthError> {
    let t = read_secret(path)?;
    let t = t.trim();
    if t.len() < MIN_TOKEN_LEN {
        return Err(AuthError::WeakToken {
            path: path.display().to_string(),
        });
    }
    Ok(Sha256::digest(t.as_bytes()).into())
}

/// The credentials kare checks requests against.
pub struct Auth {
    /// SHA-256 of each token (fixed length, so the comparison's time says nothing).
    admin: [u8; 32],
    viewer: Option<[u8; 32]>,
    pub(crate) users: users::Users,
    pub(crate) sessions: login::Sessions,
    /// Cookies are `Secure` when the pages are served over TLS.
    pub(crate) secure_cookie: bool,
    /// At most two argon2 verifications at once (19 MiB each): a flood of logins waits here
    /// instead of exhausting a Pi's memory.
    pub(crate) verifying: tokio::sync::Semaphore,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("viewer_token", &self.viewer.is_some())
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Reads the token files and the users file (each must be 0600).
    pub fn load(cfg: &AuthConfig, secure_cookie: bool) -> Result<Auth, AuthError> {
        if !(0.1..=720.0).contains(&cfg.session_hours) {
            return Err(AuthError::SessionHours(cfg.session_hours));
        }
        let admin = read_token(&cfg.admin_token_file)?;
        let viewer = cfg
            .viewer_token_file
            .as_deref()
            .map(read_token)
            .transpose()?;
        let users = match &cfg.users_file {
            Some(p) => users::Users::load(p)?,
            None => users::Users::default(),
        };
        Ok(Auth {
            admin,
            viewer,
            users,
            sessions: login::Sessions::new(std::time::Duration::from_secs_f64(
                cfg.session_hours * 3600.0,
            )),
            secure_cookie,
            verifying: tokio::sync::Semaphore::new(2),
        })
    }

    /// The role a bearer token gives (None: no such token). Both tokens are always compared.
    pub fn token_role(&self, token: &str) -> Option<Role> {
        let h: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
        let is_admin = h.ct_eq(&self.admin);
        let is_viewer = match &self.viewer {
            Some(v) => h.ct_eq(v),
            None => subtle::Choice::from(0),
        };
        if bool::from(is_admin) {
            Some(Role::Admin)
        } else if bool::from(is_viewer) {
            Some(Role::Viewer)
        } else {
            None
        }
    }
}

/// What the web server needs to serve safely: the credentials (None: loopback, no `[auth]`)
/// and the TLS settings.
#[derive(Clone, Default)]
pub struct Access {
    /// Checked on every request when set.
    pub auth: Option<Arc<Auth>>,
    /// The rustls configuration, when `[tls]` is set.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Access {
    /// The start-up gate: refuses a listen address beyond loopback without `[auth]`, and any
    /// secret file that others may read.
    pub fn for_listen(
        listen: SocketAddr,
        auth: Option<&AuthConfig>,
        tls: Option<&TlsConfig>,
    ) -> Result<Access, AuthError> {
        if auth.is_none() && !listen.ip().is_loopback() {
            return Err(AuthError::OpenListen { listen });
        }
        let tls = tls.map(|t| t.load()).transpose()?;
        let auth = auth
            .map(|a| Auth::load(a, tls.is_some()))
            .transpose()?
            .map(Arc::new);
        Ok(Access { auth, tls })
    }
}

/// The role a request needs (None: anyone, e.g. the login page and the stylesheets).
pub fn required_role(method: &Method, path: &str) -> Option<Role> {
    const PUBLIC: &[&str] = &[
        "/login",
        "/logout",
        "/assets/kare.css",
        "/assets/report.css",
        "/assets/kare.js",
    ];
    if PUBLIC.contains(&path) {
        return None;
    }
    // Commissioning records (who signed the site off, the readings, the uplinks).
    const ADMIN: &[&str] = &["/api/v1/commissioning"];
    if ADMIN
        .iter()
        .any(|a| path == *a || path.starts_with(&format!("{a}/")))
    {
        return Some(Role::Admin);
    }
    // Reading is a viewer's; changing anything is an admin's.
    if method == Method::GET || method == Method::HEAD {
        Some(Role::Viewer)
    } else {
        Some(Role::Admin)
    }
}

/// Who sent a request: a bearer token, else a session cookie.
enum Caller {
    Role(Role),
    /// A token that matches neither.
    BadToken,
    Nobody,
}

fn caller(auth: &Auth, headers: &HeaderMap) -> Caller {
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let Some(token) = v.to_str().ok().and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        }) else {
            return Caller::BadToken;
        };
        return match auth.token_role(token) {
            Some(r) => Caller::Role(r),
            None => Caller::BadToken,
        };
    }
    match login::session_cookie(headers).and_then(|id| auth.sessions.role(&id)) {
        Some(r) => Caller::Role(r),
        None => Caller::Nobody,
    }
}

/// The middleware in front of every route: the gate, and headers that keep the pages out of
/// other sites' frames (`X-Frame-Options`), the browser from guessing types, and, over TLS,
/// the browser on HTTPS (`Strict-Transport-Security`).
pub async fn require(State(auth): State<Arc<Auth>>, req: Request, next: Next) -> Response {
    let tls = auth.secure_cookie;
    let mut resp = gate(auth, req, next).await;
    let h = resp.headers_mut();
    h.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    if tls {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            header::HeaderValue::from_static("max-age=31536000"),
        );
    }
    resp
}

async fn gate(auth: Arc<Auth>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let Some(needed) = required_role(req.method(), &path) else {
        return next.run(req).await;
    };
    let api = path.starts_with("/api/");
    match caller(&auth, req.headers()) {
        Caller::Role(role) if role >= needed => {
            tracing::debug!(role = role.as_str(), path, "authorised");
            next.run(req).await
        }
        Caller::Role(role) => {
            tracing::info!(role = role.as_str(), path, "refused: needs the admin role");
            forbidden(api, &path)
        }
        Caller::BadToken => {
            tracing::warn!(path, "refused: a bearer token that matches no [auth] token");
            unauthorized(api, "the bearer token is not one of [auth]'s tokens")
        }
        Caller::Nobody if api => unauthorized(api, "this API needs a bearer token"),
        Caller::Nobody => {
            let next = match req.uri().query() {
                Some(q) => format!("{path}?{q}"),
                None => path,
            };
            Redirect::to(&format!("/login?next={}", login::url_encode(&next))).into_response()
        }
    }
}

fn unauthorized(api: bool, why: &str) -> Response {
    let msg = format!(
        "{why}: send `Authorization: Bearer <token>` with the token from the file named by [auth] admin_token_file or viewer_token_file{}",
        if api { "" } else { ", or log in at /login" }
    );
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer realm=\"kare\"")],
        axum::Json(serde_json::json!({ "error": msg })),
    )
        .into_response()
}

fn forbidden(api: bool, path: &str) -> Response {
    let msg = format!("{path} needs the admin role (the admin token, or a user added with `kare passwd USER --role admin`)");
    if api {
        (
            StatusCode::FORBIDDEN,
            axum::Json(serde_json::json!({ "error": msg })),
        )
            .into_response()
    } else {
        (StatusCode::FORBIDDEN, msg).into_response()
    }
}

/// Every route behind the gate, with the login and logout pages (no `auth`: the router as it
/// is, for loopback).
pub fn guard(router: axum::Router, auth: Option<Arc<Auth>>) -> axum::Router {
    match auth {
        None => router,
        Some(auth) => router
            .merge(login::router(auth.clone()))
            .layer(axum::middleware::from_fn_with_state(auth, require)),
    }
}
