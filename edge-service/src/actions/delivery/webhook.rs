//! The HTTP webhook channel: POST the ticket JSON, signed (docs/webhook.md).

use super::config::WebhookConfig;
use super::SendResult;
use crate::store::OutboxRow;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use reqwest::{Client, StatusCode};
use sha2::Sha256;
use std::time::Duration;

/// Header carrying `<ticket key>:<revision>`.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// Header carrying `sha256=<hex>`.
pub const SIGNATURE: &str = "X-Kare-Signature";
/// Header carrying the Unix time of the attempt, seconds.
pub const TIMESTAMP: &str = "X-Kare-Timestamp";

/// The signature header value for one request: `sha256=` and the lowercase hex HMAC-SHA256,
/// keyed with the endpoint's secret, of the timestamp header's value, a `.`, and the body
/// bytes. Binding the time stamp in lets a receiver refuse a replayed old request.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a signature header in constant time (what a receiver written in Rust does).
pub fn verify(secret: &[u8], timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// A configured webhook endpoint.
#[derive(Clone, Debug)]
pub struct WebhookSender {
    client: Client,
    cfg: WebhookConfig,
    extra: HeaderMap,
}

/// An HTTP client for kare's channels: no redirects (a POST silently turned into a GET would
/// lose the ticket), a whole-request timeout, and rustls with the system's roots.
pub(crate) fn http_client(timeout: Duration) -> Result<Client, String> {
    super::init_tls();
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("kare/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

pub(crate) fn header_map(
    h: &std::collections::BTreeMap<String, String>,
) -> Result<HeaderMap, String> {
    let mut m = HeaderMap::new();
    for (k, v) in h {
        let name =
            HeaderName::from_bytes(k.as_bytes()).map_err(|_| format!("bad header name `{k}`"))?;
        let value = HeaderValue::from_str(v).map_err(|_| format!("bad value for header `{k}`"))?;
        m.insert(name, value);
    }
    Ok(m)
}

impl WebhookSender {
    /// Builds the client for one endpoint.
    pub fn new(cfg: &WebhookConfig) -> Result<WebhookSender, String> {
        Ok(WebhookSender {
            client: http_client(Duration::from_secs_f64(cfg.timeout_s))?,
            extra: header_map(&cfg.headers)?,
            cfg: cfg.clone(),
        })
    }

    /// POSTs the row's payload, exactly as stored, with the idempotency key and a fresh
    /// timestamp and signature.
    pub async fn send(&self, row: &OutboxRow) -> SendResult {
        // As stored, not re-serialised: the signed bytes are the same on every attempt.
        let body = row.payload_text.clone().into_bytes();
        let ts = chrono::Utc::now().timestamp().to_string();
        let sig = sign(self.cfg.secret.as_bytes(), &ts, &body);
        let req = self
            .client
            .post(&self.cfg.url)
            .headers(self.extra.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_KEY, &row.idempotency_key)
            .header(TIMESTAMP, &ts)
            .header(SIGNATURE, sig)
            .body(body);
        classify_http(req.send().await, self.cfg.timeout_s).await
    }
}

/// Turns an HTTP outcome into a [`SendResult`]: 2xx delivered; 408, 429 and 5xx retried (with
/// the server's `Retry-After` in seconds, if any); 3xx and other 4xx refused for good (the
/// request itself is wrong: resending it cannot help); network failures and timeouts retried.
pub(crate) async fn classify_http(
    r: Result<reqwest::Response, reqwest::Error>,
    timeout_s: f64,
) -> SendResult {
    let resp = match r {
        Ok(resp) => resp,
        Err(e) if e.is_timeout() => {
            return SendResult::Retry {
                detail: format!("no answer within {timeout_s} s"),
                retry_after: None,
            }
        }
        Err(e) if e.is_builder() => return SendResult::Permanent(format!("bad request: {e}")),
        Err(e) => {
            return SendResult::Retry {
                detail: format!("cannot reach the endpoint: {}", error_chain(&e)),
                retry_after: None,
            }
        }
    };
    let status = resp.status();
    let reason = format!(
        "HTTP {} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .trim_end()
    .to_string();
    if status.is_success() {
        return SendResult::Delivered(reason);
    }
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let location = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // The receiver's own words, briefly: what a person needs to fix a refusal.
    let text = resp.text().await.unwrap_or_default();
    let text = super::payload::truncate_chars(text.trim(), 300);
    let detail = if text.is_empty() {
        reason
    } else {
        format!("{reason}: {text}")
    };
    if status.is_redirection() {
        return SendResult::Permanent(format!(
            "{detail} (redirect to {}; set the endpoint's url to the final address)",
            location.as_deref().unwrap_or("?")
        ));
    }
    if status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
    {
        return SendResult::Retry {
            detail,
            retry_after,
        };
    }
    if status.is_client_error() {
        return SendResult::Permanent(detail);
    }
    SendResult::Retry {
        detail,
        retry_after,
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_signature_is_hmac_of_timestamp_dot_body() {
        // RFC 4231-style check against an independently computed value:
        // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac 'secret-secret-secret'
        let s = sign(b"secret-secret-secret", "1700000000", br#"{"a":1}"#);
        assert_eq!(
            s,
            "sha256=fa345d5b654e6667128855e14a4938c54b5b813699e6b72c5c4f501aa493ba92"
        );
        assert!(verify(
            b"secret-secret-secret",
            "1700000000",
            br#"{"a":1}"#,
            &s
        ));
        assert!(!verify(
            b"secret-secret-secret",
            "1700000001",
            br#"{"a":1}"#,
            &s
        ));
        assert!(!verify(
            b"other-secret-secret!",
            "1700000000",
            br#"{"a":1}"#,
            &s
        ));
        assert!(!verify(
            b"secret-secret-secret",
            "1700000000",
            br#"{"a":2}"#,
            &s
        ));
    }
}
