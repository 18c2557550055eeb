//! [`TicketPayload`]: the JSON a ticket is delivered as (documented in `docs/webhook.md`), and
//! its plain-text renderings for e-mail and SMS.
//!
//! The rules fill a `TicketPayload`, turn it into JSON ([`TicketPayload::to_json`]) and pass it
//! as the ticket's `body_json` and each delivery's `payload_json`. The store then sets `id`,
//! `key` and `revision` (it alone knows them), so the rules may leave them at their defaults.
//! Fields are only ever added to this shape (`schema` stays `kare.ticket/1`); a receiver must
//! ignore fields it does not know.

use crate::store::TicketState;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The value of [`TicketPayload::schema`] for this shape.
pub const SCHEMA: &str = "kare.ticket/1";

/// A ticket, as delivered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TicketPayload {
    /// Always [`SCHEMA`] for this shape.
    pub schema: String,
    /// The appliance's ticket id (a row id: unique on one appliance only; use `key` across
    /// appliances). Set by the store.
    #[serde(default)]
    pub id: i64,
    /// Idempotency key: the same key is the same ticket on every revision, retry and restart.
    /// Set by the store.
    #[serde(default)]
    pub key: String,
    /// Revision, from 1, +1 on every change. A receiver keeps the highest it has seen. Set by
    /// the store.
    #[serde(default)]
    pub revision: i64,
    /// `repair`, `generator`, `pq_notice`, `engineering`, `maintenance`,
    /// `planned` (more may be added).
    pub kind: String,
    /// `open`, `closed` or `cancelled`.
    pub state: TicketState,
    /// `P1` (critical) … `P4` (notice).
    pub priority: String,
    /// One line for a person.
    pub title: String,
    /// When the ticket's subject began (the outage start, not when the ticket was sent).
    pub opened_at: DateTime<Utc>,
    /// When this revision was made.
    pub updated_at: DateTime<Utc>,
    /// When it ended (closed or cancelled tickets).
    #[serde(default)]
    pub closed_at: Option<DateTime<Utc>>,
    /// `closed_at − opened_at`, seconds.
    #[serde(default)]
    pub duration_s: Option<f64>,
    /// For outages: `momentary` or `sustained` (IEEE 1366, threshold in `[rules]`).
    #[serde(default)]
    pub classification: Option<String>,
    /// Where.
    pub site: SiteInfo,
    /// Whose.
    pub customer: CustomerInfo,
    /// The event that raised or last changed the ticket.
    #[serde(default)]
    pub event: Option<EventSummary>,
    /// For `generator` tickets: what to send.
    #[serde(default)]
    pub generator: Option<GeneratorRequest>,
    /// Kind-specific facts (counts, sources and how they saw it, planned-outage reference...).
    #[serde(default)]
    pub detail: Value,
    /// Which appliance sent it.
    pub appliance: ApplianceInfo,
}

/// The site, as the repair crew needs it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SiteInfo {
    /// The utility's site id.
    pub id: String,
    /// Street address.
    #[serde(default)]
    pub address: String,
    /// How to get in.
    #[serde(default)]
    pub access_notes: String,
    /// Nominal supply voltage, kV.
    #[serde(default)]
    pub nominal_kv: Option<f64>,
}

/// The customer (key account).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomerInfo {
    /// The utility's customer id.
    pub id: String,
    /// Name.
    pub name: String,
    /// `critical`, `important` or `standard`.
    #[serde(default)]
    pub tier: String,
    /// The account manager.
    #[serde(default)]
    pub account_manager: Option<ContactInfo>,
    /// People on site to call.
    #[serde(default)]
    pub contacts: Vec<ContactInfo>,
}

/// A person.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactInfo {
    /// Name.
    pub name: String,
    /// Role.
    #[serde(default)]
    pub role: String,
    /// Phone, as dialled.
    #[serde(default)]
    pub phone: String,
    /// E-mail.
    #[serde(default)]
    pub email: String,
}

/// The event behind a ticket, in brief (the full event is in the appliance's API).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EventSummary {
    /// The appliance's event id.
    #[serde(default)]
    pub id: Option<i64>,
    /// Source that saw it.
    pub source: String,
    /// `interruption`, `dip`, `swell`, `outage_coarse`, `sensor_lost`...
    pub kind: String,
    /// Start.
    pub start: DateTime<Utc>,
    /// End, if over.
    #[serde(default)]
    pub end: Option<DateTime<Utc>>,
    /// Duration, seconds.
    #[serde(default)]
    pub duration_s: Option<f64>,
    /// Residual or maximum voltage, % of Udin.
    #[serde(default)]
    pub extreme_pct: Option<f64>,
    /// Channel of the extreme.
    #[serde(default)]
    pub worst_channel: Option<String>,
    /// ITIC verdict (`inside`, `below`, `above`).
    #[serde(default)]
    pub itic: Option<String>,
    /// SEMI F47 verdict.
    #[serde(default)]
    pub semi_f47: Option<String>,
}

/// A mobile-generator request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GeneratorRequest {
    /// Size asked for, kVA.
    pub size_kva: f64,
    /// How it was sized, for a person (`peak 412 kW over 7 days × 1.2 / pf 0.9`).
    #[serde(default)]
    pub basis: String,
    /// Peak demand behind the size, kW.
    #[serde(default)]
    pub peak_demand_kw: Option<f64>,
    /// The connection's rating, kVA (the most that can be connected).
    #[serde(default)]
    pub connection_kva: Option<f64>,
    /// Where it connects.
    #[serde(default)]
    pub connection_point: String,
}

/// The sending appliance.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ApplianceInfo {
    /// Its name (host name or configured id).
    pub id: String,
    /// kare version.
    pub version: String,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `3 h 02 min 05 s`, `42.5 s`.
pub fn human_duration(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "?".into();
    }
    if s < 60.0 {
        return format!("{} s", (s * 10.0).round() / 10.0);
    }
    let t = s.round() as u64;
    let (h, m, sec) = (t / 3600, t / 60 % 60, t % 60);
    if h > 0 {
        format!("{h} h {m:02} min {sec:02} s")
    } else {
        format!("{m} min {sec:02} s")
    }
}

/// Cuts `s` to at most `max` characters, marking a cut with `…`.
pub fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

impl TicketPayload {
    /// The payload as JSON, for `body_json` and `payload_json`.
    pub fn to_json(&self) -> Value {
        // Serialising this struct cannot fail: string keys, no maps with other keys.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Reads a payload back (what the e-mail and SMS channels do with `payload_json`).
    pub fn from_json(v: &Value) -> Result<TicketPayload, String> {
        serde_json::from_value(v.clone()).map_err(|e| format!("not a kare.ticket/1 payload: {e}"))
    }

    fn kind_label(&self) -> String {
        self.kind.replace('_', " ").to_uppercase()
    }

    /// E-mail subject: `[kare P1] REPAIR OPEN: <title> (SITE-1)`, with the revision after the first.
    pub fn email_subject(&self) -> String {
        let rev = if self.revision > 1 {
            format!(" (update {})", self.revision)
        } else {
            String::new()
        };
        format!(
            "[kare {}] {} {}{}: {} ({})",
            self.priority,
            self.kind_label(),
            self.state.as_str().to_uppercase(),
            rev,
            self.title,
            self.site.id
        )
    }

    /// Plain-text e-mail body: everything a desk operator or crew needs, one fact per line.
    pub fn email_body(&self, idempotency_key: &str) -> String {
        let mut b = String::new();
        let mut line = |k: &str, v: String| {
            if !v.trim().is_empty() {
                b.push_str(&format!("{k:<17}{v}\n"));
            }
        };
        line(
            "Ticket:",
            format!("{} (revision {})", self.key, self.revision),
        );
        line("Kind:", self.kind.clone());
        line("State:", self.state.as_str().into());
        line("Priority:", self.priority.clone());
        line(
            "Customer:",
            format!(
                "{} ({}){}",
                self.customer.name,
                self.customer.id,
                if self.customer.tier.is_empty() {
                    String::new()
                } else {
                    format!(", tier {}", self.customer.tier)
                }
            ),
        );
        line("Site:", self.site.id.clone());
        line("Address:", self.site.address.clone());
        line("Access:", self.site.access_notes.clone());
        line("Opened:", ts(self.opened_at));
        if let Some(c) = self.closed_at {
            line("Closed:", ts(c));
        }
        if let Some(d) = self.duration_s {
            line("Duration:", human_duration(d));
        }
        line("Class:", self.classification.clone().unwrap_or_default());
        if let Some(e) = &self.event {
            let mut s = format!("{} on {} at {}", e.kind, e.source, ts(e.start));
            if let Some(p) = e.extreme_pct {
                s.push_str(&format!(", {p:.1} % of Udin"));
                if let Some(ch) = &e.worst_channel {
                    s.push_str(&format!(" on {ch}"));
                }
            }
            if let Some(d) = e.duration_s {
                s.push_str(&format!(", {}", human_duration(d)));
            }
            line("Event:", s);
        }
        if let Some(g) = &self.generator {
            line("Generator:", format!("{:.0} kVA", g.size_kva));
            line("Sized from:", g.basis.clone());
            line("Connect at:", g.connection_point.clone());
        }
        for c in &self.customer.contacts {
            line("Contact:", contact(c));
        }
        if let Some(m) = &self.customer.account_manager {
            line("Account manager:", contact(m));
        }
        let mut out = format!("{}\n\n{b}", self.title);
        if !(self.detail.is_null() || self.detail == Value::Object(Default::default())) {
            out.push_str("\nDetail:\n");
            out.push_str(&serde_json::to_string_pretty(&self.detail).unwrap_or_default());
            out.push('\n');
        }
        out.push_str(&format!(
            "\n-- \nSent by kare appliance {} ({}) at {}.\nIdempotency-Key: {}\n\
             Revisions of one ticket share its key; the highest revision is current.\n",
            self.appliance.id,
            self.appliance.version,
            ts(self.updated_at),
            idempotency_key
        ));
        out
    }

    /// SMS text, at most `max` characters: priority, kind, state, site, title, then the time
    /// (and duration once closed). The title is what gets cut when it is too long.
    pub fn sms_text(&self, max: usize) -> String {
        let head = format!(
            "kare {} {} {} {}: ",
            self.priority,
            self.kind_label(),
            self.state.as_str().to_uppercase(),
            self.site.id
        );
        let mut tail = format!(" since {}", self.opened_at.format("%m-%d %H:%MZ"));
        if let Some(d) = self.duration_s {
            tail = format!(
                " {}, {}",
                self.opened_at.format("%m-%d %H:%MZ"),
                human_duration(d)
            );
        }
        tail.push_str(&format!(" r{}", self.revision));
        let room = max.saturating_sub(head.chars().count() + tail.chars().count());
        truncate_chars(
            &format!("{head}{}{tail}", truncate_chars(&self.title, room)),
            max,
        )
    }
}

fn contact(c: &ContactInfo) -> String {
    [
        c.name.as_str(),
        c.role.as_str(),
        c.phone.as_str(),
        c.email.as_str(),
    ]
    .iter()
    .filter(|s| !s.is_empty())
    .copied()
    .collect::<Vec<_>>()
    .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    pub(crate) fn sample() -> TicketPayload {
        let t0 = Utc.with_ymd_and_hms(2026, 11, 26, 8, 15, 0).unwrap();
        TicketPayload {
            schema: SCHEMA.into(),
            id: 7,
            key: "SITE-1-outage-20261126T081500Z".into(),
            revision: 2,
            kind: "repair".into(),
            state: TicketState::Closed,
            priority: "P1".into(),
            title: "Supply lost at St Mary's Hospital, all three phases".into(),
            opened_at: t0,
            updated_at: t0 + chrono::Duration::seconds(3725),
            closed_at: Some(t0 + chrono::Duration::seconds(3725)),
            duration_s: Some(3725.0),
            classification: Some("sustained".into()),
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
            detail: Value::Null,
            appliance: ApplianceInfo {
                id: "kare-stmary".into(),
                version: "0.1.0".into(),
            },
        }
    }

    #[test]
    fn delivery_payload_round_trips_through_json() {
        let p = sample();
        assert_eq!(TicketPayload::from_json(&p.to_json()).unwrap(), p);
    }

    #[test]
    fn delivery_sms_text_fits_and_keeps_the_essentials() {
        let mut p = sample();
        p.title = "x".repeat(500);
        let s = p.sms_text(140);
        assert!(s.chars().count() <= 140, "{s}");
        assert!(s.starts_with("kare P1 REPAIR CLOSED SITE-1: "), "{s}");
        assert!(s.ends_with("1 h 02 min 05 s r2"), "{s}");
        let short = sample().sms_text(140);
        assert!(short.contains("St Mary's Hospital"), "{short}");
    }

    #[test]
    fn delivery_email_text_names_ticket_and_duration() {
        let p = sample();
        assert_eq!(
            p.email_subject(),
            "[kare P1] REPAIR CLOSED (update 2): Supply lost at St Mary's Hospital, all three phases (SITE-1)"
        );
        let body = p.email_body("SITE-1-outage-20261126T081500Z:2");
        assert!(body.contains("Duration:        1 h 02 min 05 s"), "{body}");
        assert!(body.contains("Idempotency-Key: SITE-1-outage-20261126T081500Z:2"));
    }
}
