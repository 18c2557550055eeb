//! From events to tickets: what the 24-hour repair desk, the generator dispatcher and the
//! account manager are told. Pure: inputs and the time in, ticket operations out; the service
//! stores each operation (durably) before delivering it.
//!
//! - Supply lost (an interruption on the half-cycle stream, a coarse outage from a meter, or the
//!   UPS saying mains is lost) opens **one repair ticket per outage**, whatever the number of
//!   sources that saw it; it is updated as sources report, and closed with its duration (momentary
//!   or sustained, IEEE 1366) when every source sees the supply back.
//! - A supply that fails again within the flap window **reopens the same ticket** (counting the
//!   failures) rather than raising a storm of new ones.
//! - Inside an announced planned-outage window the outage is recorded as planned: no repair ticket.
//! - At a generator-eligible site, an outage lasting past the limit raises a **mobile-generator
//!   request**, sized from recent peak demand (or the connection rating), cancelled if the
//!   supply returns.
//! - Dips and swells become one **power-quality notice per day** for the account manager;
//!   repeated deep dips within a window become an **engineering ticket**.
//! - A sensor or meter that stops answering, or a delivery channel that keeps failing, is a
//!   **maintenance ticket**, never an outage. A sensor lost *during* an outage is expected (it
//!   may sit on the failed supply) and raises nothing.

use crate::actions::site::Site;
use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};

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

/// Ticket states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketState {
    /// Open (new, updated or reopened).
    Open,
    /// Closed: resolved.
    Closed,
    /// Cancelled: no longer needed (a generator request when supply returned first).
    Cancelled,
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
    pub detail: Value,
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
}

/// Rule settings, with the defaults a utility would start from (`[rules]` in the configuration).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuleSettings {
    /// An outage up to this long is momentary, longer is sustained (IEEE 1366: 300 s; some
    /// jurisdictions 180 or 60).
    pub momentary_max_s: f64,
    /// A failure within this long after restoration reopens the same repair ticket.
    pub flap_window_s: f64,
    /// A dip with residual below this (% of Udin) is deep.
    pub deep_dip_pct: f64,
    /// This many deep dips …
    pub deep_dip_count: usize,
    /// … within this many hours raise an engineering ticket.
    pub deep_dip_window_h: f64,
    /// A sensor or meter silent this long (and no outage) raises a maintenance ticket.
    pub lost_after_s: f64,
    /// Peak demand over this many hours sizes the generator.
    pub demand_window_h: f64,
    /// Power factor assumed to turn kW into kVA for the generator.
    pub power_factor: f64,
    /// Margin on the peak, e.g. 1.2 for 20 %.
    pub generator_margin: f64,
}

impl Default for RuleSettings {
    fn default() -> Self {
        RuleSettings {
            momentary_max_s: 300.0,
            flap_window_s: 600.0,
            deep_dip_pct: 70.0,
            deep_dip_count: 3,
            deep_dip_window_h: 24.0,
            lost_after_s: 60.0,
            demand_window_h: 168.0,
            power_factor: 0.9,
            generator_margin: 1.2,
        }
    }
}

#[derive(Clone, Debug)]
struct Outage {
    key: String,
    start: DateTime<Utc>,
    /// Start of the present continuous loss (after a flap, the latest failure): the generator
    /// limit counts from here.
    since: DateTime<Utc>,
    planned: Option<String>,
    vias: BTreeMap<String, String>,
    failures: u32,
    on_battery: bool,
    /// Restored from the store after a restart: not yet confirmed by a live source.
    restored: bool,
}

#[derive(Clone, Debug)]
struct Closed {
    outage: Outage,
    at: DateTime<Utc>,
}

/// Today's power-quality notice.
#[derive(Clone, Debug)]
struct PqDay {
    day: NaiveDate,
    key: String,
    counts: BTreeMap<String, u32>,
    lowest: f64,
    highest: f64,
    first: DateTime<Utc>,
}

#[derive(Clone, Debug)]
struct Lost {
    since: DateTime<Utc>,
    reason: String,
    reported: Option<String>,
}

/// The rules for one site.
#[derive(Debug)]
pub struct Rules {
    site: Site,
    settings: RuleSettings,
    down: BTreeMap<String, DateTime<Utc>>,
    outage: Option<Outage>,
    recent: Option<Closed>,
    generator: Option<(String, DateTime<Utc>, Value)>,
    pq_day: Option<PqDay>,
    deep_dips: VecDeque<DateTime<Utc>>,
    engineering: Option<(String, DateTime<Utc>)>,
    lost: BTreeMap<String, Lost>,
    demand: VecDeque<(DateTime<Utc>, f64)>,
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

fn secs(d: Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

impl Rules {
    /// Rules for `site`.
    pub fn new(site: Site, settings: RuleSettings) -> Self {
        Rules {
            site,
            settings,
            down: BTreeMap::new(),
            outage: None,
            recent: None,
            generator: None,
            pq_day: None,
            deep_dips: VecDeque::new(),
            engineering: None,
            lost: BTreeMap::new(),
            demand: VecDeque::new(),
        }
    }

    /// The site.
    pub fn site(&self) -> &Site {
        &self.site
    }

    /// Whether an outage is open.
    pub fn outage_open(&self) -> bool {
        self.outage.is_some()
    }

    /// After a restart: an open repair ticket found in the store is the outage still in progress
    /// (one ticket per outage, across restarts). Closed when a source sees the supply.
    pub fn restore_outage(&mut self, key: &str, start: DateTime<Utc>, failures: u32) {
        self.outage = Some(Outage {
            key: key.to_string(),
            start,
            since: start,
            planned: None,
            vias: BTreeMap::new(),
            failures: failures.max(1),
            on_battery: false,
            restored: true,
        });
    }

    /// After a restart: an open generator request found in the store.
    pub fn restore_generator(&mut self, key: &str, opened: DateTime<Utc>) {
        self.generator = Some((key.to_string(), opened, Value::Null));
    }

    /// Handles one input at time `now`.
    pub fn handle(&mut self, input: RuleInput, now: DateTime<Utc>) -> Vec<TicketOp> {
        let mut out = Vec::new();
        match input {
            RuleInput::SupplyLost { source, at, via } => {
                self.supply_lost(source, at, via, &mut out)
            }
            RuleInput::SupplyBack { source, at } => self.supply_back(&source, at, &mut out),
            RuleInput::SupplyPresent { source, at } => {
                let restored = self.outage.as_ref().is_some_and(|o| o.restored);
                if restored && !self.down.contains_key(&source) && self.down.is_empty() {
                    // The supply came back while the appliance was not watching.
                    self.close_outage(at, &mut out, "supply found present after a restart");
                }
            }
            RuleInput::Disturbance {
                source,
                kind,
                start,
                duration_s,
                extreme_pct,
            } => self.disturbance(source, kind, start, duration_s, extreme_pct, &mut out),
            RuleInput::SensorLost {
                source,
                since,
                reason,
            } => {
                self.lost.entry(source).or_insert(Lost {
                    since,
                    reason,
                    reported: None,
                });
            }
            RuleInput::SensorBack { source, at } => {
                if let Some(Lost {
                    since,
                    reported: Some(key),
                    reason,
                }) = self.lost.remove(&source)
                {
                    out.push(self.op(
                        key,
                        TicketKind::Maintenance,
                        TicketState::Closed,
                        "P3",
                        format!("{source} is answering again"),
                        since,
                        Some(at),
                        json!({"source": source, "reason": reason}),
                    ));
                }
            }
            RuleInput::BatteryLow { at } => {
                if let Some(o) = &self.outage {
                    let o = o.clone();
                    out.push(self.outage_op(
                        &o,
                        TicketState::Open,
                        None,
                        Some(format!(
                            "appliance battery low at {}: the appliance shuts down now and reports again when power returns",
                            at.to_rfc3339_opts(SecondsFormat::Secs, true)
                        )),
                    ));
                }
            }
            RuleInput::Demand { at, kw } => {
                self.demand.push_back((at, kw));
                let horizon =
                    at - Duration::seconds((self.settings.demand_window_h * 3600.0) as i64);
                while self.demand.front().is_some_and(|(t, _)| *t < horizon) {
                    self.demand.pop_front();
                }
            }
            RuleInput::DeliveryDead {
                endpoint,
                reason,
                at,
            } => {
                out.push(self.op(
                    format!("{}-delivery-{}-{}", self.site.id, endpoint, stamp(at)),
                    TicketKind::Maintenance,
                    TicketState::Open,
                    "P2",
                    format!("kare cannot deliver to {endpoint}: {reason}"),
                    at,
                    None,
                    json!({"endpoint": endpoint, "reason": reason}),
                ));
            }
        }
        out.extend(self.tick(now));
        out
    }

    /// Time-driven rules (generator limit, lost sensors): call every second or so.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<TicketOp> {
        let mut out = Vec::new();
        if let Some(o) = self.outage.clone() {
            let gen = &self.site.generator;
            let due = o.since + Duration::milliseconds((gen.after_minutes * 60_000.0) as i64);
            if o.planned.is_none() && gen.eligible && self.generator.is_none() && now >= due {
                let (kva, sizing) = self.generator_size();
                let key = format!("{}-generator-{}", self.site.id, stamp(o.start));
                let detail = json!({
                    "outage_key": o.key,
                    "size_kva": kva,
                    "sizing": sizing,
                    "connection_point": gen.connection_point,
                    "connection_kva": gen.connection_kva,
                    "outage_started": o.start.to_rfc3339_opts(SecondsFormat::Millis, true),
                });
                self.generator = Some((key.clone(), now, detail.clone()));
                out.push(self.op(
                    key,
                    TicketKind::Generator,
                    TicketState::Open,
                    self.site.tier.priority(),
                    format!(
                        "Mobile generator {kva:.0} kVA needed at {}: supply lost for {}",
                        self.site.customer_name,
                        human(secs(now - o.since))
                    ),
                    now,
                    None,
                    detail,
                ));
            }
        }
        let after = Duration::milliseconds((self.settings.lost_after_s * 1000.0) as i64);
        let outage = self.outage.is_some();
        let site_id = self.site.id.clone();
        let mut raise = Vec::new();
        for (source, l) in self.lost.iter_mut() {
            // During an outage a silent sensor is expected: it may be powered by the failed supply.
            if l.reported.is_none() && !outage && now - l.since >= after {
                let key = format!("{site_id}-maintenance-{source}-{}", stamp(l.since));
                l.reported = Some(key.clone());
                raise.push((key, source.clone(), l.since, l.reason.clone()));
            }
        }
        for (key, source, since, reason) in raise {
            out.push(self.op(
                key,
                TicketKind::Maintenance,
                TicketState::Open,
                "P3",
                format!("{source} not answering: {reason} (the sensor, not the supply)"),
                since,
                None,
                json!({"source": source, "reason": reason}),
            ));
        }
        out
    }

    fn supply_lost(
        &mut self,
        source: String,
        at: DateTime<Utc>,
        via: String,
        out: &mut Vec<TicketOp>,
    ) {
        let first_source = self.down.is_empty();
        self.down.entry(source.clone()).or_insert(at);
        if let Some(o) = &mut self.outage {
            // Already open: a new witness (the UPS, a meter) updates the same ticket.
            let new_via = o.vias.insert(source.clone(), via.clone()).is_none();
            if via.contains("UPS") {
                o.on_battery = true;
            }
            o.restored = false;
            if new_via {
                let o = o.clone();
                out.push(self.outage_op(&o, TicketState::Open, None, None));
            }
            return;
        }
        if !first_source {
            return;
        }
        let flap = self.recent.take().filter(|c| {
            secs(at - c.at) <= self.settings.flap_window_s && c.outage.planned.is_none()
        });
        let mut o = match flap {
            Some(c) => {
                let mut o = c.outage;
                o.failures += 1;
                o.vias.clear();
                o.since = at;
                o
            }
            None => Outage {
                key: String::new(),
                start: at,
                since: at,
                planned: self.site.planned_at(at).map(|p| p.reference.clone()),
                vias: BTreeMap::new(),
                failures: 1,
                on_battery: false,
                restored: false,
            },
        };
        if o.key.is_empty() {
            let what = if o.planned.is_some() {
                "planned"
            } else {
                "outage"
            };
            o.key = format!("{}-{what}-{}", self.site.id, stamp(at));
        }
        o.vias.insert(source, via.clone());
        o.on_battery |= via.contains("UPS");
        self.outage = Some(o.clone());
        out.push(self.outage_op(&o, TicketState::Open, None, None));
    }

    fn supply_back(&mut self, source: &str, at: DateTime<Utc>, out: &mut Vec<TicketOp>) {
        self.down.remove(source);
        if self.down.is_empty() && self.outage.is_some() {
            self.close_outage(at, out, "supply restored");
        }
    }

    fn close_outage(&mut self, at: DateTime<Utc>, out: &mut Vec<TicketOp>, why: &str) {
        let Some(o) = self.outage.take() else {
            return;
        };
        // Witnesses keep different clocks (a node's sample clock, a meter stamped at its poll,
        // the UPS input): a restoration stamped before the last loss it ends is read as at it,
        // never as a negative outage.
        let at = at.max(o.since);
        out.push(self.outage_op(&o, TicketState::Closed, Some(at), Some(why.to_string())));
        if let Some((key, opened, detail)) = self.generator.take() {
            out.push(self.op(
                key,
                TicketKind::Generator,
                TicketState::Cancelled,
                self.site.tier.priority(),
                format!(
                    "Mobile generator no longer needed at {}: {why}",
                    self.site.customer_name
                ),
                opened,
                Some(at),
                detail,
            ));
        }
        self.recent = Some(Closed { outage: o, at });
    }

    fn outage_op(
        &self,
        o: &Outage,
        state: TicketState,
        closed: Option<DateTime<Utc>>,
        note: Option<String>,
    ) -> TicketOp {
        let duration = closed.map(|c| secs(c - o.start));
        let class = duration.map(|d| {
            if d <= self.settings.momentary_max_s {
                "momentary"
            } else {
                "sustained"
            }
        });
        let (kind, priority) = match o.planned {
            Some(_) => (TicketKind::Planned, "P4"),
            None => (TicketKind::Repair, self.site.tier.priority()),
        };
        let who = &self.site.customer_name;
        let title = match (state, &o.planned, duration) {
            (TicketState::Open, Some(r), _) => format!("Planned outage at {who} ({r})"),
            (_, Some(r), Some(d)) => format!("Planned outage at {who} ({r}) over after {d:.0} s"),
            (TicketState::Open, None, _) if o.on_battery => {
                format!("Supply lost at {who}: appliance on battery")
            }
            (TicketState::Open, None, _) if o.failures > 1 => {
                format!("Supply lost at {who} (failed {} times)", o.failures)
            }
            (TicketState::Open, None, _) => format!("Supply lost at {who}"),
            (_, None, Some(d)) => format!(
                "Supply restored at {who} after {} ({})",
                human(d),
                class.unwrap_or_default()
            ),
            _ => format!("Supply at {who}"),
        };
        self.op(
            o.key.clone(),
            kind,
            state,
            priority,
            title,
            o.start,
            closed,
            json!({
                "seen_by": o.vias,
                "failures": o.failures,
                "on_battery": o.on_battery,
                "classification": class,
                "planned_reference": o.planned,
                "note": note,
            }),
        )
    }

    fn disturbance(
        &mut self,
        source: String,
        kind: String,
        start: DateTime<Utc>,
        duration_s: f64,
        extreme_pct: f64,
        out: &mut Vec<TicketOp>,
    ) {
        let end = start + Duration::milliseconds((duration_s * 1000.0) as i64);
        // The dip around an interruption is the interruption: count it once, as the outage.
        let overlaps = |from: DateTime<Utc>, to: Option<DateTime<Utc>>| {
            start <= to.unwrap_or(end) && end >= from
        };
        if self
            .outage
            .as_ref()
            .is_some_and(|o| overlaps(o.start, None))
            || self
                .recent
                .as_ref()
                .is_some_and(|c| overlaps(c.outage.start, Some(c.at + Duration::seconds(1))))
        {
            return;
        }
        let day = start.date_naive();
        let key = format!("{}-pq-{}", self.site.id, day.format("%Y-%m-%d"));
        if self.pq_day.as_ref().is_none_or(|d| d.day != day) {
            self.pq_day = Some(PqDay {
                day,
                key,
                counts: BTreeMap::new(),
                lowest: f64::INFINITY,
                highest: f64::NEG_INFINITY,
                first: start,
            });
        }
        let Some(entry) = self.pq_day.as_mut() else {
            return;
        };
        *entry.counts.entry(kind.clone()).or_default() += 1;
        if kind == "dip" {
            entry.lowest = entry.lowest.min(extreme_pct);
        } else {
            entry.highest = entry.highest.max(extreme_pct);
        }
        let (key, counts, lowest, highest, first) = (
            entry.key.clone(),
            entry.counts.clone(),
            entry.lowest,
            entry.highest,
            entry.first,
        );
        let total: u32 = counts.values().sum();
        out.push(self.op(
            key,
            TicketKind::PqNotice,
            TicketState::Open,
            "P4",
            format!(
                "Power quality at {} on {day}: {total} event(s){}",
                self.site.customer_name,
                if lowest.is_finite() {
                    format!(", deepest dip to {lowest:.0} %")
                } else {
                    String::new()
                }
            ),
            first,
            None,
            json!({
                "counts": counts,
                "lowest_dip_pct": lowest.is_finite().then_some(lowest),
                "highest_swell_pct": highest.is_finite().then_some(highest),
                "last": {"source": source, "kind": kind, "start": start.to_rfc3339_opts(SecondsFormat::Millis, true), "duration_s": duration_s, "extreme_pct": extreme_pct},
            }),
        ));

        if kind == "dip" && extreme_pct < self.settings.deep_dip_pct {
            self.deep_dips.push_back(start);
            let window =
                Duration::milliseconds((self.settings.deep_dip_window_h * 3_600_000.0) as i64);
            while self.deep_dips.front().is_some_and(|t| start - *t > window) {
                self.deep_dips.pop_front();
            }
            let open = self
                .engineering
                .as_ref()
                .is_some_and(|(_, at)| start - *at <= window);
            if self.deep_dips.len() >= self.settings.deep_dip_count && !open {
                let first = self.deep_dips[0];
                let key = format!("{}-engineering-{}", self.site.id, stamp(first));
                self.engineering = Some((key.clone(), start));
                out.push(self.op(
                    key,
                    TicketKind::Engineering,
                    TicketState::Open,
                    "P3",
                    format!(
                        "{} deep dips (below {:.0} %) at {} within {:.0} h",
                        self.deep_dips.len(),
                        self.settings.deep_dip_pct,
                        self.site.customer_name,
                        self.settings.deep_dip_window_h
                    ),
                    first,
                    None,
                    json!({"deep_dips": self.deep_dips.iter().map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)).collect::<Vec<_>>()}),
                ));
            }
        }
    }

    /// Generator size in kVA and how it was found.
    fn generator_size(&self) -> (f64, String) {
        let gen = &self.site.generator;
        let peak = self
            .demand
            .iter()
            .map(|(_, kw)| *kw)
            .fold(f64::NAN, f64::max);
        if peak.is_finite() && peak > 0.0 {
            let s = &self.settings;
            let kva = peak / s.power_factor * s.generator_margin;
            let capped = kva.min(gen.connection_kva);
            (
                capped,
                format!(
                    "peak demand {peak:.0} kW over the last {:.0} h / power factor {} × margin {}{}",
                    s.demand_window_h,
                    s.power_factor,
                    s.generator_margin,
                    if capped < kva {
                        format!(", capped at the connection's {:.0} kVA", gen.connection_kva)
                    } else {
                        String::new()
                    }
                ),
            )
        } else {
            (
                gen.connection_kva,
                "no interval data: the generator connection's rating".to_string(),
            )
        }
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
        detail: Value,
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

fn human(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.1} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}
