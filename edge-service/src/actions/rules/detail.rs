//! A ticket's `detail`: the kind-specific facts, typed, one struct per ticket kind.
//!
//! The JSON is a contract (`docs/webhook.md`): [`TicketDetail`] serialises *untagged*, so the
//! `detail` object carries exactly the members it always had, in the same order, with `null` for
//! a missing value, and no variant name. Reading it back is led by the ticket's kind
//! ([`TicketDetail::from_json`]), never by guessing from the members; the reading is lenient
//! (a missing member takes its default) so that a ticket written by an older kare restores.

use super::TicketKind;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Time stamps in `detail` are RFC 3339 with milliseconds and `Z`, as they always were.
pub(crate) mod millis {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        DateTime::<Utc>::deserialize(d)
    }
}

fn epoch() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

/// `momentary` or `sustained` (IEEE 1366; the threshold is `[rules] momentary_max_s`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutageClass {
    /// Up to `momentary_max_s`.
    Momentary,
    /// Longer.
    Sustained,
}

impl OutageClass {
    /// snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutageClass::Momentary => "momentary",
            OutageClass::Sustained => "sustained",
        }
    }
}

/// `repair` and `planned` tickets: one outage.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OutageDetail {
    /// Source → how it saw the loss (`half-cycle`, `UPS input …`, `meter (coarse, 5 s polls)`).
    pub seen_by: BTreeMap<String, String>,
    /// Failures counted on this ticket (a flap reopens it: +1).
    pub failures: u32,
    /// The UPS said the appliance runs on battery.
    pub on_battery: bool,
    /// Once closed.
    pub classification: Option<OutageClass>,
    /// The announcement's reference, for a planned outage.
    pub planned_reference: Option<String>,
    /// Why this revision was made, when it says more than the title.
    pub note: Option<String>,
}

/// `generator` tickets: a mobile-generator request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GeneratorDetail {
    /// The repair ticket of the outage.
    pub outage_key: String,
    /// Size asked for, kVA.
    pub size_kva: f64,
    /// How it was sized.
    pub sizing: String,
    /// Where it connects.
    pub connection_point: String,
    /// The connection's rating, kVA.
    pub connection_kva: f64,
    /// The outage's start.
    #[serde(with = "millis")]
    pub outage_started: DateTime<Utc>,
}

impl Default for GeneratorDetail {
    fn default() -> Self {
        GeneratorDetail {
            outage_key: String::new(),
            size_kva: 0.0,
            sizing: String::new(),
            connection_point: String::new(),
            connection_kva: 0.0,
            outage_started: epoch(),
        }
    }
}

/// The latest disturbance on a power-quality notice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PqEvent {
    /// Source name.
    pub source: String,
    /// `dip` or `swell`.
    pub kind: String,
    /// Start.
    #[serde(with = "millis")]
    pub start: DateTime<Utc>,
    /// Duration, seconds.
    pub duration_s: f64,
    /// Residual or maximum, % of Udin.
    pub extreme_pct: f64,
}

impl Default for PqEvent {
    fn default() -> Self {
        PqEvent {
            source: String::new(),
            kind: String::new(),
            start: epoch(),
            duration_s: 0.0,
            extreme_pct: 0.0,
        }
    }
}

/// `pq_notice` tickets: one site-local day's dips and swells.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PqNoticeDetail {
    /// Kind (`dip`, `swell`) → how many that day.
    pub counts: BTreeMap<String, u32>,
    /// Deepest dip's residual, % of Udin.
    pub lowest_dip_pct: Option<f64>,
    /// Highest swell, % of Udin.
    pub highest_swell_pct: Option<f64>,
    /// The latest disturbance counted.
    pub last: PqEvent,
}

/// `engineering` tickets: repeated deep dips.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngineeringDetail {
    /// Starts of the deep dips within the window when the ticket was raised, and of every deep
    /// dip since while it is open.
    #[serde(with = "millis_list")]
    pub deep_dips: Vec<DateTime<Utc>>,
}

mod millis_list {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[DateTime<Utc>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            v.iter()
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<DateTime<Utc>>, D::Error> {
        Vec::<DateTime<Utc>>::deserialize(d)
    }
}

/// `maintenance` tickets: a silent sensor or meter, or an endpoint that cannot be delivered to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MaintenanceDetail {
    /// A sensor node or meter not answering.
    Source {
        /// Source name (`demo-node`, `meters/incomer`).
        source: String,
        /// Why it is thought silent.
        reason: String,
    },
    /// A delivery endpoint that gave up on a message.
    Delivery {
        /// Endpoint name from `[delivery]`.
        endpoint: String,
        /// The last failure.
        reason: String,
    },
}

/// A ticket's `detail`, by kind. Serialised untagged: the JSON is the inner struct's.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum TicketDetail {
    /// `repair` and `planned`.
    Outage(OutageDetail),
    /// `generator`.
    Generator(GeneratorDetail),
    /// `pq_notice`.
    PqNotice(PqNoticeDetail),
    /// `engineering`.
    Engineering(EngineeringDetail),
    /// `maintenance`.
    Maintenance(MaintenanceDetail),
}

impl TicketDetail {
    /// Reads the `detail` of a ticket of `kind` (as stored, or as delivered).
    pub fn from_json(kind: TicketKind, v: &Value) -> Result<TicketDetail, serde_json::Error> {
        // An absent detail reads as the kind's defaults.
        let v = if v.is_null() {
            Value::Object(Default::default())
        } else {
            v.clone()
        };
        Ok(match kind {
            TicketKind::Repair | TicketKind::Planned => {
                TicketDetail::Outage(serde_json::from_value(v)?)
            }
            TicketKind::Generator => TicketDetail::Generator(serde_json::from_value(v)?),
            TicketKind::PqNotice => TicketDetail::PqNotice(serde_json::from_value(v)?),
            TicketKind::Engineering => TicketDetail::Engineering(serde_json::from_value(v)?),
            TicketKind::Maintenance => TicketDetail::Maintenance(serde_json::from_value(v)?),
        })
    }

    /// The outage's classification, for closed repair and planned tickets.
    pub fn classification(&self) -> Option<OutageClass> {
        match self {
            TicketDetail::Outage(o) => o.classification,
            _ => None,
        }
    }

    /// The detail as a JSON value (what is delivered).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}
