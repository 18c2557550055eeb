//! The outbox worker against a real HTTP receiver (axum on 127.0.0.1) that can be told to
//! fail, hang, refuse connections and recover: retries with backoff, signatures, stable
//! idempotency keys, dead letters, per-endpoint order of revisions, restarts, and the SMS
//! gateway templates.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::{TimeZone, Utc};
use hmac::{Hmac, Mac};
use kare::actions::delivery::config::{HttpMethod, SmsConfig, WebhookConfig};
use kare::actions::delivery::payload::{ApplianceInfo, CustomerInfo, SiteInfo, SCHEMA};
use kare::actions::delivery::{
    run_outbox, DeadLetter, DeliveryConfig, DeliveryNews, EndpointConfig, TicketPayload,
};
use kare::store::*;
use sha2::Sha256;
use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "test-secret-0123456789";

// ---------------------------------------------------------------------------------------------
// the receiver

#[derive(Clone, Copy, Debug, PartialEq)]
enum Reply {
    Ok,
    Status(u16, &'static str),
    Hang,
}

#[derive(Clone, Debug)]
struct Seen {
    at: Instant,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Vec<u8>,
    reply: Reply,
}

impl Seen {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn revision(&self) -> i64 {
        self.json()["revision"].as_i64().unwrap()
    }
}

/// Replies still scripted, the reply after them, and every request seen.
type HookState = (VecDeque<Reply>, Reply, Vec<Seen>);

#[derive(Clone)]
struct Hook {
    state: Arc<Mutex<HookState>>,
    count: Arc<watch::Sender<usize>>,
}

async fn handle(
    State(h): State<Hook>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reply = {
        let mut g = h.state.lock().unwrap();
        let r = g.0.pop_front().unwrap_or(g.1);
        g.2.push(Seen {
            at: Instant::now(),
            method,
            uri,
            headers,
            body: body.to_vec(),
            reply: r,
        });
        r
    };
    h.count.send_modify(|n| *n += 1);
    // `Connection: close`: no kept-alive connection outlives a stop, so a stopped receiver
    // really refuses.
    let close = [(axum::http::header::CONNECTION, "close")];
    match reply {
        Reply::Ok => (StatusCode::OK, close, "accepted").into_response(),
        Reply::Status(code, text) => {
            (StatusCode::from_u16(code).unwrap(), close, text).into_response()
        }
        Reply::Hang => {
            std::future::pending::<()>().await;
            unreachable!()
        }
    }
}

struct Receiver {
    hook: Hook,
    addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl Receiver {
    async fn start(script: &[Reply], default: Reply) -> Receiver {
        let (count, _) = watch::channel(0);
        let hook = Hook {
            state: Arc::new(Mutex::new((
                script.iter().copied().collect(),
                default,
                Vec::new(),
            ))),
            count: Arc::new(count),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut r = Receiver {
            hook,
            addr,
            task: None,
        };
        r.serve(listener);
        r
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let app = Router::new().fallback(handle).with_state(self.hook.clone());
        self.task = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
    }

    /// Stops listening: connections are refused until `restart`.
    async fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    /// Listens again on the same address, answering `default` from now on.
    async fn restart(&mut self, default: Reply) {
        self.set(default);
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    fn set(&self, default: Reply) {
        self.hook.state.lock().unwrap().1 = default;
    }

    fn seen(&self) -> Vec<Seen> {
        self.hook.state.lock().unwrap().2.clone()
    }

    /// Waits until at least `n` requests have arrived.
    async fn wait_requests(&self, n: usize, secs: f64) {
        let mut rx = self.hook.count.subscribe();
        tokio::time::timeout(Duration::from_secs_f64(secs), rx.wait_for(|c| *c >= n))
            .await
            .unwrap_or_else(|_| panic!("{n} requests not seen within {secs} s"))
            .unwrap();
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

// ---------------------------------------------------------------------------------------------
// set-up

fn webhook(name: &str, r: &Receiver) -> EndpointConfig {
    EndpointConfig::Webhook(WebhookConfig {
        name: name.into(),
        url: r.url("/hook"),
        secret: SECRET.into(),
        secret_file: None,
        timeout_s: 0.3,
        headers: Default::default(),
    })
}

fn delivery(endpoints: Vec<EndpointConfig>) -> DeliveryConfig {
    let c = DeliveryConfig {
        max_age_s: 30.0,
        backoff_base_s: 0.05,
        backoff_max_s: 0.4,
        jitter: 0.2,
        shutdown_grace_s: 0.5,
        endpoint: endpoints,
        ..DeliveryConfig::default()
    };
    c.validate().unwrap();
    c
}

fn open_store(dir: &tempfile::TempDir) -> StoreHandle {
    StoreHandle::open(&StoreConfig {
        synchronous: Synchronous::Normal,
        batch_window_ms: 1,
        ..StoreConfig::at(dir.path().join("kare.db"))
    })
    .unwrap()
}

fn payload(key: &str, state: TicketState) -> TicketPayload {
    let t0 = Utc.with_ymd_and_hms(2026, 11, 26, 8, 15, 0).unwrap();
    TicketPayload {
        schema: SCHEMA.into(),
        id: 0,
        key: String::new(),
        revision: 0,
        kind: "repair".into(),
        state,
        priority: "P1".into(),
        title: format!("Supply lost at St Mary's Hospital ({key})"),
        opened_at: t0,
        updated_at: Utc::now(),
        closed_at: (state != TicketState::Open).then(|| t0 + chrono::Duration::seconds(95)),
        duration_s: (state != TicketState::Open).then_some(95.0),
        classification: None,
        site: SiteInfo {
            id: "SITE-1".into(),
            address: "1 Hospital Road".into(),
            ..Default::default()
        },
        customer: CustomerInfo {
            id: "C-42".into(),
            name: "St Mary's Hospital".into(),
            tier: "critical".into(),
            ..Default::default()
        },
        event: None,
        generator: None,
        detail: serde_json::json!({}),
        appliance: ApplianceInfo {
            id: "kare-test".into(),
            version: "0.1.0".into(),
        },
    }
}

async fn save(
    store: &StoreHandle,
    key: &str,
    state: TicketState,
    to: &[(Channel, &str)],
) -> SavedTicket {
    let p = payload(key, state).to_json();
    store
        .save_ticket(TicketWrite {
            key: key.into(),
            kind: "repair".into(),
            state,
            priority: "P1".into(),
            site_id: "SITE-1".into(),
            customer_id: "C-42".into(),
            title: format!("ticket {key}"),
            body_json: p.clone(),
            event_id: None,
            opened_at: None,
            closed_at: None,
            duration_s: None,
            deliver_to: to
                .iter()
                .map(|(c, e)| DeliverTo {
                    channel: *c,
                    endpoint: e.to_string(),
                    payload_json: p.clone(),
                })
                .collect(),
        })
        .await
        .unwrap()
}

struct Worker {
    stop: CancellationToken,
    news: mpsc::Receiver<DeliveryNews>,
    /// Endpoints told as accepting again, in order.
    recovered: Vec<String>,
    task: JoinHandle<()>,
}

fn start_worker(store: &StoreHandle, cfg: DeliveryConfig) -> Worker {
    let stop = CancellationToken::new();
    let rx = stop.clone();
    let (ntx, news) = mpsc::channel(16);
    let task = tokio::spawn(run_outbox(store.clone(), cfg, rx, ntx));
    Worker {
        stop,
        news,
        recovered: Vec::new(),
        task,
    }
}

impl Worker {
    /// The next dead letter, noting the recoveries told before it.
    async fn next_dead(&mut self) -> Option<DeadLetter> {
        loop {
            match self.news.recv().await? {
                DeliveryNews::Dead(d) => return Some(d),
                DeliveryNews::Recovered { endpoint, .. } => self.recovered.push(endpoint),
            }
        }
    }

    async fn shutdown(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the worker stops within its grace period")
            .unwrap();
    }
}

/// Polls `f` until it gives a value, for at most `secs`.
async fn until<T, F: Future<Output = Option<T>>>(
    what: &str,
    secs: f64,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn wait_state(
    store: &StoreHandle,
    outbox_id: i64,
    want: OutboxState,
    secs: f64,
) -> OutboxRow {
    until(
        &format!("outbox row {outbox_id} {want:?}"),
        secs,
        || async {
            store
                .outbox_row(outbox_id)
                .await
                .unwrap()
                .filter(|r| r.state == want)
        },
    )
    .await
}

fn signature_ok(s: &Seen) -> bool {
    // Computed here independently of kare's own signing code.
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(s.header("X-Kare-Timestamp").as_bytes());
    mac.update(b".");
    mac.update(&s.body);
    let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    s.header("X-Kare-Signature") == want
}

// ---------------------------------------------------------------------------------------------
// tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_webhook_retries_with_backoff_and_a_stable_signed_request() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let recv = Receiver::start(
        &[
            Reply::Status(500, "boom"),
            Reply::Status(429, "slow down"),
            Reply::Status(503, "maintenance"),
        ],
        Reply::Ok,
    )
    .await;
    let cfg = delivery(vec![webhook("desk", &recv)]);
    let worker = start_worker(&store, cfg.clone());
    let t = save(
        &store,
        "SITE-1-outage-A",
        TicketState::Open,
        &[(Channel::Webhook, "desk")],
    )
    .await;
    let row = wait_state(&store, t.outbox_ids[0], OutboxState::Delivered, 10.0).await;
    assert_eq!(row.attempts, 4);

    let seen = recv.seen();
    assert_eq!(seen.len(), 4);
    for s in &seen {
        assert_eq!(s.method, Method::POST);
        assert_eq!(s.header("Idempotency-Key"), "SITE-1-outage-A:1");
        assert_eq!(s.header("Content-Type"), "application/json");
        assert!(signature_ok(s), "bad signature on attempt at {:?}", s.at);
        assert!(kare::actions::delivery::webhook::verify(
            SECRET.as_bytes(),
            s.header("X-Kare-Timestamp"),
            &s.body,
            s.header("X-Kare-Signature")
        ));
        let ts: i64 = s.header("X-Kare-Timestamp").parse().unwrap();
        assert!((Utc::now().timestamp() - ts).abs() < 60);
        assert_eq!(
            s.body, seen[0].body,
            "the body is the same on every attempt"
        );
    }
    // The body is the stored payload, with what only the store knew filled in.
    let p = TicketPayload::from_json(&seen[0].json()).unwrap();
    assert_eq!(
        (p.id, p.key.as_str(), p.revision),
        (t.id, "SITE-1-outage-A", 1)
    );
    // A body altered in transit fails verification.
    let mut forged = seen[0].clone();
    forged.body[10] ^= 1;
    assert!(!signature_ok(&forged));

    // Exponential backoff: ~50, ~100, ~200 ms (± 20 % jitter).
    let gaps: Vec<f64> = seen
        .windows(2)
        .map(|w| (w[1].at - w[0].at).as_secs_f64())
        .collect();
    for (k, g) in gaps.iter().enumerate() {
        let nominal = cfg.backoff_base_s * 2f64.powi(k as i32);
        assert!(
            *g >= nominal * 0.75,
            "gap {k}: {g:.3} s, nominal {nominal} s ({gaps:?})"
        );
    }
    assert!(gaps[2] > gaps[0] * 2.0, "{gaps:?}");

    let attempts = store.attempts(row.id).await.unwrap();
    let oks: Vec<bool> = attempts.iter().map(|a| a.ok).collect();
    assert_eq!(oks, [false, false, false, true]);
    assert!(attempts[0].detail.contains("HTTP 500") && attempts[0].detail.contains("boom"));
    assert!(attempts[1].detail.contains("HTTP 429"));
    assert!(attempts[3].detail.contains("HTTP 200"));
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_webhook_timeouts_and_refused_connections_are_retried_until_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let mut recv = Receiver::start(&[], Reply::Hang).await;
    let worker = start_worker(&store, delivery(vec![webhook("desk", &recv)]));
    let t = save(
        &store,
        "hang",
        TicketState::Open,
        &[(Channel::Webhook, "desk")],
    )
    .await;
    let id = t.outbox_ids[0];

    // Two requests that never get an answer: both time out and are retried.
    recv.wait_requests(2, 5.0).await;
    recv.stop().await;
    // Now nobody listens: connections are refused, and still retried.
    let attempts = until("refused attempts", 10.0, || async {
        let a = store.attempts(id).await.unwrap();
        (a.iter()
            .filter(|a| a.detail.contains("cannot reach"))
            .count()
            >= 2)
            .then_some(a)
    })
    .await;
    assert!(
        attempts
            .iter()
            .any(|a| a.detail.contains("no answer within 0.3 s")),
        "{attempts:?}"
    );
    assert_eq!(
        store.outbox_row(id).await.unwrap().unwrap().state,
        OutboxState::Pending
    );

    recv.restart(Reply::Ok).await;
    let row = wait_state(&store, id, OutboxState::Delivered, 10.0).await;
    let seen = recv.seen();
    assert!(seen.iter().all(|s| s.header("Idempotency-Key") == "hang:1"));
    assert_eq!(seen.last().unwrap().reply, Reply::Ok);
    assert!(row.attempts >= 5, "{}", row.attempts);
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_webhook_client_error_is_a_dead_letter_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let recv = Receiver::start(&[], Reply::Status(422, "unknown site SITE-1")).await;
    let mut worker = start_worker(&store, delivery(vec![webhook("desk", &recv)]));
    let t = save(
        &store,
        "refused",
        TicketState::Open,
        &[(Channel::Webhook, "desk")],
    )
    .await;
    let letter = tokio::time::timeout(Duration::from_secs(5), worker.next_dead())
        .await
        .expect("a dead letter within 5 s")
        .unwrap();
    assert_eq!(letter.outbox_id, t.outbox_ids[0]);
    assert_eq!(
        (letter.ticket_key.as_str(), letter.revision),
        ("refused", 1)
    );
    assert_eq!(letter.endpoint, "desk");
    assert_eq!(letter.attempts, 1);
    assert!(
        letter.reason.contains("HTTP 422") && letter.reason.contains("unknown site SITE-1"),
        "{}",
        letter.reason
    );
    assert_eq!(recv.seen().len(), 1, "no retry after a permanent refusal");
    let dead = store.dead_letters().await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].state, OutboxState::Dead);
    assert!(dead[0].last_error.as_deref().unwrap().contains("422"));

    // The receiver fixed, the dead letter is put back and goes through, with the same key.
    recv.set(Reply::Ok);
    store.requeue_dead(t.outbox_ids[0]).await.unwrap();
    wait_state(&store, t.outbox_ids[0], OutboxState::Delivered, 5.0).await;
    let seen = recv.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].header("Idempotency-Key"), "refused:1");
    assert_eq!(seen[1].body, seen[0].body);
    assert!(store.dead_letters().await.unwrap().is_empty());

    // An endpoint that is not configured (any more) is a dead letter too, not a retry loop.
    let t2 = save(
        &store,
        "nowhere",
        TicketState::Open,
        &[(Channel::Webhook, "gone")],
    )
    .await;
    let letter = tokio::time::timeout(Duration::from_secs(5), worker.next_dead())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(letter.outbox_id, t2.outbox_ids[0]);
    assert!(
        letter.reason.contains("no endpoint named `gone`"),
        "{}",
        letter.reason
    );
    // The endpoint that dead-lettered and then accepted again was told once, so that the
    // maintenance ticket about it can close.
    assert_eq!(worker.recovered, ["desk"]);
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_gives_up_after_max_age_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let recv = Receiver::start(&[], Reply::Status(502, "bad gateway")).await;
    let mut cfg = delivery(vec![webhook("desk", &recv)]);
    cfg.max_age_s = 1.0;
    let mut worker = start_worker(&store, cfg);
    let t = save(
        &store,
        "never",
        TicketState::Open,
        &[(Channel::Webhook, "desk")],
    )
    .await;
    let letter = tokio::time::timeout(Duration::from_secs(5), worker.next_dead())
        .await
        .expect("a dead letter within 5 s")
        .unwrap();
    assert_eq!(letter.outbox_id, t.outbox_ids[0]);
    assert!(letter.reason.contains("still failing"), "{}", letter.reason);
    assert!(letter.attempts >= 4, "{}", letter.attempts);
    // The last attempt was made at the deadline, not skipped.
    let gave_up = (letter.at - letter.queued_at).to_std().unwrap();
    assert!(gave_up >= Duration::from_secs(1), "{gave_up:?}");
    assert!(gave_up < Duration::from_millis(1_500), "{gave_up:?}");
    assert_eq!(recv.seen().len() as i64, letter.attempts);
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_keeps_revisions_in_order_per_endpoint_and_endpoints_independent() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    // "slow" fails twice before it accepts anything; "fast" accepts at once.
    let slow = Receiver::start(
        &[Reply::Status(500, "down"), Reply::Status(500, "down")],
        Reply::Ok,
    )
    .await;
    let fast = Receiver::start(&[], Reply::Ok).await;
    let worker = start_worker(
        &store,
        delivery(vec![webhook("slow", &slow), webhook("fast", &fast)]),
    );
    let both = [(Channel::Webhook, "slow"), (Channel::Webhook, "fast")];
    // Three revisions in quick succession: open, closed, reopened.
    let r1 = save(&store, "flap", TicketState::Open, &both).await;
    let r2 = save(&store, "flap", TicketState::Closed, &both).await;
    let mut reopened = payload("flap", TicketState::Open);
    reopened.title.push_str(" (again)");
    let r3 = store
        .save_ticket(TicketWrite {
            key: "flap".into(),
            kind: "repair".into(),
            state: TicketState::Open,
            priority: "P1".into(),
            site_id: "SITE-1".into(),
            customer_id: "C-42".into(),
            title: "ticket flap (again)".into(),
            body_json: reopened.to_json(),
            event_id: None,
            opened_at: None,
            closed_at: None,
            duration_s: None,
            deliver_to: both
                .iter()
                .map(|(c, e)| DeliverTo {
                    channel: *c,
                    endpoint: e.to_string(),
                    payload_json: reopened.to_json(),
                })
                .collect(),
        })
        .await
        .unwrap();
    assert_eq!((r1.revision, r2.revision, r3.revision), (1, 2, 3));
    for id in r3.outbox_ids {
        wait_state(&store, id, OutboxState::Delivered, 10.0).await;
    }

    // Every request to each endpoint carries a revision no lower than the one before: a later
    // revision never overtook an earlier one, even while the earlier one was being retried.
    for (name, recv) in [("slow", &slow), ("fast", &fast)] {
        let revs: Vec<i64> = recv.seen().iter().map(Seen::revision).collect();
        assert!(revs.windows(2).all(|w| w[0] <= w[1]), "{name}: {revs:?}");
        let accepted: Vec<i64> = recv
            .seen()
            .iter()
            .filter(|s| s.reply == Reply::Ok)
            .map(Seen::revision)
            .collect();
        assert_eq!(accepted, [1, 2, 3], "{name}");
        for s in recv.seen() {
            assert_eq!(
                s.header("Idempotency-Key"),
                format!("flap:{}", s.revision())
            );
        }
    }
    assert_eq!(
        slow.seen().iter().map(Seen::revision).collect::<Vec<_>>(),
        [1, 1, 1, 2, 3]
    );
    // The failing endpoint did not hold the other one up.
    let fast_done = fast.seen().last().unwrap().at;
    let slow_first_ok = slow
        .seen()
        .iter()
        .find(|s| s.reply == Reply::Ok)
        .unwrap()
        .at;
    assert!(fast_done < slow_first_ok);
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_resumes_after_a_restart_with_the_same_idempotency_key() {
    let dir = tempfile::tempdir().unwrap();
    let recv = Receiver::start(&[], Reply::Status(503, "down")).await;
    let cfg = delivery(vec![webhook("desk", &recv)]);
    let (outbox_id, first_body) = {
        let store = open_store(&dir);
        let worker = start_worker(&store, cfg.clone());
        let t = save(
            &store,
            "restart",
            TicketState::Open,
            &[(Channel::Webhook, "desk")],
        )
        .await;
        recv.wait_requests(2, 5.0).await;
        worker.shutdown().await;
        store.close().await;
        (t.outbox_ids[0], recv.seen()[0].body.clone())
    };
    // A new process: the store reopened from the file, a new worker.
    recv.set(Reply::Ok);
    let store = open_store(&dir);
    let worker = start_worker(&store, cfg);
    let row = wait_state(&store, outbox_id, OutboxState::Delivered, 10.0).await;
    let seen = recv.seen();
    assert!(seen.len() >= 3);
    assert!(seen
        .iter()
        .all(|s| s.header("Idempotency-Key") == "restart:1"));
    assert!(seen.iter().all(|s| s.body == first_body));
    assert!(seen.iter().all(signature_ok));
    assert_eq!(row.attempts as usize, seen.len());
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_sms_gateway_gets_a_short_text_through_its_templates() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let gw = Receiver::start(&[Reply::Status(500, "busy")], Reply::Ok).await;
    let get = EndpointConfig::Sms(SmsConfig {
        name: "sms-get".into(),
        url: gw.url("/send?to={to}&text={text}&user=kare"),
        method: HttpMethod::Get,
        body: None,
        content_type: None,
        to: vec!["+8613800000000".into(), "+8613900000000".into()],
        to_separator: ",".into(),
        max_chars: 140,
        headers: Default::default(),
        timeout_s: 2.0,
    });
    let post = EndpointConfig::Sms(SmsConfig {
        name: "sms-post".into(),
        url: gw.url("/api/sms"),
        method: HttpMethod::Post,
        body: Some(r#"{"to":"{to}","text":"{text}"}"#.into()),
        content_type: Some("application/json".into()),
        to: vec!["+8613800000000".into()],
        to_separator: ",".into(),
        max_chars: 70,
        headers: [("X-Api-Key".to_string(), "k-123".to_string())].into(),
        timeout_s: 2.0,
    });
    let worker = start_worker(&store, delivery(vec![get, post]));
    let t = save(
        &store,
        "sms-ticket",
        TicketState::Open,
        &[(Channel::Sms, "sms-get"), (Channel::Sms, "sms-post")],
    )
    .await;
    for id in &t.outbox_ids {
        wait_state(&store, *id, OutboxState::Delivered, 10.0).await;
    }
    let seen: Vec<Seen> = gw
        .seen()
        .into_iter()
        .filter(|s| s.reply == Reply::Ok)
        .collect();
    let g = seen.iter().find(|s| s.method == Method::GET).unwrap();
    let q: std::collections::HashMap<String, String> =
        url_pairs(g.uri.query().unwrap()).into_iter().collect();
    assert_eq!(g.uri.path(), "/send");
    assert_eq!(q["to"], "+8613800000000,+8613900000000");
    assert_eq!(q["user"], "kare");
    let text = &q["text"];
    assert!(text.chars().count() <= 140, "{text}");
    assert!(
        text.starts_with("kare P1 REPAIR OPEN SITE-1: Supply lost"),
        "{text}"
    );
    assert!(text.ends_with(" r1"), "{text}");

    let p = seen.iter().find(|s| s.method == Method::POST).unwrap();
    assert_eq!(p.uri.path(), "/api/sms");
    assert_eq!(p.header("X-Api-Key"), "k-123");
    assert_eq!(p.header("Idempotency-Key"), "sms-ticket:1");
    let body = p.json();
    assert_eq!(body["to"], "+8613800000000");
    let text = body["text"].as_str().unwrap();
    assert!(text.chars().count() <= 70 && text.contains('…'), "{text}");
    worker.shutdown().await;
}

/// Decodes `a=b&c=d` with percent-escapes.
fn url_pairs(q: &str) -> Vec<(String, String)> {
    fn dec(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() + 1 {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(if b[i] == b'+' { b' ' } else { b[i] });
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (dec(k), dec(v)))
        .collect()
}
