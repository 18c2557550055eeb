//! Step "Uplinks": does the outside world hear this appliance? Every delivery endpoint gets a
//! ticket of kind `test` (marked so in its title and detail, priority P4, never a repair ticket,
//! never written to the store's tickets) and the crew sees the answer: the HTTP status, the SMTP
//! reply. InfluxDB gets one point, read back.
//!
//! Test tickets go straight through the endpoint's sender, not the outbox: one attempt, now,
//! with the answer shown; a failure is the finding, not something to retry for a day.

use super::check::{Check, Status, Step};
use crate::actions::delivery::payload::{
    ApplianceInfo, CustomerInfo, SiteInfo, TicketPayload, SCHEMA,
};
use crate::actions::delivery::{EndpointConfig, SendResult, Sender};
use crate::config::Config;
use crate::sinks::influx::InfluxConfig;
use crate::store::TicketState;
use crate::store::{Channel, OutboxRow, OutboxState};
use crate::web::i18n::Lang;
use chrono::{DateTime, Utc};

/// `text` with the query string of every URL in it cut (`?access_token=…` → `?…`): chat-robot
/// webhooks carry their token there, and an error quoting the URL must not put it into the
/// signed record, the store or the desk's copy.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("http") {
        let (before, url) = rest.split_at(at);
        out.push_str(before);
        let end = url
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '"' | '\'' | '>' | ','))
            .unwrap_or(url.len());
        let (u, after) = url.split_at(end);
        match u.find('?') {
            Some(q) => {
                out.push_str(&u[..q]);
                out.push_str("?…");
            }
            None => out.push_str(u),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The ticket kind of a commissioning test.
pub const TEST_KIND: &str = "test";

/// The test ticket sent to every endpoint: clearly a test, from this site, by this crew.
pub fn test_payload(cfg: &Config, crew: &str, run_id: &str, now: DateTime<Utc>) -> TicketPayload {
    let site = cfg.site.as_ref();
    let id = site.map(|s| s.id.clone()).unwrap_or_default();
    TicketPayload {
        schema: SCHEMA.into(),
        id: 0,
        key: format!("{id}:test:{run_id}"),
        revision: 1,
        kind: TEST_KIND.into(),
        state: TicketState::Closed,
        priority: "P4".into(),
        title: format!(
            "TEST ONLY / 仅为测试: commissioning check of kare at {} by {crew}: no action needed",
            if id.is_empty() { "this site" } else { &id }
        ),
        opened_at: now,
        updated_at: now,
        closed_at: Some(now),
        duration_s: Some(0.0),
        classification: None,
        site: SiteInfo {
            id: id.clone(),
            address: site.map(|s| s.address.clone()).unwrap_or_default(),
            access_notes: String::new(),
            nominal_kv: site.and_then(|s| (s.nominal_kv > 0.0).then_some(s.nominal_kv)),
        },
        customer: CustomerInfo {
            id: site.map(|s| s.customer_id.clone()).unwrap_or_default(),
            name: site.map(|s| s.customer_name.clone()).unwrap_or_default(),
            ..Default::default()
        },
        event: None,
        generator: None,
        detail: serde_json::json!({ "test": true, "crew": crew, "commissioning_run": run_id }),
        appliance: ApplianceInfo {
            id,
            version: env!("CARGO_PKG_VERSION").into(),
        },
    }
}

/// The outbox row a sender takes, for a payload sent once.
pub fn test_row(
    endpoint: &EndpointConfig,
    payload: &TicketPayload,
    now: DateTime<Utc>,
) -> OutboxRow {
    let text = serde_json::to_string(payload).unwrap_or_default();
    OutboxRow {
        id: 0,
        ticket_id: 0,
        ticket_key: payload.key.clone(),
        ticket_kind: payload.kind.clone(),
        revision: 1,
        channel: endpoint.channel(),
        endpoint: endpoint.name().to_string(),
        payload_json: payload.to_json(),
        payload_text: text,
        idempotency_key: format!("{}:1", payload.key),
        created_at: now,
        next_attempt_at: now,
        attempts: 0,
        state: OutboxState::Pending,
        last_error: None,
        delivered_at: None,
    }
}

/// Which ticket kinds the configuration routes to `endpoint`.
fn routed_kinds(cfg: &Config, endpoint: &str) -> Vec<&'static str> {
    let r = &cfg.routes;
    [
        ("repair", &r.repair),
        ("generator", &r.generator),
        ("planned", &r.planned),
        ("pq_notice", &r.pq_notice),
        ("engineering", &r.engineering),
        ("maintenance", &r.maintenance),
    ]
    .into_iter()
    .filter(|(_, v)| v.as_ref().is_some_and(|v| v.iter().any(|e| e == endpoint)))
    .map(|(k, _)| k)
    .collect()
}

/// Sends the test ticket to every endpoint; one check each. The repair route's absence is its
/// own failure: a site whose outages reach nobody is not commissioned.
pub async fn delivery_checks(lang: Lang, cfg: &Config, payload: &TicketPayload) -> Vec<Check> {
    crate::actions::delivery::init_tls();
    let mut out = Vec::new();
    let endpoints = cfg
        .delivery
        .as_ref()
        .map(|d| d.endpoint.clone())
        .unwrap_or_default();
    if endpoints.is_empty() {
        out.push(
            Check::new(
                Step::Uplinks,
                "uplinks.route",
                "",
                Status::Fail,
                lang.t("cm-uplink-none"),
            )
            .fix(lang.t("cm-uplink-none-fix")),
        );
        return out;
    }
    let now = payload.updated_at;
    for e in &endpoints {
        let kinds = routed_kinds(cfg, e.name()).join(", ");
        let channel = match e.channel() {
            Channel::Webhook => "webhook",
            Channel::Email => "e-mail",
            Channel::Sms => "SMS",
        };
        let result = match Sender::new(e) {
            Err(why) => SendResult::Permanent(why),
            Ok(sender) => sender.send(&test_row(e, payload, now)).await,
        };
        let (status, id, answer) = match result {
            SendResult::Delivered(d) => (Status::Pass, "cm-uplink-ok", redact_urls(&d)),
            SendResult::Retry { detail, .. } => {
                (Status::Fail, "cm-uplink-failed", redact_urls(&detail))
            }
            SendResult::Permanent(d) => (Status::Fail, "cm-uplink-refused", redact_urls(&d)),
        };
        let args = [
            ("endpoint", e.name()),
            ("channel", channel),
            ("answer", answer.as_str()),
            (
                "kinds",
                if kinds.is_empty() {
                    "-"
                } else {
                    kinds.as_str()
                },
            ),
        ];
        let mut c = Check::new(
            Step::Uplinks,
            "uplinks.route",
            e.name(),
            status,
            lang.ta(id, &args),
        )
        .text("channel", channel)
        .text("answer", answer.clone())
        .text("routes", kinds.clone());
        if status != Status::Pass {
            c.fix = Some(lang.ta("cm-uplink-fix", &args));
        }
        out.push(c);
    }
    if cfg.site.is_some() && cfg.routes.repair.as_ref().is_none_or(|r| r.is_empty()) {
        out.push(
            Check::new(
                Step::Uplinks,
                "uplinks.repair-route",
                "",
                Status::Fail,
                lang.t("cm-uplink-no-repair"),
            )
            .fix(lang.t("cm-uplink-no-repair-fix")),
        );
    }
    out
}

/// Read-backs after the first, and the wait between them (5 s in all).
const READ_BACK_TRIES: u32 = 10;
const READ_BACK_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Writes one point to InfluxDB and reads it back.
pub async fn influx_check(lang: Lang, cfg: &InfluxConfig, run_id: &str) -> Check {
    use crate::sinks::influx::transport::{Outcome, Transport};
    let url = cfg.url.clone();
    let fail = |id: &str, why: String| {
        Check::new(
            Step::Uplinks,
            "uplinks.influx",
            &url,
            Status::Fail,
            lang.ta(id, &[("url", url.as_str()), ("why", why.as_str())]),
        )
        .fix(lang.t("cm-influx-fix"))
    };
    let transport = match Transport::new(cfg) {
        Ok(t) => t,
        Err(e) => return fail("cm-influx-write-failed", e.to_string()),
    };
    if cfg.create_database {
        let _ = transport.create_database().await;
    }
    let ns = Utc::now().timestamp_nanos_opt().unwrap_or(0);
    let line = format!("kare_commission,check={run_id} ok=1i {ns}\n");
    match transport.write(line.into_bytes()).await {
        Outcome::Written => {}
        Outcome::Retry { reason, .. } => return fail("cm-influx-write-failed", reason),
        Outcome::Rejected { status, message } => {
            return fail(
                "cm-influx-write-failed",
                format!("HTTP {status}: {message}"),
            )
        }
    }
    // A server may show a point only after its buffer flushes (VictoriaMetrics: about a
    // second): ask again for a few seconds before saying it is not there.
    let mut read = transport.read_back("kare_commission", run_id).await;
    for _ in 0..READ_BACK_TRIES {
        if !matches!(read, Ok(false)) {
            break;
        }
        tokio::time::sleep(READ_BACK_EVERY).await;
        read = transport.read_back("kare_commission", run_id).await;
    }
    match read {
        Ok(true) => Check::new(
            Step::Uplinks,
            "uplinks.influx",
            &url,
            Status::Pass,
            lang.ta("cm-influx-ok", &[("url", url.as_str())]),
        ),
        Ok(false) => Check::new(
            Step::Uplinks,
            "uplinks.influx",
            &url,
            Status::Warn,
            lang.ta(
                "cm-influx-not-read",
                &[
                    ("url", url.as_str()),
                    (
                        "why",
                        "the point was accepted but a query does not return it yet",
                    ),
                ],
            ),
        )
        .fix(lang.t("cm-influx-fix")),
        Err(why) => Check::new(
            Step::Uplinks,
            "uplinks.influx",
            &url,
            Status::Warn,
            lang.ta(
                "cm-influx-not-read",
                &[("url", url.as_str()), ("why", why.as_str())],
            ),
        )
        .fix(lang.t("cm-influx-fix")),
    }
}

/// The ticket kind that carries a signed commissioning record to the desk.
pub const RECORD_KIND: &str = "commissioning";

/// Sends the signed record to the repair desk's route (`[routes] repair`): a closed P4 ticket of
/// kind `commissioning` whose detail holds the signed file, so the desk keeps the sign-off with
/// the site. One line per endpoint.
pub async fn send_record(
    lang: Lang,
    cfg: &Config,
    rec: &super::record::Record,
    signed: &str,
) -> Vec<String> {
    crate::actions::delivery::init_tls();
    let names = cfg.routes.repair.clone().unwrap_or_default();
    let endpoints: Vec<EndpointConfig> = cfg
        .delivery
        .as_ref()
        .map(|d| {
            d.endpoint
                .iter()
                .filter(|e| names.iter().any(|n| n == e.name()))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if endpoints.is_empty() {
        return vec![lang.t("cm-record-no-desk")];
    }
    let now = Utc::now();
    let mut payload = test_payload(cfg, &rec.crew, &rec.run_id, now);
    let (p, w, f) = rec.counts();
    payload.kind = RECORD_KIND.into();
    payload.key = format!("{}:commissioning:{}", payload.site.id, rec.run_id);
    payload.title = format!(
        "Commissioning of {} by {}: {} ({p} pass, {w} warn, {f} fail)",
        if rec.site_id.is_empty() {
            "this site"
        } else {
            &rec.site_id
        },
        rec.crew,
        rec.verdict.word()
    );
    // The signed file as text, byte for byte: the signature covers its exact bytes, and a
    // parsed-and-reprinted copy would no longer verify.
    payload.detail = serde_json::json!({ "signed_record_text": signed });
    let mut lines = Vec::new();
    for e in &endpoints {
        let result = match Sender::new(e) {
            Err(why) => SendResult::Permanent(why),
            Ok(sender) => sender.send(&test_row(e, &payload, now)).await,
        };
        let (id, answer) = match result {
            SendResult::Delivered(d) => ("cm-record-sent", redact_urls(&d)),
            SendResult::Retry { detail, .. } | SendResult::Permanent(detail) => {
                ("cm-record-not-sent", redact_urls(&detail))
            }
        };
        lines.push(lang.ta(id, &[("endpoint", e.name()), ("answer", answer.as_str())]));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_in_a_webhook_url_never_reaches_the_record() {
        let e = "error sending request for url (https://oapi.dingtalk.com/robot/send?access_token=SECRET123): connection refused";
        let r = redact_urls(e);
        assert!(!r.contains("SECRET123"), "{r}");
        assert!(r.contains("https://oapi.dingtalk.com/robot/send?…"), "{r}");
        assert_eq!(redact_urls("HTTP 200 OK"), "HTTP 200 OK");
    }
}
