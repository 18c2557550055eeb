//! No open doors, end to end with the built binary: `kare demo` listening beyond loopback with
//! `[auth]` (tokens, a user set with `kare passwd`) is exercised with good and bad credentials,
//! and its whole log (stdout and stderr, debug level) must hold no token, password or session
//! id; `kare run` refuses to listen beyond loopback without `[auth]`, and refuses a secret file
//! that others may read, each with the fix.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const ADMIN: &str = "adm1n-7f3a9c2e5b8d4f106a2c9e7b3d5f8a1c";
const VIEWER: &str = "v1ewer-2b4d6f8a0c1e3a5c7e9b1d3f5a7c9e0b";
const PASSWORD: &str = "hospital-feeder-7781";

struct Kare(Child);

impl Drop for Kare {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn kare() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kare"));
    c.env_remove("KARE_FAULT").env_remove("NOTIFY_SOCKET");
    c
}

fn secret(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

/// One HTTP/1.0 request: the status line and headers, and the body.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_string(), body.to_string())
}

fn status(head: &str) -> u16 {
    head.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn no_secret_reaches_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let admin = secret(d, "api-admin.token", &format!("{ADMIN}\n"), 0o600);
    let viewer = secret(d, "api-viewer.token", VIEWER, 0o600);
    let users = d.join("users");
    // `kare passwd` reads the password from standard input when it is not a terminal.
    let mut p = kare()
        .args(["passwd", "desk", "--role", "admin", "--file"])
        .arg(&users)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(p.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let out = p.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::metadata(&users).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&users).unwrap();
    assert!(
        text.starts_with("#") && text.contains("desk:admin:$argon2id$") && !text.contains(PASSWORD)
    );

    let config = d.join("kare.toml");
    std::fs::write(
        &config,
        format!(
            "[auth]\nadmin_token_file = {:?}\nviewer_token_file = {:?}\nusers_file = {:?}\n",
            admin, viewer, users
        ),
    )
    .unwrap();
    let log_path = d.join("kare.log");
    let log = File::create(&log_path).unwrap();
    let mut child = kare()
        .args(["demo", "--listen", "0.0.0.0:0", "--duration", "120"])
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(d.join("data"))
        .env("KARE_LOG", "debug,kare=trace")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log.try_clone().unwrap()))
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let kare_proc = Kare(child);
    // The console goes to the log file too, and its lines to the test.
    let (tx, rx) = mpsc::channel();
    let mut log_out = log;
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = writeln!(log_out, "{line}");
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let port = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("kare demo said no address");
        if let Some(rest) = line.strip_prefix("kare demo: open http://0.0.0.0:") {
            break rest.split('/').next().unwrap().to_string();
        }
    };
    // The server answers once the API line is printed.
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("kare demo never served");
        if line.starts_with("kare: API on") {
            break;
        }
    }
    let addr = format!("127.0.0.1:{port}");
    let bearer = |t: &str| format!("Bearer {t}");
    let (h, _) = http(&addr, "GET", "/api/v1/status", &[], "");
    assert_eq!(status(&h), 401, "{h}");
    let (h, _) = http(
        &addr,
        "GET",
        "/api/v1/status",
        &[("Authorization", &bearer(ADMIN))],
        "",
    );
    assert_eq!(status(&h), 200, "{h}");
    let (h, _) = http(
        &addr,
        "GET",
        "/api/v1/events",
        &[("Authorization", &bearer(VIEWER))],
        "",
    );
    assert_eq!(status(&h), 200, "{h}");
    let (h, _) = http(
        &addr,
        "GET",
        "/api/v1/commissioning",
        &[("Authorization", &bearer(VIEWER))],
        "",
    );
    assert_eq!(status(&h), 403, "{h}");
    let (h, _) = http(
        &addr,
        "GET",
        "/api/v1/tickets",
        &[(
            "Authorization",
            &bearer("wrong-token-wrong-token-wrong-token"),
        )],
        "",
    );
    assert_eq!(status(&h), 401, "{h}");
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    // A wrong password, and the password typed into the user name field.
    let (h, _) = http(
        &addr,
        "POST",
        "/login",
        &form,
        "username=desk&password=not-it-at-all",
    );
    assert_eq!(status(&h), 401, "{h}");
    let (h, _) = http(
        &addr,
        "POST",
        "/login",
        &form,
        &format!("username={PASSWORD}&password=x"),
    );
    assert_eq!(status(&h), 401, "{h}");
    let (h, _) = http(
        &addr,
        "POST",
        "/login",
        &form,
        &format!("username=desk&password={PASSWORD}&next=/tickets"),
    );
    assert_eq!(status(&h), 303, "{h}");
    let cookie = h
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let session = cookie.split_once('=').unwrap().1.to_string();
    assert!(session.len() >= 32);
    let (h, body) = http(&addr, "GET", "/tickets", &[("Cookie", &cookie)], "");
    assert_eq!(status(&h), 200, "{h}");
    assert!(body.contains("<html"), "{body}");
    let (h, _) = http(&addr, "GET", "/logout", &[("Cookie", &cookie)], "");
    assert_eq!(status(&h), 303, "{h}");

    // A clean stop, then the whole log.
    assert_eq!(
        unsafe { libc::kill(kare_proc.0.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(_) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(e) => panic!("kare demo did not stop: {e}"),
        }
    }
    drop(kare_proc);
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        text.contains("logged in to the pages"),
        "the log is not the one exercised:\n{text}"
    );
    assert!(
        text.contains("role=\"admin\"") || text.contains("role=admin"),
        "{text}"
    );
    for (what, s) in [
        ("the admin token", ADMIN),
        ("the viewer token", VIEWER),
        ("the wrong token", "wrong-token-wrong-token"),
        ("the password", PASSWORD),
        ("the session id", session.as_str()),
    ] {
        assert!(!text.contains(s), "{what} is in the log:\n{text}");
    }
}

fn refused(config: &str, dir: &Path) -> String {
    let path = dir.join("kare.toml");
    std::fs::write(&path, config).unwrap();
    let out = kare()
        .args(["run", "--config"])
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn run_refuses_an_open_listen_without_auth() {
    let dir = tempfile::tempdir().unwrap();
    let e = refused("listen = \"0.0.0.0:18080\"\n", dir.path());
    assert!(
        e.contains("without authentication")
            && e.contains("admin_token_file")
            && e.contains("kare passwd"),
        "{e}"
    );
}

#[test]
fn run_refuses_a_secret_file_others_may_read() {
    let dir = tempfile::tempdir().unwrap();
    let token = secret(dir.path(), "api-admin.token", ADMIN, 0o644);
    let e = refused(
        &format!("listen = \"0.0.0.0:18080\"\n[auth]\nadmin_token_file = {token:?}\n"),
        dir.path(),
    );
    assert!(e.contains(&format!("chmod 600 {}", token.display())), "{e}");
    assert!(!e.contains(ADMIN), "{e}");
}

/// One HTTP/1.1 request over TLS, trusting only `root` (the status line and headers).
fn https(
    addr: &str,
    root: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> String {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(root).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let conn = rustls::ClientConnection::new(
        std::sync::Arc::new(config),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    tls.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    text.split_once("\r\n\r\n")
        .map(|(h, _)| h.to_string())
        .unwrap_or(text)
}

#[test]
fn tls_serves_with_the_certificate_gen_cert_made() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = kare()
        .args(["gen-cert", "--name", "kare-test.example", "--out"])
        .arg(d)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = d.join("tls.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let admin = secret(d, "api-admin.token", ADMIN, 0o600);
    let users = d.join("users");
    let mut p = kare()
        .args(["passwd", "desk", "--file"])
        .arg(&users)
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(p.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    assert!(p.wait().unwrap().success());
    let config = d.join("kare.toml");
    std::fs::write(
        &config,
        format!(
            "[auth]\nadmin_token_file = {admin:?}\nusers_file = {users:?}\n[tls]\ncert_file = {:?}\nkey_file = {key:?}\n",
            d.join("tls.crt")
        ),
    )
    .unwrap();
    let mut child = kare()
        .args(["demo", "--listen", "127.0.0.1:0", "--duration", "120"])
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(d.join("data"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _kare = Kare(child);
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    let port = lines
        .by_ref()
        .find_map(|l| {
            l.strip_prefix("kare demo: open https://127.0.0.1:")
                .map(|r| r.split('/').next().unwrap().to_string())
        })
        .expect("kare demo said no https address");
    assert!(lines.any(|l| l.starts_with("kare: API on https://")));
    let addr = format!("127.0.0.1:{port}");
    let crt = d.join("tls.crt");
    let h = https(&addr, &crt, "GET", "/api/v1/status", &[], "");
    assert!(h.starts_with("HTTP/1.1 401"), "{h}");
    let h = https(
        &addr,
        &crt,
        "GET",
        "/api/v1/status",
        &[("Authorization", &format!("Bearer {ADMIN}"))],
        "",
    );
    assert!(h.starts_with("HTTP/1.1 200"), "{h}");
    // Over TLS the session cookie is Secure.
    let h = https(
        &addr,
        &crt,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &format!("username=desk&password={PASSWORD}"),
    );
    assert!(h.starts_with("HTTP/1.1 303"), "{h}");
    let cookie = h
        .lines()
        .find(|l| l.starts_with("set-cookie:"))
        .expect("a cookie");
    assert!(
        cookie.contains("; Secure")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
}
