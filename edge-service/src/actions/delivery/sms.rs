//! The SMS channel: one HTTP request to a gateway, built from templates in the configuration.

use super::config::{HttpMethod, SmsConfig};
use super::payload::TicketPayload;
use super::webhook::{classify_http, header_map, http_client};
use super::SendResult;
use crate::store::OutboxRow;
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::Client;
use std::time::Duration;

/// Percent-encodes everything but RFC 3986's unreserved characters (UTF-8 bytes).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The inside of a JSON string literal for `s` (no surrounding quotes).
fn json_escape(s: &str) -> String {
    let q = serde_json::to_string(s).unwrap_or_default();
    q[1..q.len() - 1].to_string()
}

/// Fills `{to}` and `{text}` in a template, escaping each value with `esc`.
pub fn fill(template: &str, to: &str, text: &str, esc: impl Fn(&str) -> String) -> String {
    // Both placeholders are replaced in one pass, so a `{text}` inside a number (or `{to}`
    // inside the text) is never expanded a second time.
    let mut out = String::with_capacity(template.len() + text.len() * 3);
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let r = &rest[i..];
        if let Some(after) = r.strip_prefix("{to}") {
            out.push_str(&esc(to));
            rest = after;
        } else if let Some(after) = r.strip_prefix("{text}") {
            out.push_str(&esc(text));
            rest = after;
        } else {
            out.push('{');
            rest = &r[1..];
        }
    }
    out.push_str(rest);
    out
}

/// A configured SMS gateway.
#[derive(Clone, Debug)]
pub struct SmsSender {
    client: Client,
    cfg: SmsConfig,
    extra: HeaderMap,
}

impl SmsSender {
    /// Builds the client for one gateway.
    pub fn new(cfg: &SmsConfig) -> Result<SmsSender, String> {
        Ok(SmsSender {
            client: http_client(Duration::from_secs_f64(cfg.timeout_s))?,
            extra: header_map(&cfg.headers)?,
            cfg: cfg.clone(),
        })
    }

    /// The text sent for a row.
    pub fn text(&self, row: &OutboxRow) -> Result<String, String> {
        Ok(TicketPayload::from_json(&row.payload_json)?.sms_text(self.cfg.max_chars))
    }

    /// Sends a row: success and retry rules as for webhooks.
    pub async fn send(&self, row: &OutboxRow) -> SendResult {
        let text = match self.text(row) {
            Ok(t) => t,
            Err(e) => return SendResult::Permanent(e),
        };
        let to = self.cfg.to.join(&self.cfg.to_separator);
        let url = fill(&self.cfg.url, &to, &text, percent_encode);
        let req = match self.cfg.method {
            HttpMethod::Get => self.client.get(&url),
            HttpMethod::Post => {
                let ct = self
                    .cfg
                    .content_type
                    .clone()
                    .unwrap_or_else(|| "application/x-www-form-urlencoded".into());
                let body = match &self.cfg.body {
                    None => String::new(),
                    Some(t) if ct.contains("json") => fill(t, &to, &text, json_escape),
                    Some(t) if ct.contains("x-www-form-urlencoded") => {
                        fill(t, &to, &text, percent_encode)
                    }
                    Some(t) => fill(t, &to, &text, str::to_string),
                };
                self.client.post(&url).header(CONTENT_TYPE, ct).body(body)
            }
        };
        let req = req
            .headers(self.extra.clone())
            .header(super::webhook::IDEMPOTENCY_KEY, &row.idempotency_key);
        classify_http(req.send().await, self.cfg.timeout_s).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_sms_templates_escape_once() {
        let u = fill(
            "https://gw/send?to={to}&text={text}&x={y}",
            "+86 1,+86 2",
            "a&b {to} é",
            percent_encode,
        );
        assert_eq!(
            u,
            "https://gw/send?to=%2B86%201%2C%2B86%202&text=a%26b%20%7Bto%7D%20%C3%A9&x={y}"
        );
        let j = fill(
            r#"{"to":"{to}","text":"{text}"}"#,
            "1",
            "say \"hi\"",
            json_escape,
        );
        assert_eq!(j, r#"{"to":"1","text":"say \"hi\""}"#);
    }
}
