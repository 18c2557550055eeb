//! The values that go into the store and come out of it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// An event to insert or update. The same `(source, source_key)` is the same event: the open
/// event written at its start is updated in place when it ends.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    /// Source name (`feeder-1`, `meters/incomer`, `ups`).
    pub source: String,
    /// The source's own key for the event, stable from its start to its end; e.g.
    /// `interruption@2026-11-26T08:15:00.123456Z` (kind and start time: a detector's own
    /// numbering restarts with the service, a start time does not).
    pub source_key: String,
    /// Site the source belongs to, for per-customer reports.
    pub site_id: Option<String>,
    /// `dip`, `swell`, `interruption`, `sensor_lost`, `outage_coarse`...
    pub kind: String,
    /// Start.
    pub start: DateTime<Utc>,
    /// End; `None` while open.
    pub end: Option<DateTime<Utc>>,
    /// Duration, seconds; `None` while open.
    pub duration_s: Option<f64>,
    /// Residual (dip, interruption) or maximum (swell), % of Udin.
    pub extreme_pct: Option<f64>,
    /// Channel of the extreme.
    pub worst_channel: Option<String>,
    /// Still in progress.
    pub open: bool,
    /// The event exactly as the JSON API shows it.
    pub json: Value,
    /// The Urms(1/2) profile, once complete. `None` leaves a stored profile as it is.
    pub profile_json: Option<Value>,
    /// A waveform capture (COMTRADE `.cff` or raw). `None` leaves a stored one as it is.
    pub waveform: Option<Vec<u8>>,
}

/// An event as stored. The waveform is not loaded with it ([`crate::store::Store::event_waveform`]).
#[derive(Clone, Debug, PartialEq)]
pub struct EventRow {
    /// Row id, stable for the life of the row.
    pub id: i64,
    /// Source name.
    pub source: String,
    /// The source's key.
    pub source_key: String,
    /// Site.
    pub site_id: Option<String>,
    /// Kind.
    pub kind: String,
    /// Start.
    pub start: DateTime<Utc>,
    /// End.
    pub end: Option<DateTime<Utc>>,
    /// Duration, seconds.
    pub duration_s: Option<f64>,
    /// Extreme, % of Udin.
    pub extreme_pct: Option<f64>,
    /// Channel of the extreme.
    pub worst_channel: Option<String>,
    /// In progress.
    pub open: bool,
    /// API JSON.
    pub json: Value,
    /// RMS profile.
    pub profile_json: Option<Value>,
    /// Whether a waveform is stored.
    pub has_waveform: bool,
    /// First written.
    pub created_at: DateTime<Utc>,
    /// Last written.
    pub updated_at: DateTime<Utc>,
}

/// A ticket's state: the rules' type, stored by its name (`open`, `closed`, `cancelled`). One
/// type for rules, store, payload and API.
pub use crate::actions::rules::TicketState;

/// How an outbox row is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// HTTP POST of the JSON payload.
    Webhook,
    /// E-mail over SMTP.
    Email,
    /// SMS through an HTTP gateway.
    Sms,
}

impl Channel {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Webhook => "webhook",
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "webhook" => Ok(Channel::Webhook),
            "email" => Ok(Channel::Email),
            "sms" => Ok(Channel::Sms),
            other => Err(format!("unknown channel `{other}`")),
        }
    }
}

/// Where one revision of a ticket goes, and what is sent there.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliverTo {
    /// Channel (must match the endpoint's kind in `[delivery]`).
    pub channel: Channel,
    /// Endpoint name from `[delivery]`.
    pub endpoint: String,
    /// The payload: the [`crate::actions::delivery::TicketPayload`] as JSON (a webhook sends any JSON;
    /// e-mail and SMS render theirs from a `TicketPayload` and refuse anything else). When it is
    /// an object, the store sets its `id`, `key` and `revision` members, which the caller
    /// cannot know before the ticket is saved.
    pub payload_json: Value,
}

/// A ticket to create or update, with the deliveries of this revision.
#[derive(Clone, Debug, PartialEq)]
pub struct TicketWrite {
    /// Idempotency key: the same key is the same ticket, across updates, retries and restarts.
    pub key: String,
    /// `repair`, `generator`, `pq_notice`, `engineering`, `maintenance`,
    /// `planned`: free text to the store, so the rules can add kinds without a migration.
    pub kind: String,
    /// State after this change.
    pub state: TicketState,
    /// `P1` … `P4`.
    pub priority: String,
    /// Site id.
    pub site_id: String,
    /// Customer id.
    pub customer_id: String,
    /// One line for a person.
    pub title: String,
    /// The ticket's full body (normally the [`crate::actions::delivery::TicketPayload`] as JSON; its
    /// `id`, `key` and `revision` members are set by the store as for payloads).
    pub body_json: Value,
    /// The event that raised it.
    pub event_id: Option<i64>,
    /// When the ticket's subject began; `None`: now, on creation (and kept on updates).
    pub opened_at: Option<DateTime<Utc>>,
    /// When it ended; `None` on a closed or cancelled ticket means now. Cleared when open.
    pub closed_at: Option<DateTime<Utc>>,
    /// Duration, seconds.
    pub duration_s: Option<f64>,
    /// Deliveries of this revision: one outbox row each. Nothing is queued when the save
    /// changes nothing (same fields as the stored revision).
    pub deliver_to: Vec<DeliverTo>,
}

/// What [`crate::store::Store::save_ticket`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedTicket {
    /// Ticket row id.
    pub id: i64,
    /// Revision now stored (1 on creation, +1 on every change).
    pub revision: i64,
    /// Whether anything changed (created or updated); `false`: an identical re-save.
    pub changed: bool,
    /// The outbox rows queued, one per [`TicketWrite::deliver_to`] entry, in order.
    pub outbox_ids: Vec<i64>,
}

/// A ticket as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct TicketRow {
    /// Row id.
    pub id: i64,
    /// Idempotency key.
    pub key: String,
    /// Revision.
    pub revision: i64,
    /// Kind.
    pub kind: String,
    /// State.
    pub state: TicketState,
    /// Priority.
    pub priority: String,
    /// Site id.
    pub site_id: String,
    /// Customer id.
    pub customer_id: String,
    /// Title.
    pub title: String,
    /// Opened.
    pub opened_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Closed or cancelled.
    pub closed_at: Option<DateTime<Utc>>,
    /// Duration, seconds.
    pub duration_s: Option<f64>,
    /// Body.
    pub body_json: Value,
    /// Event that raised it.
    pub event_id: Option<i64>,
}

/// An outbox row's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Waiting for its first or next attempt.
    Pending,
    /// The endpoint accepted it.
    Delivered,
    /// Given up: a permanent refusal, or still failing after `max_age` (a dead letter).
    Dead,
}

impl OutboxState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Delivered => "delivered",
            OutboxState::Dead => "dead",
        }
    }
}

impl FromStr for OutboxState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pending" => Ok(OutboxState::Pending),
            "delivered" => Ok(OutboxState::Delivered),
            "dead" => Ok(OutboxState::Dead),
            other => Err(format!("unknown outbox state `{other}`")),
        }
    }
}

/// One delivery of one ticket revision to one endpoint: everything needed to (re)send it.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxRow {
    /// Row id.
    pub id: i64,
    /// Ticket row id.
    pub ticket_id: i64,
    /// The ticket's idempotency key.
    pub ticket_key: String,
    /// The ticket's kind (for dead-letter handling).
    pub ticket_kind: String,
    /// The ticket revision this row delivers.
    pub revision: i64,
    /// Channel.
    pub channel: Channel,
    /// Endpoint name.
    pub endpoint: String,
    /// The payload, parsed.
    pub payload_json: Value,
    /// The payload exactly as stored: what a webhook sends, byte for byte, on every attempt.
    pub payload_text: String,
    /// `<ticket key>:<revision>`: the same on every attempt, across restarts.
    pub idempotency_key: String,
    /// Queued.
    pub created_at: DateTime<Utc>,
    /// Not to be attempted before.
    pub next_attempt_at: DateTime<Utc>,
    /// Attempts so far.
    pub attempts: i64,
    /// State.
    pub state: OutboxState,
    /// Detail of the last failed attempt.
    pub last_error: Option<String>,
    /// When the endpoint accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// What to do with an outbox row after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Accepted: the row is done.
    Delivered,
    /// Failed; try again at this time.
    RetryAt(DateTime<Utc>),
    /// Failed for good: the row becomes a dead letter.
    Dead,
}

/// One attempt to deliver an outbox row, to be recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    /// The row.
    pub outbox_id: i64,
    /// When the attempt finished.
    pub at: DateTime<Utc>,
    /// What happened, for a person: `HTTP 503 Service Unavailable`, `250 OK queued`...
    pub detail: String,
    /// How long it took.
    pub latency: Duration,
    /// What follows.
    pub outcome: AttemptOutcome,
}

/// An attempt as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct AttemptRow {
    /// Row id.
    pub id: i64,
    /// The outbox row.
    pub outbox_id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Delivered.
    pub ok: bool,
    /// Detail.
    pub detail: String,
    /// Milliseconds.
    pub latency_ms: i64,
}

/// What retention removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Closed events removed.
    pub events: u64,
    /// Closed or cancelled tickets removed.
    pub tickets: u64,
    /// Delivered outbox rows removed.
    pub outbox: u64,
    /// Delivery attempts removed with them.
    pub attempts: u64,
    /// Live data before, bytes (pages in use × page size).
    pub bytes_before: u64,
    /// Live data after, bytes.
    pub bytes_after: u64,
    /// Still above the size limit with nothing left that may be removed (only open tickets,
    /// undelivered outbox rows, open events and what they refer to remain).
    pub still_over_limit: bool,
}

impl PruneReport {
    /// Whether anything was removed.
    pub fn removed_anything(&self) -> bool {
        self.events + self.tickets + self.outbox + self.attempts > 0
    }
}

impl fmt::Display for PruneReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pruned {} events, {} tickets, {} delivered outbox rows ({} attempts); {} → {} kB{}",
            self.events,
            self.tickets,
            self.outbox,
            self.attempts,
            self.bytes_before / 1024,
            self.bytes_after / 1024,
            if self.still_over_limit {
                "; still over max_db_mb with nothing more that may be removed"
            } else {
                ""
            }
        )
    }
}

/// The site as the reports need it, saved at every start (`site` table): the header of a report
/// read from a store alone (`kare report --store DIR`), and the settings its figures depend on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SiteRecord {
    /// Site id.
    pub id: String,
    /// Customer id.
    pub customer_id: String,
    /// Customer name.
    pub customer_name: String,
    /// Service tier (`critical`, `important`, `standard`).
    pub tier: String,
    /// Street address.
    pub address: String,
    /// Nominal supply voltage, kV: picks the GB/T 12325 and GB/T 14549 limits.
    pub nominal_kv: f64,
    /// Minutes east of UTC: where the site's days and months begin.
    pub utc_offset_minutes: i32,
    /// The momentary / sustained threshold, seconds (`[rules] momentary_max_s`).
    pub momentary_max_s: f64,
    /// Nominal frequency, Hz.
    pub nominal_hz: f64,
    /// The customer's power-factor standard for the tariff adjustment (0.90, 0.85, 0.80).
    pub pf_standard: f64,
    /// The account manager's name, for the report's footer.
    pub account_manager: String,
}

impl Default for SiteRecord {
    fn default() -> Self {
        SiteRecord {
            id: String::new(),
            customer_id: String::new(),
            customer_name: String::new(),
            tier: String::new(),
            address: String::new(),
            nominal_kv: 0.0,
            utc_offset_minutes: 0,
            momentary_max_s: 300.0,
            nominal_hz: 50.0,
            pf_standard: 0.90,
            account_manager: String::new(),
        }
    }
}

/// One IEC 61000-4-30 10-minute aggregate of one channel's Urms (table `aggregates`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AggregateRow {
    /// Sensor node (source name).
    pub source: String,
    /// Channel name (`VA`).
    pub channel: String,
    /// Interval start (a multiple of `seconds` since the epoch, UTC).
    pub start: DateTime<Utc>,
    /// Interval length, seconds (600).
    pub seconds: f64,
    /// The source's declared voltage, V.
    pub udin_v: f64,
    /// Mean of the half-cycle values (RMS of RMS would be the standard's; see ARCHITECTURE), V.
    pub mean_v: f64,
    /// Lowest Urms(1/2), V.
    pub min_v: f64,
    /// Highest Urms(1/2), V.
    pub max_v: f64,
    /// Urms(1/2) windows folded in.
    pub windows: u32,
    /// A dip, swell or interruption overlapped the interval: left out of compliance statistics.
    pub flagged: bool,
}

/// One 10-second frequency value of one source (table `frequency`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrequencyRow {
    /// Sensor node.
    pub source: String,
    /// Interval start.
    pub start: DateTime<Utc>,
    /// Interval length, seconds (10).
    pub seconds: f64,
    /// Nominal frequency, Hz.
    pub nominal_hz: f64,
    /// Mean, Hz.
    pub mean_hz: f64,
    /// Lowest, Hz.
    pub min_hz: f64,
    /// Highest, Hz.
    pub max_hz: f64,
    /// Windows folded in.
    pub windows: u32,
    /// An event overlapped the interval.
    pub flagged: bool,
}

/// One meter's 15-minute interval (table `meter_intervals`): registers at its end, demand over it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeterIntervalRow {
    /// Meter bus (source name).
    pub source: String,
    /// Device on the bus.
    pub device: String,
    /// Interval start.
    pub start: DateTime<Utc>,
    /// Interval length, seconds (900).
    pub seconds: f64,
    /// Import active energy register, last read in the interval, kWh.
    pub import_kwh: Option<f64>,
    /// Export active energy register, kWh.
    pub export_kwh: Option<f64>,
    /// Import reactive energy register, kvarh.
    pub import_kvarh: Option<f64>,
    /// Mean active power read in the interval, kW (the interval's demand).
    pub demand_kw: Option<f64>,
    /// Highest active power read in the interval, kW.
    pub max_kw: Option<f64>,
    /// Last total power factor read.
    pub power_factor: Option<f64>,
    /// Highest voltage THD of any phase, %.
    pub thd_u_pct: Option<f64>,
    /// Polls folded in.
    pub samples: u32,
}

/// Which events a page of the event list holds ([`crate::store::Store::events_page`]). Newest
/// first by id (the store's id is the order events were first recorded in); keyset paging, so
/// a page does not shift when new events arrive while someone reads the older ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventFilter {
    /// Only events overlapping `[from, to)`: ending after `from` (or still open).
    pub from: Option<DateTime<Utc>>,
    /// Only events that started before `to`.
    pub to: Option<DateTime<Utc>>,
    /// Only these kinds (`dip`, `swell` …); empty: every kind.
    pub kinds: Vec<String>,
    /// Only this source.
    pub source: Option<String>,
    /// Most events in the page (at least 1 is returned when any match).
    pub limit: usize,
    /// The page of events older than this id (the next page after one ending at this id).
    pub before_id: Option<i64>,
    /// The page of events just newer than this id (the page before one starting at this id).
    pub after_id: Option<i64>,
}

impl Default for EventFilter {
    fn default() -> Self {
        EventFilter {
            from: None,
            to: None,
            kinds: Vec::new(),
            source: None,
            limit: 100,
            before_id: None,
            after_id: None,
        }
    }
}
