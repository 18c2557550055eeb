//! The gate through the router, without a socket: every route (read from the router's source,
//! so a new route is covered the day it is added) refuses a request without credentials (401
//! for the API, a redirect to the login for pages), a wrong token (401) and a viewer on an admin
//! route (403), and lets an admin through; the login sets a cookie that works; the start-up
//! gate refuses an open listen and a secret file others may read.

use super::*;
use crate::web::ApiState;
use axum::body::Body;
use axum::http::Request;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use tower::ServiceExt;

const ADMIN: &str = "admin-0123456789abcdef0123456789abcdef0123456789abcdef";
const VIEWER: &str = "viewer-0123456789abcdef0123456789abcdef0123456789abcdef";

fn state() -> ApiState {
    ApiState {
        log: Arc::default(),
        tickets: Arc::default(),
        status: Arc::default(),
        readings: tokio::sync::broadcast::channel(4).0,
        updates: tokio::sync::broadcast::channel(4).0,
        started: chrono::Utc::now(),
        influx: None,
        meters: Arc::default(),
        meter_readings: tokio::sync::broadcast::channel(4).0,
        ticket_updates: tokio::sync::broadcast::channel(4).0,
        store: None,
        pending: Arc::default(),
    }
}

fn secret(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let p = dir.join(name);
    let mut f = std::fs::File::create(&p).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

/// `[auth]` with both tokens and a users file holding `ann` (viewer) and `bob` (admin).
fn config(dir: &Path) -> AuthConfig {
    let users = dir.join("users");
    users::set_password(&users, "ann", Role::Viewer, "ann-password-1").unwrap();
    users::set_password(&users, "bob", Role::Admin, "bob-password-1").unwrap();
    AuthConfig {
        admin_token_file: secret(dir, "admin.token", &format!("{ADMIN}\n"), 0o600),
        viewer_token_file: Some(secret(dir, "viewer.token", VIEWER, 0o600)),
        users_file: Some(users),
        session_hours: 12.0,
    }
}

fn app(dir: &Path) -> axum::Router {
    let access =
        Access::for_listen("0.0.0.0:8080".parse().unwrap(), Some(&config(dir)), None).unwrap();
    crate::web::guarded_router(state(), &access)
}

/// Status and headers of one request (the body is not read: `/api/v1/stream` never ends).
async fn send(
    app: &axum::Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, HeaderMap) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    (resp.status(), resp.headers().clone())
}

/// Every path the router serves, from its source (`{id}` → 1).
fn routes() -> Vec<String> {
    let sources = [
        include_str!("../api/mod.rs"),
        include_str!("../pages/mod.rs"),
    ];
    let mut out = Vec::new();
    for src in sources {
        let mut rest = src;
        while let Some(i) = rest.find(".route(") {
            rest = &rest[i + ".route(".len()..];
            let start = rest.find('"').unwrap() + 1;
            let end = start + rest[start..].find('"').unwrap();
            out.push(rest[start..end].replace("{id}", "1"));
        }
    }
    assert!(out.len() >= 15, "too few routes found: {out:?}");
    assert!(out.contains(&"/api/v1/commissioning".to_string()));
    out
}

fn is_public(path: &str) -> bool {
    required_role(&Method::GET, path).is_none()
}

#[tokio::test]
async fn every_route_refuses_a_request_without_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    for path in routes() {
        let (status, headers) = send(&app, "GET", &path, &[], "").await;
        if is_public(&path) {
            assert!(path.starts_with("/assets/"), "{path} is public");
            assert_eq!(status, StatusCode::OK, "{path}");
        } else if path.starts_with("/api/") {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
            assert!(headers.contains_key(header::WWW_AUTHENTICATE), "{path}");
        } else {
            assert_eq!(status, StatusCode::SEE_OTHER, "{path}");
            let to = headers[header::LOCATION].to_str().unwrap();
            assert!(to.starts_with("/login?next="), "{path} → {to}");
        }
    }
    // An address that is no route is refused too (no probing for what exists).
    let (status, _) = send(&app, "GET", "/api/v1/nothing", &[], "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_wrong_token_is_401_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    for path in routes().into_iter().filter(|p| !is_public(p)) {
        for bad in [
            "Bearer nope",
            "Bearer admin-0123456789abcdef0123456789abcdef0123456789abcdeX",
            "Basic YWRtaW46YWRtaW4=",
            "Bearer ",
        ] {
            let (status, _) = send(&app, "GET", &path, &[("authorization", bad)], "").await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} with {bad:?}");
        }
    }
}

#[tokio::test]
async fn a_viewer_reads_but_admin_routes_are_403() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let viewer = format!("Bearer {VIEWER}");
    let admin = format!("Bearer {ADMIN}");
    for path in routes().into_iter().filter(|p| !is_public(p)) {
        let needed = required_role(&Method::GET, &path).unwrap();
        let (status, _) = send(&app, "GET", &path, &[("authorization", &viewer)], "").await;
        if needed == Role::Admin {
            assert_eq!(status, StatusCode::FORBIDDEN, "viewer on {path}");
        } else {
            assert!(
                status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                "viewer on {path}: {status}"
            );
        }
        let (status, _) = send(&app, "GET", &path, &[("authorization", &admin)], "").await;
        assert!(
            status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
            "admin on {path}: {status}"
        );
    }
    // Changing state is an admin's: a viewer's POST is refused before any handler.
    let (status, _) = send(
        &app,
        "POST",
        "/api/v1/tickets",
        &[("authorization", &viewer)],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = send(
        &app,
        "POST",
        "/api/v1/tickets",
        &[("authorization", &admin)],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _) = send(
        &app,
        "GET",
        "/api/v1/commissioning",
        &[("authorization", &admin)],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn login_gives_a_session_cookie_and_logout_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let form = [("content-type", "application/x-www-form-urlencoded")];
    // Wrong password, unknown user: 401, no cookie.
    for body in [
        "username=ann&password=wrong-password&next=/tickets",
        "username=nobody&password=ann-password-1",
    ] {
        let (status, headers) = send(&app, "POST", "/login", &form, body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert!(!headers.contains_key(header::SET_COOKIE));
    }
    // ann (viewer): a cookie, HttpOnly and SameSite=Strict, not Secure without TLS.
    let (status, headers) = send(
        &app,
        "POST",
        "/login",
        &form,
        "username=ann&password=ann-password-1&next=/tickets",
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/tickets");
    let set = headers[header::SET_COOKIE].to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "{set}");
    let cookie = set.split(';').next().unwrap().to_string();
    let (status, _, body) =
        crate::web::pages::test_support::get(app.clone(), "/tickets", &[("cookie", &cookie)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("href=\"/logout\""),
        "no Log out in the header: {body}"
    );
    let (status, _) = send(&app, "GET", "/api/v1/status", &[("cookie", &cookie)], "").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(
        &app,
        "GET",
        "/api/v1/commissioning",
        &[("cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // An open redirect is not followed.
    let (_, headers) = send(
        &app,
        "POST",
        "/login",
        &form,
        "username=bob&password=bob-password-1&next=//evil.example/",
    )
    .await;
    assert_eq!(headers[header::LOCATION], "/now");
    let bob = headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let (status, _) = send(
        &app,
        "GET",
        "/api/v1/commissioning",
        &[("cookie", &bob)],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Logout: the session is gone.
    let (status, headers) = send(&app, "POST", "/logout", &[("cookie", &cookie)], "").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let (status, _) = send(&app, "GET", "/tickets", &[("cookie", &cookie)], "").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // The login page itself is open, and no other site may frame it.
    let (status, headers) = send(&app, "GET", "/login?next=/events", &[], "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
}

#[test]
fn an_open_listen_without_auth_is_refused_with_the_fix() {
    let e = Access::for_listen("0.0.0.0:8080".parse().unwrap(), None, None)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("[auth]") && e.contains("admin_token_file"),
        "{e}"
    );
    assert!(e.contains("127.0.0.1"), "{e}");
    // Loopback without [auth]: served as before.
    let a = Access::for_listen("127.0.0.1:8080".parse().unwrap(), None, None).unwrap();
    assert!(a.auth.is_none());
    let a = Access::for_listen("[::1]:8080".parse().unwrap(), None, None).unwrap();
    assert!(a.auth.is_none());
}

#[test]
fn a_secret_file_others_may_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.admin_token_file = secret(dir.path(), "open.token", ADMIN, 0o644);
    let e = Auth::load(&cfg, false).err().unwrap().to_string();
    assert!(e.contains("open.token") && e.contains("chmod 600"), "{e}");
    // The users file too.
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    std::fs::set_permissions(
        cfg.users_file.as_ref().unwrap(),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let e = Auth::load(&cfg, false).err().unwrap().to_string();
    assert!(e.contains("users") && e.contains("chmod 600"), "{e}");
    // `kare passwd` refuses to add to it as well.
    let e = users::set_password(
        cfg.users_file.as_ref().unwrap(),
        "cy",
        Role::Viewer,
        "cy-password-1",
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("chmod 600"), "{e}");
    // A short token is no token.
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.viewer_token_file = Some(secret(dir.path(), "short.token", "secret", 0o600));
    let e = Auth::load(&cfg, false).err().unwrap().to_string();
    assert!(e.contains("too short"), "{e}");
}

#[test]
fn users_file_round_trips_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users");
    users::set_password(&path, "ann", Role::Viewer, "first-password").unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    users::set_password(&path, "ann", Role::Admin, "second-password").unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains("second-password") && text.contains("$argon2id$"),
        "{text}"
    );
    let u = users::Users::load(&path).unwrap();
    assert_eq!(u.len(), 1);
    assert_eq!(u.verify("ann", "second-password"), Some(Role::Admin));
    assert_eq!(u.verify("ann", "first-password"), None);
    assert_eq!(u.verify("bob", "second-password"), None);
    assert!(users::set_password(&path, "ann", Role::Admin, "short").is_err());
    assert!(users::set_password(&path, "a:b", Role::Admin, "long-enough-pw").is_err());
}

#[test]
fn token_roles_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let auth = Auth::load(&config(dir.path()), false).unwrap();
    assert_eq!(auth.token_role(ADMIN), Some(Role::Admin));
    assert_eq!(auth.token_role(VIEWER), Some(Role::Viewer));
    assert_eq!(auth.token_role(&ADMIN[..ADMIN.len() - 1]), None);
    assert_eq!(auth.token_role(""), None);
    // Debug never shows a token.
    let dbg = format!("{auth:?}");
    assert!(!dbg.contains(ADMIN) && !dbg.contains(VIEWER), "{dbg}");
}

#[test]
fn tls_loads_a_generated_pair_and_refuses_an_open_key() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = crate::web::tls::generate(dir.path(), &["kare.local".into()]).unwrap();
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let tls = crate::web::tls::TlsConfig {
        cert_file: cert,
        key_file: key.clone(),
    };
    tls.load().unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = tls.load().err().unwrap().to_string();
    assert!(e.contains("tls.key") && e.contains("chmod 600"), "{e}");
}

#[test]
fn a_webhook_secret_file_is_read_at_load_and_must_be_private() {
    let dir = tempfile::tempdir().unwrap();
    let file = secret(
        dir.path(),
        "webhook.secret",
        "0123456789abcdef0123\n",
        0o600,
    );
    let config = dir.path().join("kare.toml");
    let text = format!(
        "[delivery]\n[[delivery.endpoint]]\nkind = \"webhook\"\nname = \"desk\"\nurl = \"https://desk.example/t\"\nsecret_file = {file:?}\n"
    );
    std::fs::write(&config, &text).unwrap();
    let cfg = crate::config::Config::load(&config).unwrap();
    let crate::actions::delivery::EndpointConfig::Webhook(w) =
        &cfg.delivery.as_ref().unwrap().endpoint[0]
    else {
        panic!("not a webhook");
    };
    assert_eq!(w.secret, "0123456789abcdef0123");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = crate::config::Config::load(&config)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("secret_file") && e.contains("chmod 600"), "{e}");
    // Both a secret and a file: refused.
    std::fs::write(
        &config,
        text.replace(
            "secret_file",
            "secret = \"0123456789abcdef0123\"\nsecret_file",
        ),
    )
    .unwrap();
    let e = crate::config::Config::load(&config)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("secret_file"), "{e}");
}

#[tokio::test]
async fn the_login_page_speaks_the_readers_language() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let (status, _, body) = crate::web::pages::test_support::get(
        app.clone(),
        "/login?next=/events",
        &[("accept-language", "zh-CN,zh;q=0.9")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("用户名") && body.contains("value=\"/events\""),
        "{body}"
    );
    let (_, _, body) = crate::web::pages::test_support::get(app, "/login", &[]).await;
    assert!(
        body.contains("User name") && body.contains("value=\"/now\""),
        "{body}"
    );
}

#[test]
fn files_root_writes_are_owned_like_their_folder() {
    use std::os::unix::fs::MetadataExt;
    // Only root may give a file away; elsewhere the files stay the writer's.
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(dir.path(), Some(4242), Some(4343)).unwrap();
    let users = dir.path().join("users");
    users::set_password(&users, "ann", Role::Viewer, "ann-password-1").unwrap();
    let (crt, key) = crate::web::tls::generate(dir.path(), &[]).unwrap();
    for p in [&users, &crt, &key] {
        let m = std::fs::metadata(p).unwrap();
        assert_eq!((m.uid(), m.gid()), (4242, 4343), "{}", p.display());
    }
}
