//! Events as kare reports them: the core's characterisation turned into wall-clock times,
//! percentages of Udin and the curves and tables engineers read (ITIC, SEMI F47, EN 50160,
//! IEEE 1159). One function serves `kare replay` and the live stream, so both say the same.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use kare_firmware::classify::{self, En50160Cell, Ieee1159, Itic, SemiF47};
use kare_firmware::detector::{Event, EventKind};
use kare_firmware::urms::{Pos, POS_ONE};
use serde_json::{json, Value};

/// How to turn sample-clock positions into time: the instant of sample 0, and the rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Clock {
    /// UTC instant of sample 0.
    pub start: DateTime<Utc>,
    /// Samples per second.
    pub sample_rate_hz: f64,
    /// Declared voltage, for percentages.
    pub udin: f64,
    /// Nominal frequency, for IEEE 1159 cycle counts.
    pub nominal_hz: f64,
}

impl Clock {
    /// Seconds after sample 0 of a position.
    pub fn seconds(&self, pos: Pos) -> f64 {
        pos as f64 / POS_ONE as f64 / self.sample_rate_hz
    }

    /// UTC instant of a position.
    pub fn instant(&self, pos: Pos) -> DateTime<Utc> {
        self.start + Duration::nanoseconds((self.seconds(pos) * 1e9).round() as i64)
    }
}

/// One event as `kare replay` reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportedEvent {
    /// Dip, swell or interruption.
    pub kind: EventKind,
    /// Event start in UTC (from the recording's start time stamp).
    pub start: DateTime<Utc>,
    /// Seconds from the first sample to the event start.
    pub offset_s: f64,
    /// Duration in seconds; `None` when the event is still in progress at the end of the data.
    pub duration_s: Option<f64>,
    /// Residual (dip, interruption) or maximum (swell) Urms(1/2), % of Udin.
    pub extreme_pct: f64,
    /// Channel on which the extreme was seen.
    pub worst_channel: String,
    /// Extreme per channel, % of Udin (`None` for a channel that reported nothing during it).
    pub channel_extremes_pct: Vec<(String, Option<f64>)>,
    /// ITIC verdict.
    pub itic: Itic,
    /// SEMI F47 verdict (`None` for swells).
    pub semi_f47: Option<SemiF47>,
    /// EN 50160 table cell, if the event falls in the table.
    pub en50160: Option<En50160Cell>,
    /// IEEE 1159 duration category.
    pub ieee1159: Ieee1159,
}

/// Characterises a core event. An event still open is judged on how long it has lasted up to
/// `until` (the end of the data, or now).
pub fn characterise(e: &Event, clock: &Clock, names: &[String], until: Pos) -> ReportedEvent {
    let offset_s = clock.seconds(e.start);
    let duration_s = e.end.map(|end| clock.seconds(end - e.start));
    let judged_s = clock.seconds(e.length(until)) as f32;
    let pct = |v: f32| v as f64 / clock.udin * 100.0;
    let extreme_pct = pct(e.extreme);
    let name = |i: usize| names.get(i).cloned().unwrap_or_else(|| format!("ch{i}"));
    ReportedEvent {
        kind: e.kind,
        start: clock.instant(e.start),
        offset_s,
        duration_s,
        extreme_pct,
        worst_channel: name(e.worst_channel as usize),
        channel_extremes_pct: (0..names.len())
            .map(|i| {
                let v = e.channel_extremes[i];
                (name(i), (!v.is_nan()).then(|| pct(v)))
            })
            .collect(),
        itic: classify::itic(e.kind, judged_s, extreme_pct as f32),
        semi_f47: classify::semi_f47(e.kind, judged_s, extreme_pct as f32),
        en50160: classify::en50160_cell(e.kind, judged_s, extreme_pct as f32),
        ieee1159: classify::ieee1159(e.kind, judged_s, clock.nominal_hz as f32),
    }
}

/// The kind of event, as a name, for sorting dips before swells before interruptions.
pub fn kind_order(k: EventKind) -> u8 {
    match k {
        EventKind::Dip => 0,
        EventKind::Swell => 1,
        EventKind::Interruption => 2,
    }
}

/// Rounds to `digits` decimals, so that the output does not carry float noise.
pub fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

/// The event's start as RFC 3339 UTC with microseconds.
pub fn timestamp(e: &ReportedEvent) -> String {
    e.start.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// One event as a JSON object: the contract's fields first, then the additions.
pub fn event_json(e: &ReportedEvent) -> Value {
    let extremes: serde_json::Map<String, Value> = e
        .channel_extremes_pct
        .iter()
        .map(|(n, v)| {
            (
                n.clone(),
                v.map(|v| json!(round(v, 2))).unwrap_or(Value::Null),
            )
        })
        .collect();
    json!({
        "kind": e.kind.as_str(),
        "start": timestamp(e),
        "offset_s": round(e.offset_s, 6),
        "duration_s": e.duration_s.map(|d| round(d, 6)),
        "extreme_pct": round(e.extreme_pct, 2),
        "worst_channel": e.worst_channel,
        "itic": e.itic.as_str(),
        "semi_f47": e.semi_f47.map(|s| s.as_str()),
        "en50160": e.en50160.map(|c| json!({"row": c.row, "column": c.column})),
        "ieee1159": e.ieee1159.as_str(),
        "channel_extremes_pct": extremes,
    })
}
