//! The maintenance rule: the appliance's own parts. A sensor node or meter silent for
//! `lost_after_s` (and no outage: during one a silent sensor is expected, it may sit on the
//! failed supply) raises a **maintenance ticket**, never an outage; it **closes when the source is
//! heard again** (`SensorBack`, or any input from it, which also ends a ticket restored after a
//! restart). A delivery endpoint that gives up on a message raises one ticket **per endpoint**
//! (one key while it is open, however many letters die), closed when the endpoint accepts a
//! delivery again.

use super::detail::{MaintenanceDetail, TicketDetail};
use super::{span, stamp, Rules, TicketKind, TicketOp, TicketState};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
struct Lost {
    since: DateTime<Utc>,
    reason: String,
    /// The ticket raised about it, if one was.
    reported: Option<String>,
}

#[derive(Clone, Debug)]
struct Dead {
    key: String,
    since: DateTime<Utc>,
    reason: String,
}

/// The maintenance rule's state.
#[derive(Debug, Default)]
pub(super) struct MaintenanceRule {
    /// Silent sources by name.
    lost: BTreeMap<String, Lost>,
    /// Endpoints with an open ticket, by name.
    dead: BTreeMap<String, Dead>,
}

impl MaintenanceRule {
    pub(super) fn restore(&mut self, key: &str, opened: DateTime<Utc>, d: MaintenanceDetail) {
        match d {
            MaintenanceDetail::Source { source, reason } => {
                self.lost.insert(
                    source,
                    Lost {
                        since: opened,
                        reason,
                        reported: Some(key.to_string()),
                    },
                );
            }
            MaintenanceDetail::Delivery { endpoint, reason } => {
                self.dead.insert(
                    endpoint,
                    Dead {
                        key: key.to_string(),
                        since: opened,
                        reason,
                    },
                );
            }
        }
    }

    pub(super) fn sensor_lost(&mut self, source: String, since: DateTime<Utc>, reason: String) {
        self.lost.entry(source).or_insert(Lost {
            since,
            reason,
            reported: None,
        });
    }
}

impl Rules {
    /// `source` was heard at `at`: a ticket about its silence closes.
    pub(super) fn maintenance_heard(
        &mut self,
        source: &str,
        at: DateTime<Utc>,
        out: &mut Vec<TicketOp>,
    ) {
        if let Some(Lost {
            since,
            reason,
            reported: Some(key),
        }) = self.maintenance.lost.remove(source)
        {
            out.push(self.sensor_op(key, source, since, reason, Some(at)));
        }
    }

    /// Raises the tickets for sources silent long enough, outside an outage.
    pub(super) fn maintenance_due(&mut self, now: DateTime<Utc>, out: &mut Vec<TicketOp>) {
        let after = span(self.settings.lost_after_s, 1000.0);
        let outage = self.outage.open.is_some();
        let site_id = self.site.id.clone();
        let mut raise = Vec::new();
        for (source, l) in self.maintenance.lost.iter_mut() {
            // During an outage a silent sensor is expected: it may be powered by the failed supply.
            if l.reported.is_none() && !outage && now - l.since >= after {
                let key = format!("{site_id}-maintenance-{source}-{}", stamp(l.since));
                l.reported = Some(key.clone());
                raise.push((key, source.clone(), l.since, l.reason.clone()));
            }
        }
        for (key, source, since, reason) in raise {
            out.push(self.sensor_op(key, &source, since, reason, None));
        }
        // A restored ticket whose source could not be read names nothing that can be heard
        // again: it ends now rather than never.
        if let Some(l) = self.maintenance.lost.remove("") {
            if let Some(key) = l.reported {
                out.push(self.sensor_op(key, "", l.since, l.reason, Some(now.max(l.since))));
            }
        }
    }

    fn sensor_op(
        &self,
        key: String,
        source: &str,
        since: DateTime<Utc>,
        reason: String,
        back: Option<DateTime<Utc>>,
    ) -> TicketOp {
        let (state, title) = match back {
            Some(_) => (TicketState::Closed, format!("{source} is answering again")),
            None => (
                TicketState::Open,
                format!("{source} not answering: {reason} (the sensor, not the supply)"),
            ),
        };
        // Witness clocks differ: never a negative duration.
        let back = back.map(|b| b.max(since));
        self.op(
            key,
            TicketKind::Maintenance,
            state,
            "P3",
            title,
            since,
            back,
            TicketDetail::Maintenance(MaintenanceDetail::Source {
                source: source.to_string(),
                reason,
            }),
        )
    }

    /// A delivery endpoint gave up on a message: one ticket per endpoint while it is open.
    pub(super) fn delivery_dead(
        &mut self,
        endpoint: String,
        reason: String,
        at: DateTime<Utc>,
        out: &mut Vec<TicketOp>,
    ) {
        if self.maintenance.dead.contains_key(&endpoint) {
            return;
        }
        let d = Dead {
            key: format!("{}-delivery-{}-{}", self.site.id, endpoint, stamp(at)),
            since: at,
            reason,
        };
        out.push(self.delivery_op(&endpoint, &d, None));
        self.maintenance.dead.insert(endpoint, d);
    }

    /// A delivery endpoint accepted a message: its ticket closes.
    pub(super) fn delivered(&mut self, endpoint: &str, at: DateTime<Utc>, out: &mut Vec<TicketOp>) {
        if let Some(d) = self.maintenance.dead.remove(endpoint) {
            out.push(self.delivery_op(endpoint, &d, Some(at.max(d.since))));
        }
    }

    fn delivery_op(&self, endpoint: &str, d: &Dead, back: Option<DateTime<Utc>>) -> TicketOp {
        let (state, priority, title) = match back {
            Some(_) => (
                TicketState::Closed,
                "P2",
                format!("kare delivers to {endpoint} again"),
            ),
            None => (
                TicketState::Open,
                "P2",
                format!("kare cannot deliver to {endpoint}: {}", d.reason),
            ),
        };
        self.op(
            d.key.clone(),
            TicketKind::Maintenance,
            state,
            priority,
            title,
            d.since,
            back,
            TicketDetail::Maintenance(MaintenanceDetail::Delivery {
                endpoint: endpoint.to_string(),
                reason: d.reason.clone(),
            }),
        )
    }
}
