//! From events to tickets: what the 24-hour repair desk, the generator dispatcher and the
//! account manager are told. Pure: inputs and the time in, ticket operations out; no I/O, no
//! clock of its own. The service stores each operation (durably) before delivering it.
//!
//! This file holds the vocabulary ([`TicketOp`], [`TicketKind`], [`TicketState`],
//! [`RuleInput`], [`RuleSettings`]) and the dispatch; each rule lives in its own file:
//!
//! - [`outage`]: supply lost (an interruption on the half-cycle stream, a coarse outage from a
//!   meter, or the UPS saying mains is lost) opens **one repair ticket per outage**, whatever the
//!   number of sources that saw it; it is closed with its duration (momentary or sustained,
//!   IEEE 1366) when every source sees the supply back. A supply failing again within the flap
//!   window **reopens the same ticket**.
//! - [`planned`]: inside an announced planned-outage window the outage is recorded as planned.
//! - [`generator`]: an outage lasting past the site's limit raises a **mobile-generator request**,
//!   cancelled when the supply returns.
//! - [`pq_notice`]: dips and swells become one **power-quality notice per site-local day**,
//!   closed when the day is over.
//! - [`engineering`]: repeated deep dips raise an **engineering ticket**, closed after a quiet
//!   period without one.
//! - [`maintenance`]: a silent sensor or meter, or an endpoint that cannot be delivered to, is a
//!   **maintenance ticket**, never an outage; closed when the source is heard again (or the
//!   endpoint accepts a delivery).
//!
//! Every kind of ticket ends, and every open ticket can be handed back after a restart
//! ([`Rules::restore`]), so nothing stays open in the store for ever.

mod detail;
mod engineering;
mod generator;
mod maintenance;
mod outage;
mod planned;
mod pq_notice;
mod settings;

pub use settings::RuleSettings;

pub use detail::{
    EngineeringDetail, GeneratorDetail, MaintenanceDetail, OutageClass, OutageDetail, PqEvent,
    PqNoticeDetail, TicketDetail,
};

use crate::actions::site::Site;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Kinds of ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketKind {
    /// Supply failure for the 24-hour repair desk.
    Repair,
    /// Mobile-generator request.
    Generator,
    /// Daily power-quality notice for the account manager.
    PqNotice,
    /// Repeated deep dips: for the utility's engineers.
    Engineering,
    /// The appliance's own sensors, meters or delivery need attention.
    Maintenance,
    /// An outage inside an announced planned window (recorded, not a failure).
    Planned,
}

impl TicketKind {
    /// Every kind, in the order `[routes]` documents them.
    pub const ALL: [TicketKind; 6] = [
        TicketKind::Repair,
        TicketKind::Generator,
        TicketKind::Planned,
        TicketKind::PqNotice,
        TicketKind::Engineering,
        TicketKind::Maintenance,
    ];

    /// snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            TicketKind::Repair => "repair",
            TicketKind::Generator => "generator",
            TicketKind::PqNotice => "pq_notice",
            TicketKind::Engineering => "engineering",
            TicketKind::Maintenance => "maintenance",
            TicketKind::Planned => "planned",
        }
    }
}

impl FromStr for TicketKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "repair" => TicketKind::Repair,
            "generator" => TicketKind::Generator,
            "pq_notice" => TicketKind::PqNotice,
            "engineering" => TicketKind::Engineering,
            "maintenance" => TicketKind::Maintenance,
            "planned" => TicketKind::Planned,
            other => return Err(format!("unknown ticket kind `{other}`")),
        })
    }
}

/// A ticket's state: the one type for the rules, the store (`crate::store::TicketState` is
/// this), the delivered payload and the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketState {
    /// Open (new, updated or reopened).
    Open,
    /// Closed: resolved, or its subject over (a day's notice at the day's end).
    Closed,
    /// Cancelled: no longer needed (a generator request when supply returned first).
    Cancelled,
}

impl TicketState {
    /// The name stored and delivered.
    pub fn as_str(self) -> &'static str {
        match self {
            TicketState::Open => "open",
            TicketState::Closed => "closed",
            TicketState::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for TicketState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TicketState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "open" => Ok(TicketState::Open),
            "closed" => Ok(TicketState::Closed),
            "cancelled" => Ok(TicketState::Cancelled),
            other => Err(format!("unknown ticket state `{other}`")),
        }
    }
}

/// One change to one ticket. `key` is the ticket's idempotency key: the same key is the same
/// ticket, across updates, retries and restarts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TicketOp {
    /// Idempotency key, e.g. `SITE-1-outage-20261126T081500Z`.
    pub key: String,
    /// Kind.
    pub kind: TicketKind,
    /// State after this change.
    pub state: TicketState,
    /// P1 (critical) … P3, from the site's tier; P4 for notices.
    pub priority: String,
    /// One line for a person.
    pub title: String,
    /// When the ticket's subject began.
    pub opened_at: DateTime<Utc>,
    /// When it ended, for closed or cancelled tickets.
    pub closed_at: Option<DateTime<Utc>>,
    /// `closed_at − opened_at`, seconds.
    pub duration_s: Option<f64>,
    /// Kind-specific facts (classification, sources, generator size, counts…).
    pub detail: TicketDetail,
}

/// An open ticket found in the store at start, handed back to the rules ([`Rules::restore`]).
#[derive(Clone, Debug, PartialEq)]
pub struct OpenTicket {
    /// Idempotency key.
    pub key: String,
    /// Kind.
    pub kind: TicketKind,
    /// When its subject began.
    pub opened_at: DateTime<Utc>,
    /// Its detail as last stored.
    pub detail: TicketDetail,
}

/// What the rules are told.
#[derive(Clone, Debug, PartialEq)]
pub enum RuleInput {
    /// A source sees the supply gone.
    SupplyLost {
        /// Source name (`demo-node`, `ups`, `meters/incomer`…).
        source: String,
        /// When it went.
        at: DateTime<Utc>,
        /// How it was seen: `half-cycle`, `meter (coarse, 5 s polls)`, `UPS input`.
        via: String,
    },
    /// A source sees the supply back.
    SupplyBack {
        /// Source name.
        source: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// A source sees normal supply (sent once when a source starts reading, so that an outage
    /// restored from the store after a restart can be closed if the supply came back meanwhile).
    SupplyPresent {
        /// Source name.
        source: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// A dip or swell ended (interruptions come as `SupplyLost` / `SupplyBack`).
    Disturbance {
        /// Source name.
        source: String,
        /// `dip` or `swell`.
        kind: String,
        /// Start.
        start: DateTime<Utc>,
        /// Duration, seconds.
        duration_s: f64,
        /// Residual or maximum, % of Udin.
        extreme_pct: f64,
    },
    /// A sensor node stopped being heard.
    SensorLost {
        /// Source name.
        source: String,
        /// Last heard.
        since: DateTime<Utc>,
        /// Why.
        reason: String,
    },
    /// A sensor node is heard again.
    SensorBack {
        /// Source name.
        source: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// A source answered (a meter's readings): closes a maintenance ticket about it that was
    /// restored after a restart, since no `SensorBack` will come for a silence of the last run.
    Heard {
        /// Source name.
        source: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The UPS says its battery is low: the appliance is about to shut down.
    BatteryLow {
        /// When.
        at: DateTime<Utc>,
    },
    /// Active demand from an interval meter, kW.
    Demand {
        /// Interval end.
        at: DateTime<Utc>,
        /// kW.
        kw: f64,
    },
    /// A delivery endpoint gave up on a message.
    DeliveryDead {
        /// Endpoint name.
        endpoint: String,
        /// Why.
        reason: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// A delivery endpoint accepted a message.
    Delivered {
        /// Endpoint name.
        endpoint: String,
        /// When.
        at: DateTime<Utc>,
    },
}

/// The rules for one site. Each rule keeps its own state (see its file).
#[derive(Debug)]
pub struct Rules {
    site: Site,
    settings: RuleSettings,
    outage: outage::OutageRule,
    generator: generator::GeneratorRule,
    pq: pq_notice::PqRule,
    engineering: engineering::EngineeringRule,
    maintenance: maintenance::MaintenanceRule,
}

/// `20261126T081500Z`: how keys write a time.
fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

fn secs(d: Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

/// `f` hours (or seconds, with `ms_per_unit` = 1000) as a duration, saturating on nonsense.
fn span(units: f64, ms_per_unit: f64) -> Duration {
    let ms = units * ms_per_unit;
    if ms.is_finite() {
        Duration::milliseconds(ms.clamp(0.0, 1e15) as i64)
    } else {
        Duration::milliseconds(1_000_000_000_000_000)
    }
}

fn human(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.1} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

impl Rules {
    /// Rules for `site`.
    pub fn new(site: Site, settings: RuleSettings) -> Self {
        Rules {
            site,
            settings,
            outage: Default::default(),
            generator: Default::default(),
            pq: Default::default(),
            engineering: Default::default(),
            maintenance: Default::default(),
        }
    }

    /// The site.
    pub fn site(&self) -> &Site {
        &self.site
    }

    /// Hands back a ticket that was open in the store when the service started, so that its
    /// rule carries on with it (and ends it) rather than forgetting it or opening another.
    pub fn restore(&mut self, t: OpenTicket) {
        match (t.kind, t.detail) {
            (TicketKind::Repair | TicketKind::Planned, TicketDetail::Outage(d)) => {
                self.restore_outage_detail(&t.key, t.opened_at, d)
            }
            (TicketKind::Repair | TicketKind::Planned, _) => {
                self.restore_outage(&t.key, t.opened_at, 1)
            }
            (TicketKind::Generator, TicketDetail::Generator(d)) => {
                self.generator.restore(&t.key, t.opened_at, d)
            }
            (TicketKind::Generator, _) => {
                self.generator
                    .restore(&t.key, t.opened_at, GeneratorDetail::default())
            }
            (TicketKind::PqNotice, d) => {
                let d = match d {
                    TicketDetail::PqNotice(d) => d,
                    _ => PqNoticeDetail::default(),
                };
                let day = self.site.local_day(t.opened_at);
                self.pq.restore(&t.key, day, t.opened_at, d)
            }
            (TicketKind::Engineering, d) => {
                let dips = match d {
                    TicketDetail::Engineering(d) => d.deep_dips,
                    _ => Vec::new(),
                };
                self.engineering.restore(&t.key, t.opened_at, dips)
            }
            (TicketKind::Maintenance, TicketDetail::Maintenance(d)) => {
                self.maintenance.restore(&t.key, t.opened_at, d)
            }
            // A maintenance ticket whose subject cannot be read cannot be matched to a source:
            // it is closed at once rather than left open for ever.
            (TicketKind::Maintenance, _) => self.maintenance.restore(
                &t.key,
                t.opened_at,
                MaintenanceDetail::Source {
                    source: String::new(),
                    reason: "unreadable after a restart".into(),
                },
            ),
        }
    }

    /// Handles one input at time `now`.
    pub fn handle(&mut self, input: RuleInput, now: DateTime<Utc>) -> Vec<TicketOp> {
        let mut out = Vec::new();
        match input {
            RuleInput::SupplyLost { source, at, via } => {
                self.maintenance_heard(&source, at, &mut out);
                self.supply_lost(source, at, via, &mut out)
            }
            RuleInput::SupplyBack { source, at } => {
                self.maintenance_heard(&source, at, &mut out);
                self.supply_back(&source, at, &mut out)
            }
            RuleInput::SupplyPresent { source, at } => {
                self.maintenance_heard(&source, at, &mut out);
                self.supply_present(&source, at, &mut out)
            }
            RuleInput::Disturbance {
                source,
                kind,
                start,
                duration_s,
                extreme_pct,
            } => {
                self.maintenance_heard(&source, start, &mut out);
                let end = start + span(duration_s, 1000.0);
                // The dip around an interruption is the interruption: counted once, as the outage.
                if !self.within_outage(start, end) {
                    let deep = kind == "dip" && extreme_pct < self.settings.deep_dip_pct;
                    self.pq_notice(
                        PqEvent {
                            source,
                            kind,
                            start,
                            duration_s,
                            extreme_pct,
                        },
                        &mut out,
                    );
                    if deep {
                        self.deep_dip(start, &mut out);
                    }
                }
            }
            RuleInput::SensorLost {
                source,
                since,
                reason,
            } => self.maintenance.sensor_lost(source, since, reason),
            RuleInput::SensorBack { source, at } | RuleInput::Heard { source, at } => {
                self.maintenance_heard(&source, at, &mut out)
            }
            RuleInput::BatteryLow { at } => self.battery_low(at, &mut out),
            RuleInput::Demand { at, kw } => self.generator.demand(at, kw, &self.settings),
            RuleInput::DeliveryDead {
                endpoint,
                reason,
                at,
            } => self.delivery_dead(endpoint, reason, at, &mut out),
            RuleInput::Delivered { endpoint, at } => self.delivered(&endpoint, at, &mut out),
        }
        out.extend(self.tick(now));
        out
    }

    /// Time-driven rules (generator limit, lost sensors, the day's end, quiet periods): call
    /// every second or so.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<TicketOp> {
        let mut out = Vec::new();
        self.generator_due(now, &mut out);
        self.maintenance_due(now, &mut out);
        self.pq_day_over(now, &mut out);
        self.engineering_quiet(now, &mut out);
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn op(
        &self,
        key: String,
        kind: TicketKind,
        state: TicketState,
        priority: &str,
        title: String,
        opened_at: DateTime<Utc>,
        closed_at: Option<DateTime<Utc>>,
        detail: TicketDetail,
    ) -> TicketOp {
        TicketOp {
            key,
            kind,
            state,
            priority: priority.to_string(),
            title,
            opened_at,
            closed_at,
            duration_s: closed_at.map(|c| secs(c - opened_at)),
            detail,
        }
    }
}
