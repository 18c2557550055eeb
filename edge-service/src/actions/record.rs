//! Records a ticket change: a [`TicketOp`] from the rules becomes a durable ticket with its
//! deliveries queued (one SQLite transaction), and only then is anyone told.
//!
//! Named `record` (it was `desk`) because "desk" means one thing in kare: the 24-hour repair
//! desk, the people the tickets are for. This module is the appliance's bookkeeping, not them.

use crate::actions::delivery::payload::{
    ApplianceInfo, ContactInfo, CustomerInfo, EventSummary, GeneratorRequest, SiteInfo,
    TicketPayload, SCHEMA,
};
use crate::actions::rules::{TicketDetail, TicketKind, TicketOp};
use crate::actions::site::{Contact, Site};
use crate::config::ConfigProblem;
use crate::store::{DeliverTo, StoreHandle, TicketWrite};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// Where tickets of each kind go: endpoint names with their channel.
#[derive(Clone, Debug, Default)]
pub struct Routes {
    /// Ticket kind (`repair`, `generator`, …) → endpoints.
    pub by_kind: BTreeMap<String, Vec<(String, crate::store::Channel)>>,
}

/// `[routes]` as written: for each kind of ticket, the names of the endpoints it goes to.
///
/// One field per [`TicketKind`], unknown keys refused: a free map let `repairs = ["desk"]` (a
/// typo) start without a word while P1 repair tickets went nowhere. A kind left out is sent
/// nowhere (a warning at start); `repair` left out at a configured site is refused, and
/// `repair = []` written out says "on purpose".
#[derive(Clone, Debug, Default, serde::Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteTable {
    /// Supply failures, for the 24-hour repair desk.
    pub repair: Option<Vec<String>>,
    /// Mobile-generator requests.
    pub generator: Option<Vec<String>>,
    /// Outages inside announced planned windows.
    pub planned: Option<Vec<String>>,
    /// The daily power-quality notice.
    pub pq_notice: Option<Vec<String>>,
    /// Repeated deep dips.
    pub engineering: Option<Vec<String>>,
    /// The appliance's own sensors, meters and delivery.
    pub maintenance: Option<Vec<String>>,
}

impl RouteTable {
    /// The endpoints written for `kind` (`None`: the key is not in the file).
    pub fn get(&self, kind: TicketKind) -> Option<&Vec<String>> {
        // Exhaustive: a new kind of ticket cannot be added without its route.
        match kind {
            TicketKind::Repair => self.repair.as_ref(),
            TicketKind::Generator => self.generator.as_ref(),
            TicketKind::Planned => self.planned.as_ref(),
            TicketKind::PqNotice => self.pq_notice.as_ref(),
            TicketKind::Engineering => self.engineering.as_ref(),
            TicketKind::Maintenance => self.maintenance.as_ref(),
        }
    }

    /// Every kind with what is written for it.
    pub fn iter(&self) -> impl Iterator<Item = (TicketKind, Option<&Vec<String>>)> {
        TicketKind::ALL.into_iter().map(|k| (k, self.get(k)))
    }

    /// Checks the names against the endpoints that exist; keys are relative to `[routes]`.
    pub fn validate(&self, endpoints: &[&str]) -> Result<(), ConfigProblem> {
        for (kind, names) in self.iter() {
            for (i, n) in names.into_iter().flatten().enumerate() {
                if !endpoints.contains(&n.as_str()) {
                    return Err(ConfigProblem::new(
                        kind.as_str(),
                        format!(
                            "no [[delivery.endpoint]] is named `{}`{}",
                            crate::config::check::printable(n),
                            match endpoints {
                                [] => " (there is no [delivery] endpoint at all)".to_string(),
                                e => format!("; the endpoints are: {}", e.join(", ")),
                            }
                        ),
                    ));
                }
                if names.into_iter().flatten().take(i).any(|o| o == n) {
                    return Err(ConfigProblem::new(
                        kind.as_str(),
                        format!("names `{n}` twice: each ticket would be sent to it twice"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// What to say at start: every kind of ticket that goes nowhere.
    pub fn warnings(&self) -> Vec<String> {
        self.iter()
            .filter(|(_, names)| names.is_none_or(|n| n.is_empty()))
            .map(|(kind, names)| {
                format!(
                    "[routes] {k}: {why}: {k} tickets are stored and shown, but sent nowhere{hint}",
                    k = kind.as_str(),
                    why = if names.is_some() { "empty" } else { "not set" },
                    hint = if names.is_some() {
                        String::new()
                    } else {
                        format!(
                            " (route them with `{} = [\"<endpoint name>\"]`)",
                            kind.as_str()
                        )
                    }
                )
            })
            .collect()
    }

    /// The routes the service uses: each name with its endpoint's channel.
    pub fn resolve(&self, endpoints: &[crate::actions::delivery::EndpointConfig]) -> Routes {
        let channels: BTreeMap<&str, crate::store::Channel> =
            endpoints.iter().map(|e| (e.name(), e.channel())).collect();
        Routes {
            by_kind: self
                .iter()
                .map(|(kind, names)| {
                    (
                        kind.as_str().to_string(),
                        names
                            .into_iter()
                            .flatten()
                            .filter_map(|n| channels.get(n.as_str()).map(|c| (n.clone(), *c)))
                            .collect(),
                    )
                })
                .collect(),
        }
    }
}

fn contact(c: &Contact) -> ContactInfo {
    ContactInfo {
        name: c.name.clone(),
        role: c.role.clone(),
        phone: c.phone.clone(),
        email: c.email.clone(),
    }
}

/// The payload a ticket change is delivered as (the store fills id, key and revision).
pub fn payload(
    op: &TicketOp,
    site: &Site,
    event: Option<EventSummary>,
    now: DateTime<Utc>,
) -> TicketPayload {
    TicketPayload {
        schema: SCHEMA.into(),
        id: 0,
        key: op.key.clone(),
        revision: 0,
        kind: op.kind.as_str().into(),
        state: op.state,
        priority: op.priority.clone(),
        title: op.title.clone(),
        opened_at: op.opened_at,
        updated_at: now,
        closed_at: op.closed_at,
        duration_s: op.duration_s,
        classification: op.detail.classification().map(|c| c.as_str().to_string()),
        site: SiteInfo {
            id: site.id.clone(),
            address: site.address.clone(),
            access_notes: site.access_notes.clone(),
            nominal_kv: (site.nominal_kv > 0.0).then_some(site.nominal_kv),
        },
        customer: CustomerInfo {
            id: site.customer_id.clone(),
            name: site.customer_name.clone(),
            tier: format!("{:?}", site.tier).to_lowercase(),
            account_manager: (!site.account_manager.name.is_empty())
                .then(|| contact(&site.account_manager)),
            contacts: site.contacts.iter().map(contact).collect(),
        },
        event,
        generator: match &op.detail {
            TicketDetail::Generator(g) => Some(GeneratorRequest {
                size_kva: g.size_kva,
                basis: g.sizing.clone(),
                peak_demand_kw: None,
                connection_kva: Some(g.connection_kva),
                connection_point: g.connection_point.clone(),
            }),
            _ => None,
        },
        detail: op.detail.to_json(),
        appliance: ApplianceInfo {
            id: site.id.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
    }
}

/// A stored event as the ticket's payload names it.
fn summary(e: &crate::store::EventRow) -> EventSummary {
    EventSummary {
        id: Some(e.id),
        source: e.source.clone(),
        kind: e.kind.clone(),
        start: e.start,
        end: e.end,
        duration_s: e.duration_s,
        extreme_pct: e.extreme_pct,
        worst_channel: e.worst_channel.clone(),
        itic: e.json["itic"].as_str().map(str::to_string),
        semi_f47: e.json["semi_f47"].as_str().map(str::to_string),
    }
}

/// Saves one ticket change with a delivery to each routed endpoint, in one transaction.
/// `event_id`: the stored event that caused it, if one did (kept from the first change that
/// names one: the event that opened the ticket). Returns the revision the store gave it, once
/// it is on disk.
pub async fn save(
    store: &StoreHandle,
    routes: &Routes,
    site: &Site,
    op: &TicketOp,
    event_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<i64, crate::store::StoreError> {
    // The cause, in brief, for the desk (the full event stays in the appliance's API).
    let event = match event_id {
        Some(id) => match store.event(id).await {
            Ok(row) => row.map(|e| summary(&e)),
            Err(e) => {
                tracing::warn!(event = id, "ticket sent without its event: {e}");
                None
            }
        },
        None => None,
    };
    let body = payload(op, site, event, now).to_json();
    let deliver_to = routes
        .by_kind
        .get(op.kind.as_str())
        .into_iter()
        .flatten()
        .map(|(endpoint, channel)| DeliverTo {
            channel: *channel,
            endpoint: endpoint.clone(),
            payload_json: body.clone(),
        })
        .collect();
    let saved = store
        .save_ticket(TicketWrite {
            key: op.key.clone(),
            kind: op.kind.as_str().into(),
            state: op.state,
            priority: op.priority.clone(),
            site_id: site.id.clone(),
            customer_id: site.customer_id.clone(),
            title: op.title.clone(),
            body_json: body,
            event_id,
            opened_at: Some(op.opened_at),
            closed_at: op.closed_at,
            duration_s: op.duration_s,
            deliver_to,
        })
        .await?;
    Ok(saved.revision)
}
