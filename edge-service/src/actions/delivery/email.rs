//! The e-mail channel: a plain-text summary of the ticket over SMTP (lettre).
//!
//! The Message-ID is derived from the idempotency key (`<kare.KEY.rREV@domain>`), so a message
//! resent after a failure or a restart carries the same id and a mail system or a person can
//! recognise the duplicate; revisions after the first refer to the first (`In-Reply-To`,
//! `References`), so a mail client threads one ticket's messages together.

use super::config::{EmailConfig, SmtpTls};
use super::payload::TicketPayload;
use super::SendResult;
use crate::store::OutboxRow;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// `kare.<key>.r<revision>`, with every byte of the key other than ASCII letters, digits, `-`
/// and `_` percent-encoded, so that any key gives a valid, unique message id local part.
pub fn message_id_local(key: &str, revision: i64) -> String {
    let mut s = String::from("kare.");
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s.push_str(&format!(".r{revision}"));
    s
}

/// The full Message-ID, with angle brackets.
pub fn message_id(key: &str, revision: i64, domain: &str) -> String {
    format!("<{}@{}>", message_id_local(key, revision), domain)
}

/// A configured SMTP endpoint.
#[derive(Clone)]
pub struct EmailSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    domain: String,
}

impl std::fmt::Debug for EmailSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSender")
            .field("from", &self.from)
            .field("to", &self.to)
            .finish()
    }
}

impl EmailSender {
    /// Builds the SMTP transport for one endpoint (connections are made when sending).
    pub fn new(cfg: &EmailConfig) -> Result<EmailSender, String> {
        super::init_tls();
        let from: Mailbox = cfg
            .from
            .parse()
            .map_err(|e| format!("bad `from` address `{}`: {e}", cfg.from))?;
        let to = cfg
            .to
            .iter()
            .map(|t| {
                t.parse()
                    .map_err(|e| format!("bad `to` address `{t}`: {e}"))
            })
            .collect::<Result<Vec<Mailbox>, String>>()?;
        let tls = match cfg.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls | SmtpTls::Tls => {
                let p = TlsParameters::new(cfg.smtp_host.clone())
                    .map_err(|e| format!("TLS set-up for {}: {e}", cfg.smtp_host))?;
                if cfg.tls == SmtpTls::Tls {
                    Tls::Wrapper(p)
                } else {
                    Tls::Required(p)
                }
            }
        };
        let port = cfg.smtp_port.unwrap_or(match cfg.tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        });
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(cfg.smtp_host.clone())
            .port(port)
            .tls(tls)
            .timeout(Some(Duration::from_secs_f64(cfg.timeout_s)));
        if let (Some(u), Some(p)) = (&cfg.username, &cfg.password) {
            b = b.credentials(Credentials::new(u.clone(), p.clone()));
        }
        let domain = cfg
            .message_id_domain
            .clone()
            .unwrap_or_else(|| from.email.domain().to_string());
        Ok(EmailSender {
            transport: b.build(),
            from,
            to,
            domain,
        })
    }

    /// Builds the message for a row.
    pub fn message(&self, row: &OutboxRow) -> Result<Message, String> {
        let p = TicketPayload::from_json(&row.payload_json)?;
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(p.email_subject())
            .message_id(Some(message_id(
                &row.ticket_key,
                row.revision,
                &self.domain,
            )))
            .header(ContentType::TEXT_PLAIN)
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("X-Kare-Idempotency-Key"),
                row.idempotency_key.clone(),
            ));
        for t in &self.to {
            b = b.to(t.clone());
        }
        if row.revision > 1 {
            let first = message_id(&row.ticket_key, 1, &self.domain);
            b = b.in_reply_to(first.clone()).references(first);
        }
        b.body(p.email_body(&row.idempotency_key))
            .map_err(|e| format!("cannot build the message: {e}"))
    }

    /// Sends a row. A 5xx reply is a permanent refusal, a 4xx reply or a network failure is
    /// retried.
    pub async fn send(&self, row: &OutboxRow) -> SendResult {
        let msg = match self.message(row) {
            Ok(m) => m,
            Err(e) => return SendResult::Permanent(e),
        };
        match self.transport.send(msg).await {
            Ok(resp) => SendResult::Delivered(format!(
                "SMTP {} {}",
                resp.code(),
                resp.message().collect::<Vec<_>>().join(" ")
            )),
            Err(e) if e.is_permanent() => SendResult::Permanent(format!("SMTP refused: {e}")),
            Err(e) => SendResult::Retry {
                detail: format!("SMTP: {e}"),
                retry_after: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_message_id_is_stable_valid_and_unique() {
        assert_eq!(
            message_id("SITE-1-outage-20261126T081500Z", 3, "utility.example"),
            "<kare.SITE-1-outage-20261126T081500Z.r3@utility.example>"
        );
        // Keys that differ only in characters a message id cannot hold stay apart.
        assert_ne!(message_id_local("a b", 1), message_id_local("a_b", 1));
        assert_eq!(message_id_local("a b<@>.", 1), "kare.a%20b%3C%40%3E%2E.r1");
    }
}
