//! The report as data: what `kare report --format json` prints (the contract in design.md),
//! what the CSV tables flatten and what the page and the printable HTML render. Every figure is
//! computed once, here, never in a template.
//!
//! Keys named in the contract keep their meaning; the others may grow.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One site's key-account service report for one period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Who the report is for.
    pub site: SiteSummary,
    /// `[from, to)`.
    pub period: PeriodSummary,
    /// Supply continuity (IEEE 1366 for one customer; DL/T 836.1 names beside).
    pub supply: Supply,
    /// Dips and swells: EN 50160 tables, ITIC and SEMI F47.
    pub power_quality: PowerQuality,
    /// Steady-state voltage, frequency and THD against GB/T and EN 50160.
    pub steady_state: SteadyState,
    /// Energy, demand and power factor from the meters.
    pub energy: Energy,
    /// Repair tickets, generator requests and planned outages.
    pub service: Service,
    /// Plain-language notes on what the period lacks (no data, a store gap), in English; the
    /// page translates the known ones by their `code`.
    pub notes: Vec<Note>,
    /// When the report was made.
    #[serde(with = "crate::report::model::ts")]
    pub generated_at: DateTime<Utc>,
}

/// A remark on the report's data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Note {
    /// Stable code (`no-data`, `no-events`, `no-meter`, `no-aggregates`, `open-interruption`,
    /// `period-clipped`…).
    pub code: String,
    /// English text.
    pub text: String,
}

/// The report's header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SiteSummary {
    /// Site id.
    pub id: String,
    /// Customer name.
    pub customer: String,
    /// Service tier.
    pub tier: String,
    /// Customer id.
    pub customer_id: String,
    /// Address.
    pub address: String,
    /// Nominal voltage, kV.
    pub nominal_kv: f64,
    /// Account manager.
    pub account_manager: String,
}

/// The period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeriodSummary {
    /// Start, inclusive.
    #[serde(with = "ts")]
    pub from: DateTime<Utc>,
    /// End, exclusive: the period asked for, or the time of the report when that ends in the
    /// future (note `period-clipped`).
    #[serde(with = "ts")]
    pub to: DateTime<Utc>,
    /// Length, hours.
    pub hours: f64,
}

/// `momentary` or `sustained`.
pub use crate::actions::rules::OutageClass;

/// Supply continuity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Supply {
    /// Momentary / sustained threshold, seconds.
    pub momentary_max_s: f64,
    /// One per loss of supply across witnesses, clipped to the period, oldest first.
    pub interruptions: Vec<Interruption>,
    /// Sustained, planned ones included (IEEE 1366 SAIFI for one customer).
    pub sustained_interruptions: u32,
    /// Momentary interruptions (operations).
    pub momentary_interruptions: u32,
    /// Momentary events (MAIFIe: a reclosing sequence counts once, in the period it began in;
    /// planned interruptions are left out).
    pub momentary_events: u32,
    /// Sum of sustained durations, minutes, planned included.
    pub sustained_minutes: f64,
    /// Every interruption's duration summed, minutes (momentary too): time without supply.
    pub minutes_without_supply: f64,
    /// Longest interruption, seconds (0 when none).
    pub longest_interruption_s: f64,
    /// ASAI / 供电可靠率 RS-1 for this customer, %.
    pub availability_pct: f64,
    /// 用户平均停电时间 AIHC-1 for this customer: hours of sustained interruption.
    pub aihc1_h: f64,
    /// Planned outages, counted apart (they are in the totals above too, as RS-1 counts them).
    pub planned: PlannedSummary,
    /// Sum of the interruptions' energy not supplied, kWh; `null` when no meter gave a demand.
    pub energy_not_supplied_kwh: Option<f64>,
}

/// Planned outages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedSummary {
    /// How many.
    pub count: u32,
    /// Minutes, summed.
    pub minutes: f64,
}

/// One loss of supply at the site.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interruption {
    /// Start (clipped to the period).
    #[serde(with = "ts")]
    pub start: DateTime<Utc>,
    /// End (clipped to the period; the period's end when still open).
    #[serde(with = "ts")]
    pub end: DateTime<Utc>,
    /// Seconds.
    pub duration_s: f64,
    /// By `momentary_max_s`.
    pub class: OutageClass,
    /// Inside an announced planned-outage window.
    pub planned: bool,
    /// The store id of the event that timed it (the half-cycle witness's when one saw it).
    pub event_id: Option<i64>,
    /// The repair (or planned) ticket's key.
    pub ticket: Option<String>,
    /// Demand just before × duration, kWh; `null` without a meter demand.
    pub energy_not_supplied_kwh: Option<f64>,
    /// Sources that saw it.
    pub witnesses: Vec<String>,
    /// `half-cycle` or `meter` (coarse, poll-bracketed).
    pub timed_by: String,
    /// Still without supply at the period's end (or at the store's last write).
    pub open: bool,
    /// Cut by the period's start or end.
    pub clipped: bool,
    /// Index (0-based) of the momentary event (reclosing sequence) it belongs to, for unplanned
    /// momentary ones; `null` for a member of a sequence that began before the period (that
    /// period counts it).
    pub momentary_event: Option<u32>,
}

/// An EN 50160 table cell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    /// Row label (`70>u>=40`).
    pub row: String,
    /// Column label (`200-500ms`).
    pub column: String,
}

/// An EN 50160 count table: rows and columns in the standard's order, every cell present.
/// Serialises as `{row: {column: count}}` in that order (design.md).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CountTable {
    /// Row labels.
    pub rows: Vec<String>,
    /// Column labels.
    pub columns: Vec<String>,
    /// `counts[row][column]`.
    pub counts: Vec<Vec<u32>>,
}

impl Serialize for CountTable {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        struct Row<'a>(&'a [String], &'a [u32]);
        impl Serialize for Row<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.len()))?;
                for (c, n) in self.0.iter().zip(self.1) {
                    m.serialize_entry(c, n)?;
                }
                m.end()
            }
        }
        let mut m = s.serialize_map(Some(self.rows.len()))?;
        for (r, counts) in self.rows.iter().zip(&self.counts) {
            m.serialize_entry(r, &Row(&self.columns, counts))?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for CountTable {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // serde_json keeps the order (feature `preserve_order`), so rows and columns come back
        // in the standard's order.
        let m = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let mut t = CountTable::default();
        for (r, cols) in m {
            let cols = cols
                .as_object()
                .ok_or_else(|| serde::de::Error::custom("an EN 50160 row is an object"))?;
            if t.columns.is_empty() {
                t.columns = cols.keys().cloned().collect();
            }
            t.rows.push(r);
            t.counts.push(
                t.columns
                    .iter()
                    .map(|c| cols.get(c).and_then(|v| v.as_u64()).unwrap_or(0) as u32)
                    .collect(),
            );
        }
        Ok(t)
    }
}

/// Dips and swells.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PowerQuality {
    /// Dips, not counting one that contains an interruption.
    pub dips: u32,
    /// Swells.
    pub swells: u32,
    /// Of those, below the ITIC curve's lower edge (dips).
    pub below_itic: u32,
    /// Of those, above the ITIC curve's upper edge (swells).
    pub above_itic: u32,
    /// Of those, below SEMI F47.
    pub below_semi_f47: u32,
    /// EN 50160 dip table.
    pub en50160_dips: CountTable,
    /// EN 50160 swell table.
    pub en50160_swells: CountTable,
    /// Every dip and swell counted, oldest first.
    pub events: Vec<PqEvent>,
    /// The worst few (deepest dips, highest swells), with their RMS profiles for thumbnails.
    pub worst: Vec<WorstEvent>,
}

/// A dip or swell as the report lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PqEvent {
    /// Store id (the page links `/events/{id}`).
    pub id: i64,
    /// `dip` or `swell`.
    pub kind: String,
    /// Start.
    #[serde(with = "ts")]
    pub start: DateTime<Utc>,
    /// Seconds (`null` while open).
    pub duration_s: Option<f64>,
    /// Residual or maximum, % of Udin.
    pub extreme_pct: Option<f64>,
    /// Channel of the extreme.
    pub worst_channel: Option<String>,
    /// `inside`, `below`, `above`.
    pub itic: Option<String>,
    /// `inside`, `below`, `null` for swells.
    pub semi_f47: Option<String>,
    /// Its EN 50160 cell; `null` outside the table (shorter than 10 ms, longer than 60 s).
    pub en50160: Option<Cell>,
    /// Source.
    pub source: String,
}

/// A worst event with its Urms(1/2) profile, thinned for a thumbnail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorstEvent {
    /// Store id.
    pub id: i64,
    /// Seconds from the event's start, one per point.
    pub t_s: Vec<f64>,
    /// Channel name → % of Udin per point (the lowest on any channel for dips; thinned by
    /// keeping each bucket's extreme, so a thumbnail never hides the residual).
    pub channels: Vec<(String, Vec<f64>)>,
}

/// Steady state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SteadyState {
    /// Supply voltage, when 10-minute aggregates exist.
    pub voltage: Option<VoltageCompliance>,
    /// Frequency, when 10-second values exist.
    pub frequency: Option<FrequencyCompliance>,
    /// Voltage THD, when a meter gives it.
    pub thd: Option<ThdCompliance>,
}

/// Supply voltage against GB/T 12325 and EN 50160.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VoltageCompliance {
    /// Which GB/T 12325 limit applies (`35kV+`, `20kV-3ph`, `220V-1ph`).
    pub gbt12325_level: String,
    /// Lower limit, % deviation (−7, −10).
    pub gbt12325_low_pct: f64,
    /// Upper limit, % deviation (+7). For 35 kV+ the limit is on the sum of the absolute
    /// deviations (10 %, `gbt12325_deviation_sum_pct`); `low = -10`, `high = +10` there only
    /// bound each interval.
    pub gbt12325_high_pct: f64,
    /// 10-min intervals (all channels) in the period.
    pub intervals: u32,
    /// Of those, flagged and left out.
    pub flagged: u32,
    /// Share of the unflagged intervals within the GB/T 12325 limits, %: the worst channel's
    /// (each channel is judged on its own; see `channels`). At 35 kV+ the share within ±10 %
    /// of the worst channel by sum: informative only, the standard's test is the sum.
    pub gbt12325_in_limits_pct: f64,
    /// The channel whose GB/T 12325 share that is (`source/channel`); at 35 kV+ the channel
    /// with the largest deviation sum.
    pub gbt12325_worst_channel: Option<String>,
    /// 35 kV+ only: the largest channel's (largest positive deviation + |largest negative
    /// deviation|) of its unflagged 10-min means, %; `null` at lower levels.
    pub gbt12325_deviation_sum_pct: Option<f64>,
    /// 35 kV+ only: every channel's sum at most 10 %; `null` at lower levels.
    pub gbt12325_sum_within_limit: Option<bool>,
    /// Share of unflagged 10-min means within ±10 % of Udin (EN 50160 asks 95 %), %: the
    /// worst channel's.
    pub en50160_in_limits_pct: f64,
    /// EN 50160: every channel at least 95 %.
    pub en50160_compliant: bool,
    /// The channel with the lowest EN 50160 share (`source/channel`).
    pub worst_channel: Option<String>,
    /// Per channel: lowest and highest 10-min mean, % of Udin, and its shares.
    pub channels: Vec<ChannelRange>,
}

/// One channel's range of 10-minute means.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelRange {
    /// `source/channel`.
    pub channel: String,
    /// Lowest unflagged 10-min mean, % of Udin.
    pub min_pct: f64,
    /// Highest, % of Udin.
    pub max_pct: f64,
    /// Unflagged intervals.
    pub intervals: u32,
    /// Share of them within the GB/T 12325 limits, %.
    pub gbt12325_in_limits_pct: f64,
    /// Share of them within ±10 % of Udin (EN 50160), %.
    pub en50160_in_limits_pct: f64,
    /// 35 kV+ only: largest positive deviation + |largest negative deviation|, % (GB/T 12325
    /// asks at most 10 %); `null` at lower levels.
    pub gbt12325_deviation_sum_pct: Option<f64>,
}

/// Frequency against GB/T 15945 (±0.2 Hz) and EN 50160 (±1 % for 99.5 % of a year).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrequencyCompliance {
    /// Nominal, Hz.
    pub nominal_hz: f64,
    /// GB/T 15945 limit, Hz (0.2).
    pub gbt15945_limit_hz: f64,
    /// 10-s values.
    pub intervals: u32,
    /// Flagged, left out.
    pub flagged: u32,
    /// Share within GB/T 15945, %.
    pub gbt15945_in_limits_pct: f64,
    /// Share within ±1 %, %.
    pub en50160_in_limits_pct: f64,
    /// Lowest 10-s mean, Hz.
    pub min_hz: f64,
    /// Highest 10-s mean, Hz.
    pub max_hz: f64,
}

/// Voltage THD against GB/T 14549.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThdCompliance {
    /// Limit for the nominal voltage, %.
    pub limit_pct: f64,
    /// 15-min values.
    pub intervals: u32,
    /// Highest, %.
    pub max_pct: f64,
    /// 95th percentile, % (the standard judges the 95 % value).
    pub p95_pct: f64,
    /// Share within the limit, %.
    pub in_limits_pct: f64,
}

/// Energy from the meters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Energy {
    /// `source/device` of the meters counted.
    pub meters: Vec<String>,
    /// Import energy per site-local day, kWh (register differences).
    pub days: Vec<DayEnergy>,
    /// Import energy over the period, kWh.
    pub total_kwh: Option<f64>,
    /// Highest 15-min demand, kW.
    pub peak_demand_kw: Option<f64>,
    /// Start of that interval.
    #[serde(with = "opt_ts")]
    pub peak_at: Option<DateTime<Utc>>,
    /// Monthly average power factor per site-local calendar month.
    pub months: Vec<MonthPowerFactor>,
}

/// One day's energy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DayEnergy {
    /// Site-local date, `YYYY-MM-DD`.
    pub date: String,
    /// kWh.
    pub kwh: f64,
}

/// One month's average power factor (《功率因数调整电费办法》).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MonthPowerFactor {
    /// `YYYY-MM`.
    pub month: String,
    /// kWh in the month (inside the period).
    pub kwh: f64,
    /// kvarh.
    pub kvarh: f64,
    /// kWh / √(kWh² + kvarh²).
    pub power_factor: f64,
    /// The standard (0.90).
    pub standard: f64,
    /// At or above the standard.
    pub meets_standard: bool,
    /// Bill adjustment from the published table, % (+ raises the bill), when in its range.
    pub adjustment_pct: Option<f64>,
}

/// The service record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// Repair, generator and planned tickets in the period, oldest first.
    pub tickets: Vec<ServiceTicket>,
}

/// One ticket in the service record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceTicket {
    /// Idempotency key (what the desk knows it by).
    pub key: String,
    /// `repair`, `generator`, `planned`.
    pub kind: String,
    /// `open`, `closed`, `cancelled`.
    pub state: String,
    /// Title of its last revision.
    pub title: String,
    /// When the supply failed (the ticket's outage start).
    #[serde(with = "ts")]
    pub supply_failed: DateTime<Utc>,
    /// Milliseconds from the failure until the first delivery to the desk was accepted.
    pub desk_told_ms: Option<f64>,
    /// Restoration (repair) or cancellation (generator).
    #[serde(with = "opt_ts")]
    pub ended: Option<DateTime<Utc>>,
    /// Seconds from failure to end.
    pub duration_s: Option<f64>,
    /// Failures counted on it (a flapping supply).
    pub failures: Option<u32>,
    /// For repair tickets: when a generator was requested, and cancelled.
    #[serde(with = "opt_ts")]
    pub generator_requested: Option<DateTime<Utc>>,
    /// And cancelled.
    #[serde(with = "opt_ts")]
    pub generator_cancelled: Option<DateTime<Utc>>,
    /// A planned outage's reference.
    pub planned_reference: Option<String>,
}

/// RFC 3339 with milliseconds and `Z`, as everywhere in kare's JSON.
pub(crate) mod ts {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        DateTime::<Utc>::deserialize(d)
    }
}

/// [`ts`] for an optional time.
pub(crate) mod opt_ts {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<DateTime<Utc>>::deserialize(d)
    }
}
