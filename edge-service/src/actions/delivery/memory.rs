//! Delivery straight from memory, for the one message that cannot wait for the outbox: the alarm
//! that the store itself cannot write (issue 11). The outbox lives in the store, so a full disk
//! would silence the very ticket saying so; this path needs no disk at all.
//!
//! It uses the same channels (signed webhook, e-mail, SMS) and the same idempotency key
//! `<key>:<revision>` as the outbox, so when the store writes again and the outbox delivers the
//! same revision, the receiver deduplicates it (docs/webhook.md). A payload sent from memory
//! has `id` 0: it is not in the appliance's store yet. A few tries with a short pause, no more:
//! it is not durable, and the outbox takes over once the disk is back.

use super::{SendResult, Senders, TicketPayload};
use crate::store::{Channel, OutboxRow, OutboxState};
use chrono::Utc;
use std::time::Duration;

/// Attempts per endpoint.
pub const TRIES: u32 = 3;
/// Pause after the first failure; doubled after each further one.
pub const PAUSE: Duration = Duration::from_secs(1);

/// Sends `payload` (with its `key` and `revision` set) to every endpoint in `to`, each tried up
/// to [`TRIES`] times; returns what each came to (also logged).
pub async fn send_from_memory(
    senders: &Senders,
    to: &[(String, Channel)],
    payload: &TicketPayload,
) -> Vec<(String, SendResult)> {
    let json = payload.to_json();
    let text = json.to_string();
    let key = format!("{}:{}", payload.key, payload.revision);
    let mut out = Vec::new();
    for (endpoint, channel) in to {
        let now = Utc::now();
        let mut row = OutboxRow {
            id: 0,
            ticket_id: 0,
            ticket_key: payload.key.clone(),
            ticket_kind: payload.kind.clone(),
            revision: payload.revision,
            channel: *channel,
            endpoint: endpoint.clone(),
            payload_json: json.clone(),
            payload_text: text.clone(),
            idempotency_key: key.clone(),
            created_at: now,
            next_attempt_at: now,
            attempts: 0,
            state: OutboxState::Pending,
            last_error: None,
            delivered_at: None,
        };
        let mut pause = PAUSE;
        let result = loop {
            let r = senders.send(&row).await;
            row.attempts += 1;
            match &r {
                SendResult::Retry { detail, .. } if row.attempts < i64::from(TRIES) => {
                    tracing::warn!(
                        endpoint,
                        key,
                        "not delivered from memory ({detail}); again in {pause:?}"
                    );
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                _ => break r,
            }
        };
        match &result {
            SendResult::Delivered(d) => {
                tracing::info!(endpoint, key, "delivered from memory: {d}")
            }
            SendResult::Retry { detail, .. } | SendResult::Permanent(detail) => tracing::error!(
                endpoint,
                key,
                "NOT delivered from memory after {} tries: {detail}",
                row.attempts
            ),
        }
        out.push((endpoint.clone(), result));
    }
    out
}
