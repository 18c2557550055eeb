//! Tickets mailed to a real SMTP server: `tests/peers/smtp_sink.py` (aiosmtpd, in the repo's
//! `.venv`, which `scripts/peers-venv` creates or completes first) writes each message it
//! accepts to a directory; the test reads them back.

use chrono::{TimeZone, Utc};
use kare::actions::delivery::config::{EmailConfig, SmtpTls};
use kare::actions::delivery::payload::{
    ApplianceInfo, ContactInfo, CustomerInfo, SiteInfo, SCHEMA,
};
use kare::actions::delivery::{
    run_outbox, DeliveryConfig, DeliveryNews, EndpointConfig, TicketPayload,
};
use kare::store::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The peers' Python, after `scripts/peers-venv` made sure aiosmtpd is installed (it is
/// idempotent and costs one file check when nothing is missing).
fn python() -> PathBuf {
    let out = Command::new(repo().join("scripts/peers-venv"))
        .output()
        .expect("scripts/peers-venv runs");
    assert!(
        out.status.success(),
        "scripts/peers-venv failed (python3 with venv and PyPI access are needed):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    repo().join(".venv/bin/python")
}

/// A running smtp_sink.py; killed when dropped.
struct Sink {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Sink {
    fn start(py: &Path, dir: PathBuf, extra: &[&str]) -> Sink {
        let mut child = Command::new(py)
            .arg(repo().join("tests/peers/smtp_sink.py"))
            .arg("--dir")
            .arg(&dir)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("smtp_sink.py starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .strip_prefix("LISTENING ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("smtp_sink.py said {line:?}"));
        Sink { child, port, dir }
    }

    /// Waits for `name` to appear (files appear whole), for at most `secs`.
    fn wait_file(&self, name: &str, secs: f64) -> String {
        let p = self.dir.join(name);
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        loop {
            if let Ok(s) = std::fs::read_to_string(&p) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "{name} not received within {secs} s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A parsed message: unfolded headers and the decoded body.
struct Mail {
    headers: Vec<(String, String)>,
    body: String,
}

impl Mail {
    fn parse(raw: &str) -> Mail {
        let raw = raw.replace("\r\n", "\n");
        let (head, body) = raw.split_once("\n\n").unwrap();
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                headers.last_mut().unwrap().1.push_str(line);
            } else if let Some((k, v)) = line.split_once(':') {
                headers.push((k.to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let mut m = Mail {
            headers,
            body: body.to_string(),
        };
        if m.header("content-transfer-encoding") == "quoted-printable" {
            m.body = unqp(&m.body);
        }
        m
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
}

fn unqp(s: &str) -> String {
    let s = s.replace("=\n", "");
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

fn email(name: &str, sink: &Sink) -> EndpointConfig {
    EndpointConfig::Email(EmailConfig {
        name: name.into(),
        smtp_host: "127.0.0.1".into(),
        smtp_port: Some(sink.port),
        tls: SmtpTls::None,
        username: None,
        password: None,
        from: "kare at St Mary's <kare-stmary@utility.test>".into(),
        to: vec![
            "repair-desk@utility.test".into(),
            "duty@utility.test".into(),
        ],
        message_id_domain: None,
        timeout_s: 5.0,
    })
}

fn payload(state: TicketState) -> serde_json::Value {
    let t0 = Utc.with_ymd_and_hms(2026, 11, 26, 8, 15, 0).unwrap();
    TicketPayload {
        schema: SCHEMA.into(),
        id: 0,
        key: String::new(),
        revision: 0,
        kind: "repair".into(),
        state,
        priority: "P1".into(),
        title: "Supply lost at St Mary's Hospital".into(),
        opened_at: t0,
        updated_at: t0,
        closed_at: (state == TicketState::Closed).then(|| t0 + chrono::Duration::seconds(3725)),
        duration_s: (state == TicketState::Closed).then_some(3725.0),
        classification: (state == TicketState::Closed).then(|| "sustained".into()),
        site: SiteInfo {
            id: "SITE-1".into(),
            address: "1 Hospital Road".into(),
            access_notes: "Gate B, ask security".into(),
            nominal_kv: Some(10.0),
        },
        customer: CustomerInfo {
            id: "C-42".into(),
            name: "St Mary's Hospital".into(),
            tier: "critical".into(),
            account_manager: Some(ContactInfo {
                name: "Li Wei".into(),
                phone: "+86 10 5555 0100".into(),
                ..Default::default()
            }),
            contacts: vec![ContactInfo {
                name: "Duty electrician".into(),
                role: "on call".into(),
                phone: "+86 10 5555 0199".into(),
                email: String::new(),
            }],
        },
        event: None,
        generator: None,
        detail: serde_json::json!({"sources": ["feeder-1", "ups"]}),
        appliance: ApplianceInfo {
            id: "kare-stmary".into(),
            version: "0.1.0".into(),
        },
    }
    .to_json()
}

async fn save(
    store: &StoreHandle,
    key: &str,
    state: TicketState,
    endpoints: &[&str],
) -> SavedTicket {
    let p = payload(state);
    store
        .save_ticket(TicketWrite {
            key: key.into(),
            kind: "repair".into(),
            state,
            priority: "P1".into(),
            site_id: "SITE-1".into(),
            customer_id: "C-42".into(),
            title: "Supply lost at St Mary's Hospital".into(),
            body_json: p.clone(),
            event_id: None,
            opened_at: None,
            closed_at: None,
            duration_s: None,
            deliver_to: endpoints
                .iter()
                .map(|e| DeliverTo {
                    channel: Channel::Email,
                    endpoint: e.to_string(),
                    payload_json: p.clone(),
                })
                .collect(),
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_email_reaches_a_real_smtp_server_with_a_stable_message_id() {
    let py = tokio::task::spawn_blocking(python).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // "desk" turns the first message away with 451 (try later); "refuses" with 550, for good.
    let desk = Sink::start(
        &py,
        dir.path().join("desk"),
        &["--reject-first", "1", "--reject-code", "451"],
    );
    let refuses = Sink::start(
        &py,
        dir.path().join("refuses"),
        &["--reject-first", "99", "--reject-code", "550"],
    );
    let store = StoreHandle::open(&StoreConfig {
        synchronous: Synchronous::Normal,
        ..StoreConfig::at(dir.path().join("kare.db"))
    })
    .unwrap();
    let cfg = DeliveryConfig {
        backoff_base_s: 0.05,
        backoff_max_s: 0.2,
        endpoint: vec![email("desk-mail", &desk), email("bad-mail", &refuses)],
        ..DeliveryConfig::default()
    };
    cfg.validate().unwrap();
    let stop = CancellationToken::new();
    let stop_rx = stop.clone();
    let (dead_tx, mut dead) = mpsc::channel(4);
    let worker = tokio::spawn(run_outbox(store.clone(), cfg, stop_rx, dead_tx));

    let key = "SITE-1-outage-20261126T081500Z";
    let opened = save(&store, key, TicketState::Open, &["desk-mail", "bad-mail"]).await;

    // The first attempt was turned away with 451 and retried: same Message-ID both times.
    let rejected = Mail::parse(&desk.wait_file("rejected-0001.eml", 10.0));
    let m1 = Mail::parse(&desk.wait_file("0002.eml", 10.0));
    let want_id = format!("<kare.{key}.r1@utility.test>");
    assert_eq!(rejected.header("message-id"), want_id);
    assert_eq!(m1.header("message-id"), want_id);
    assert_eq!(m1.header("x-kare-idempotency-key"), format!("{key}:1"));
    assert_eq!(
        m1.header("subject"),
        "[kare P1] REPAIR OPEN: Supply lost at St Mary's Hospital (SITE-1)"
    );
    assert!(m1.header("from").contains("kare-stmary@utility.test"));
    assert!(m1.header("content-type").starts_with("text/plain"));
    assert!(
        m1.body
            .starts_with("Supply lost at St Mary's Hospital\n\nTicket:"),
        "{}",
        m1.body
    );
    for want in [
        format!("Ticket:          {key} (revision 1)"),
        "Customer:        St Mary's Hospital (C-42), tier critical".into(),
        "Access:          Gate B, ask security".into(),
        "Opened:          2026-11-26T08:15:00Z".into(),
        "Contact:         Duty electrician, on call, +86 10 5555 0199".into(),
        format!("Idempotency-Key: {key}:1"),
    ] {
        assert!(m1.body.contains(&want), "missing {want:?} in:\n{}", m1.body);
    }
    let env: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(desk.dir.join("0002.json")).unwrap())
            .unwrap();
    assert_eq!(env["mail_from"], "kare-stmary@utility.test");
    assert_eq!(
        env["rcpt_tos"],
        serde_json::json!(["repair-desk@utility.test", "duty@utility.test"])
    );

    // 550 is final: a dead letter after one attempt, no retry.
    let next_dead = async {
        loop {
            match dead.recv().await {
                Some(DeliveryNews::Dead(d)) => return Some(d),
                Some(DeliveryNews::Recovered { .. }) => continue,
                None => return None,
            }
        }
    };
    let letter = tokio::time::timeout(Duration::from_secs(10), next_dead)
        .await
        .expect("a dead letter")
        .unwrap();
    assert_eq!(letter.endpoint, "bad-mail");
    assert_eq!(letter.outbox_id, opened.outbox_ids[1]);
    assert_eq!(letter.attempts, 1);
    assert!(letter.reason.contains("550"), "{}", letter.reason);

    // The closing revision threads under the first and says how long it lasted.
    save(&store, key, TicketState::Closed, &["desk-mail"]).await;
    let m2 = Mail::parse(&desk.wait_file("0003.eml", 10.0));
    assert_eq!(
        m2.header("message-id"),
        format!("<kare.{key}.r2@utility.test>")
    );
    assert_eq!(m2.header("in-reply-to"), want_id);
    assert_eq!(m2.header("references"), want_id);
    assert!(
        m2.header("subject").contains("REPAIR CLOSED (update 2)"),
        "{}",
        m2.header("subject")
    );
    assert!(
        m2.body.contains("Duration:        1 h 02 min 05 s"),
        "{}",
        m2.body
    );
    assert!(
        m2.body.contains("Class:           sustained"),
        "{}",
        m2.body
    );

    stop.cancel();
    worker.await.unwrap();
    let rows = store.outbox_for_ticket(opened.id).await.unwrap();
    let states: Vec<(String, i64, OutboxState)> = rows
        .iter()
        .map(|r| (r.endpoint.clone(), r.revision, r.state))
        .collect();
    assert_eq!(
        states,
        [
            ("desk-mail".to_string(), 1, OutboxState::Delivered),
            ("bad-mail".to_string(), 1, OutboxState::Dead),
            ("desk-mail".to_string(), 2, OutboxState::Delivered),
        ]
    );
}
