//! Delivery of tickets: the outbox worker and its channels (webhook, e-mail, SMS).
//!
//! The store holds the outbox: one row per ticket revision per endpoint, written in the same
//! transaction as the ticket, with everything needed to send it (payload, endpoint name,
//! idempotency key). [`run_outbox`] sends what is due and records every attempt, so delivery
//! is **at-least-once with a stable idempotency key** across retries and restarts: a crash
//! after a send but before its record means one more send with the same key, which the
//! receiver deduplicates (docs/webhook.md).
//!
//! Order: for one ticket and one endpoint, revision N+1 is not sent before revision N is
//! delivered or given up (the store only offers the earliest pending revision). Different
//! endpoints, and different tickets, proceed independently and concurrently.
//!
//! Failures: a permanent refusal (HTTP 4xx other than 408/429, a 3xx, SMTP 5xx, a payload or
//! configuration that cannot work) makes the row a dead letter at once; anything else is
//! retried with exponential backoff and jitter until `max_age`, then the row is a dead letter.
//! Each dead letter is reported on a channel, for the rules to raise a maintenance ticket.

pub mod config;
pub mod email;
pub mod memory;
pub mod payload;
pub mod sms;
pub mod webhook;

pub use config::{ConfigProblem, DeliveryConfig, EndpointConfig};
pub use payload::TicketPayload;

use crate::store::{Attempt, AttemptOutcome, Channel, OutboxRow, StoreHandle};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Once};
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Installs rustls' `ring` provider as the process default (once). reqwest is built without a
/// provider of its own (no C library beyond `ring`), so anything building a `reqwest::Client`
/// must call this first, or reqwest panics.
pub fn init_tls() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means another provider was installed first: that one is used, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// What one attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendResult {
    /// Accepted; the detail says by whom and how (`HTTP 200 OK`, `SMTP 250 queued as ...`).
    Delivered(String),
    /// Failed in a way that may pass: try again later.
    Retry {
        /// What went wrong.
        detail: String,
        /// The receiver's `Retry-After`, if it gave one.
        retry_after: Option<Duration>,
    },
    /// Refused in a way that resending cannot fix.
    Permanent(String),
}

/// What the outbox worker tells the service besides what it records in the store.
#[derive(Clone, Debug, PartialEq)]
pub enum DeliveryNews {
    /// A message given up on: the rules raise a maintenance ticket about its endpoint.
    Dead(DeadLetter),
    /// An endpoint accepted a message, the first since the worker started or since the endpoint
    /// last dead-lettered one: a maintenance ticket about that endpoint can close. (Sent once per
    /// endpoint and start, so a ticket restored after a restart ends too.)
    Recovered {
        /// Endpoint name.
        endpoint: String,
        /// When it accepted.
        at: DateTime<Utc>,
    },
}

/// A message given up on. The rules turn it into a maintenance ticket (better delivered on
/// another endpoint than the one that is failing).
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetter {
    /// Outbox row.
    pub outbox_id: i64,
    /// Ticket row.
    pub ticket_id: i64,
    /// The ticket's idempotency key.
    pub ticket_key: String,
    /// The ticket's kind.
    pub ticket_kind: String,
    /// Revision that was not delivered.
    pub revision: i64,
    /// Channel.
    pub channel: Channel,
    /// Endpoint name.
    pub endpoint: String,
    /// Why it was given up, with the last failure.
    pub reason: String,
    /// Attempts made.
    pub attempts: i64,
    /// When it was queued.
    pub queued_at: DateTime<Utc>,
    /// When it was given up.
    pub at: DateTime<Utc>,
}

/// One endpoint, ready to send.
#[derive(Clone, Debug)]
pub enum Sender {
    /// Webhook.
    Webhook(webhook::WebhookSender),
    /// E-mail.
    Email(email::EmailSender),
    /// SMS gateway.
    Sms(sms::SmsSender),
}

impl Sender {
    /// Builds the sender for one endpoint.
    pub fn new(cfg: &EndpointConfig) -> Result<Sender, String> {
        Ok(match cfg {
            EndpointConfig::Webhook(c) => Sender::Webhook(webhook::WebhookSender::new(c)?),
            EndpointConfig::Email(c) => Sender::Email(email::EmailSender::new(c)?),
            EndpointConfig::Sms(c) => Sender::Sms(sms::SmsSender::new(c)?),
        })
    }

    /// The channel.
    pub fn channel(&self) -> Channel {
        match self {
            Sender::Webhook(_) => Channel::Webhook,
            Sender::Email(_) => Channel::Email,
            Sender::Sms(_) => Channel::Sms,
        }
    }

    /// Makes one attempt (also what a commissioning "send a test ticket" calls).
    pub async fn send(&self, row: &OutboxRow) -> SendResult {
        match self {
            Sender::Webhook(s) => s.send(row).await,
            Sender::Email(s) => s.send(row).await,
            Sender::Sms(s) => s.send(row).await,
        }
    }
}

/// Every configured endpoint by name; one that could not be built keeps the reason.
#[derive(Debug)]
pub struct Senders {
    by_name: HashMap<String, Result<Sender, String>>,
}

impl Senders {
    /// Builds a sender for every endpoint.
    pub fn build(cfg: &DeliveryConfig) -> Senders {
        Senders {
            by_name: cfg
                .endpoint
                .iter()
                .map(|e| (e.name().to_string(), Sender::new(e)))
                .collect(),
        }
    }

    /// Sends a row to its endpoint. Rows for an endpoint that is not configured (any more), or
    /// on a channel other than the endpoint's, are refused for good: the configuration says
    /// they cannot be delivered, and a dead letter says so to a person.
    pub async fn send(&self, row: &OutboxRow) -> SendResult {
        match self.by_name.get(&row.endpoint) {
            None => SendResult::Permanent(format!(
                "no endpoint named `{}` in [delivery]",
                row.endpoint
            )),
            Some(Err(e)) => SendResult::Permanent(format!("endpoint `{}`: {e}", row.endpoint)),
            Some(Ok(s)) if s.channel() != row.channel => SendResult::Permanent(format!(
                "endpoint `{}` is {}, the message was queued for {}",
                row.endpoint,
                s.channel(),
                row.channel
            )),
            Some(Ok(s)) => s.send(row).await,
        }
    }
}

/// Delay before the next attempt after `failures` failures (1 = the first failure):
/// `base × 2^(failures−1)`, capped at `max`, spread by ± `jitter`, never below a server's
/// `Retry-After` (itself capped at `max`).
pub fn backoff(cfg: &DeliveryConfig, failures: i64, retry_after: Option<Duration>) -> Duration {
    let exp = (failures.max(1) - 1).min(62) as i32;
    let max = cfg.backoff_max_s.max(0.0);
    let d = (cfg.backoff_base_s.max(0.0) * 2f64.powi(exp)).min(max);
    let j = cfg.jitter.clamp(0.0, 1.0);
    let d = (d * (1.0 + j * (2.0 * fastrand::f64() - 1.0))).clamp(0.0, max.max(d));
    let floor = retry_after.map_or(0.0, |r| r.as_secs_f64().min(max));
    Duration::from_secs_f64(d.max(floor))
}

/// What follows a send result for a row, as of `now`.
pub fn next_step(
    cfg: &DeliveryConfig,
    row: &OutboxRow,
    result: &SendResult,
    now: DateTime<Utc>,
) -> (AttemptOutcome, String) {
    match result {
        SendResult::Delivered(d) => (AttemptOutcome::Delivered, d.clone()),
        SendResult::Permanent(d) => (AttemptOutcome::Dead, format!("refused for good: {d}")),
        SendResult::Retry {
            detail,
            retry_after,
        } => {
            let max_age =
                chrono::Duration::from_std(cfg.max_age()).unwrap_or(chrono::Duration::MAX);
            let deadline = row
                .created_at
                .checked_add_signed(max_age)
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            if now >= deadline {
                return (
                    AttemptOutcome::Dead,
                    format!(
                        "still failing {} s after it was queued: {detail}",
                        cfg.max_age_s
                    ),
                );
            }
            let delay = backoff(cfg, row.attempts + 1, *retry_after);
            let at = now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
            // One last attempt right at the deadline rather than none after it.
            (AttemptOutcome::RetryAt(at.min(deadline)), detail.clone())
        }
    }
}

/// How long to wait before reading the outbox again when nothing wakes the worker sooner.
const IDLE_POLL: Duration = Duration::from_secs(30);

/// The outbox worker: sends due rows until `shutdown` is cancelled.
///
/// Woken by new rows ([`StoreHandle::outbox_changed`]), by the next due time, and by finished
/// sends. Each row is sent by its own task (at most `concurrency` at once per endpoint,
/// `max_in_flight` in all); the row stays out of the next reads until its attempt is recorded,
/// and the store offers only the earliest pending revision per ticket and endpoint, which
/// together keep revisions in order. Every attempt is recorded; a dead letter, and an endpoint
/// that accepts again, are also told on `news`. At shutdown, sends in flight get `shutdown_grace_s` to finish; any cut short stays
/// pending and is sent again after the restart with the same idempotency key.
pub async fn run_outbox(
    store: StoreHandle,
    cfg: DeliveryConfig,
    shutdown: CancellationToken,
    news: mpsc::Sender<DeliveryNews>,
) {
    let senders = Arc::new(Senders::build(&cfg));
    // Endpoints not yet seen accepting since start or since their last dead letter.
    let unproven: Arc<std::sync::Mutex<HashSet<String>>> = Arc::new(std::sync::Mutex::new(
        cfg.endpoint.iter().map(|e| e.name().to_string()).collect(),
    ));
    for (name, s) in &senders.by_name {
        if let Err(e) = s {
            tracing::error!("delivery endpoint `{name}`: {e}; its messages will be dead letters");
        }
    }
    let cfg = Arc::new(cfg);
    let limits: HashMap<String, Arc<Semaphore>> = cfg
        .endpoint
        .iter()
        .map(|e| {
            (
                e.name().to_string(),
                Arc::new(Semaphore::new(cfg.concurrency.max(1))),
            )
        })
        .collect();
    let unknown_limit = Arc::new(Semaphore::new(1));
    // Rows being sent, and rows whose attempt could not be recorded (held back until the
    // instant given, so a failing store does not turn into a resend loop).
    let mut busy: HashMap<i64, Option<Instant>> = HashMap::new();
    let mut tasks: JoinSet<(i64, bool)> = JoinSet::new();
    let mut task_rows: HashMap<tokio::task::Id, i64> = HashMap::new();
    let cap = cfg.max_in_flight.max(1);

    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let now_i = Instant::now();
        busy.retain(|_, held| held.is_none_or(|until| until > now_i));
        let mut wait = IDLE_POLL;
        let in_flight = tasks.len();
        if in_flight < cap {
            let exclude: Vec<i64> = busy.keys().copied().collect();
            match store
                .outbox_due_excluding(Utc::now(), cap - in_flight, exclude.clone())
                .await
            {
                Ok(rows) => {
                    for row in rows {
                        busy.insert(row.id, None);
                        let limit = limits.get(&row.endpoint).unwrap_or(&unknown_limit).clone();
                        let h = tasks.spawn(deliver_one(
                            store.clone(),
                            senders.clone(),
                            cfg.clone(),
                            limit,
                            row.clone(),
                            news.clone(),
                            unproven.clone(),
                        ));
                        task_rows.insert(h.id(), row.id);
                    }
                    let exclude: Vec<i64> = busy.keys().copied().collect();
                    match store.outbox_next_due(exclude).await {
                        Ok(Some(t)) => {
                            wait = (t - Utc::now())
                                .to_std()
                                .unwrap_or(Duration::ZERO)
                                .min(IDLE_POLL);
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!("outbox: {e}");
                            wait = Duration::from_secs(1);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!("outbox: {e}");
                    wait = Duration::from_secs(1);
                }
            }
            // Rows held back after a failed record come back when their hold ends.
            if let Some(until) = busy.values().flatten().min() {
                wait = wait.min(until.saturating_duration_since(Instant::now()));
            }
        }
        if tasks.len() >= cap {
            // Full: only a finished send (or shutdown) makes room.
            wait = IDLE_POLL;
        }
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = store.outbox_changed() => {}
            Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                let (id, recorded) = match done {
                    Ok((task, (row, recorded))) => { task_rows.remove(&task); (Some(row), recorded) }
                    Err(e) => {
                        tracing::error!("outbox: a send task failed: {e}");
                        (task_rows.remove(&e.id()), false)
                    }
                };
                if let Some(id) = id {
                    if recorded {
                        busy.remove(&id);
                    } else {
                        let hold = Duration::from_secs_f64(cfg.backoff_base_s.max(1.0));
                        busy.insert(id, Some(Instant::now() + hold));
                    }
                }
            }
            _ = tokio::time::sleep(wait) => {}
        }
    }

    let grace = Duration::from_secs_f64(cfg.shutdown_grace_s.max(0.0));
    let drained =
        tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::info!(
            "outbox: {} sends cut short at shutdown; they are resent after the restart",
            tasks.len()
        );
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
}

/// Sends one row and records the attempt. Returns the row id and whether the record committed.
async fn deliver_one(
    store: StoreHandle,
    senders: Arc<Senders>,
    cfg: Arc<DeliveryConfig>,
    limit: Arc<Semaphore>,
    row: OutboxRow,
    news: mpsc::Sender<DeliveryNews>,
    unproven: Arc<std::sync::Mutex<HashSet<String>>>,
) -> (i64, bool) {
    let _permit = limit.acquire_owned().await;
    let started = Instant::now();
    let result = senders.send(&row).await;
    let latency = started.elapsed();
    let now = Utc::now();
    let (outcome, detail) = next_step(&cfg, &row, &result, now);
    match &outcome {
        AttemptOutcome::Delivered => {
            tracing::info!(
                endpoint = row.endpoint,
                key = row.idempotency_key,
                "delivered: {detail}"
            )
        }
        AttemptOutcome::RetryAt(t) => tracing::info!(
            endpoint = row.endpoint,
            key = row.idempotency_key,
            "not delivered ({detail}); next attempt at {t}"
        ),
        AttemptOutcome::Dead => tracing::warn!(
            endpoint = row.endpoint,
            key = row.idempotency_key,
            "dead letter: {detail}"
        ),
    }
    let recorded = store
        .record_attempt(Attempt {
            outbox_id: row.id,
            at: now,
            detail: detail.clone(),
            latency,
            outcome,
        })
        .await;
    if let Err(e) = &recorded {
        // The row stays pending in the store and is sent again later: at-least-once.
        tracing::warn!(
            "outbox: cannot record the attempt for {}: {e}",
            row.idempotency_key
        );
        return (row.id, false);
    }
    if outcome == AttemptOutcome::Dead {
        let letter = DeadLetter {
            outbox_id: row.id,
            ticket_id: row.ticket_id,
            ticket_key: row.ticket_key.clone(),
            ticket_kind: row.ticket_kind.clone(),
            revision: row.revision,
            channel: row.channel,
            endpoint: row.endpoint.clone(),
            reason: detail,
            attempts: row.attempts + 1,
            queued_at: row.created_at,
            at: now,
        };
        unproven
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(row.endpoint.clone());
        // Durable already (the row is dead in the store, `dead_letters()` lists it); a closed
        // receiver only means nobody is listening.
        let _ = news.send(DeliveryNews::Dead(letter)).await;
    } else if outcome == AttemptOutcome::Delivered {
        let first = unproven
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&row.endpoint);
        if first {
            let _ = news
                .send(DeliveryNews::Recovered {
                    endpoint: row.endpoint.clone(),
                    at: now,
                })
                .await;
        }
    }
    (row.id, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::OutboxState;

    fn row(created_at: DateTime<Utc>, attempts: i64) -> OutboxRow {
        OutboxRow {
            id: 1,
            ticket_id: 1,
            ticket_key: "k".into(),
            ticket_kind: "repair".into(),
            revision: 1,
            channel: Channel::Webhook,
            endpoint: "desk".into(),
            payload_json: serde_json::json!({}),
            payload_text: "{}".into(),
            idempotency_key: "k:1".into(),
            created_at,
            next_attempt_at: created_at,
            attempts,
            state: OutboxState::Pending,
            last_error: None,
            delivered_at: None,
        }
    }

    #[test]
    fn delivery_backoff_doubles_within_jitter_and_caps() {
        let cfg = DeliveryConfig::default(); // 5 s base, 600 s max, ± 20 %
        for n in 1..=12 {
            let nominal = (5.0 * 2f64.powi(n as i32 - 1)).min(600.0);
            for _ in 0..50 {
                let d = backoff(&cfg, n, None).as_secs_f64();
                assert!(
                    d >= nominal * 0.8 - 1e-9 && d <= (nominal * 1.2).min(600.0) + 1e-9,
                    "{n}: {d}"
                );
            }
        }
        // Retry-After is a floor, itself capped.
        assert!(backoff(&cfg, 1, Some(Duration::from_secs(120))) >= Duration::from_secs(120));
        assert!(backoff(&cfg, 1, Some(Duration::from_secs(86_400))) <= Duration::from_secs(600));
        assert!(backoff(&cfg, i64::MAX, None) <= Duration::from_secs(600));
    }

    #[test]
    fn delivery_next_step_retries_until_max_age_then_gives_up() {
        let cfg = DeliveryConfig::default();
        let t0 = Utc::now();
        let fail = SendResult::Retry {
            detail: "HTTP 503".into(),
            retry_after: None,
        };
        let (o, d) = next_step(&cfg, &row(t0, 0), &fail, t0);
        assert!(
            matches!(o, AttemptOutcome::RetryAt(t) if t > t0 && t <= t0 + chrono::Duration::seconds(7))
        );
        assert_eq!(d, "HTTP 503");
        // Near the deadline the retry is pulled in to it; at the deadline the row is dead.
        let deadline = t0 + chrono::Duration::seconds(86_400);
        let near = deadline - chrono::Duration::seconds(1);
        assert_eq!(
            next_step(&cfg, &row(t0, 30), &fail, near).0,
            AttemptOutcome::RetryAt(deadline)
        );
        let (o, d) = next_step(&cfg, &row(t0, 31), &fail, deadline);
        assert_eq!(o, AttemptOutcome::Dead);
        assert!(d.contains("still failing") && d.contains("HTTP 503"), "{d}");
        let (o, d) = next_step(
            &cfg,
            &row(t0, 0),
            &SendResult::Permanent("HTTP 404".into()),
            t0,
        );
        assert_eq!(o, AttemptOutcome::Dead);
        assert!(d.contains("HTTP 404"));
        assert_eq!(
            next_step(
                &cfg,
                &row(t0, 0),
                &SendResult::Delivered("HTTP 200".into()),
                t0
            )
            .0,
            AttemptOutcome::Delivered
        );
    }
}
