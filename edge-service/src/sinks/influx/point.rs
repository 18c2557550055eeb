//! The point model and its line-protocol encoder. Pure: points in, bytes out.
//!
//! Escaping follows the line-protocol reference (InfluxDB 1.x, 2.x and 3.x agree on these):
//! - measurement: comma and space are escaped with a backslash;
//! - tag keys, tag values and field keys: comma, equals sign and space;
//! - string field values are double-quoted; double quote and backslash inside are escaped;
//! - integers carry an `i` suffix, floats are written in full (no exponent), booleans as
//!   `true` / `false`; time stamps are nanoseconds since 1970 (the writer asks for `precision=ns`).
//!
//! Two things line protocol cannot carry are removed rather than escaped, because 1.x and 2.x
//! parsers disagree on them: a newline (in any name or value: it ends the line) becomes a space,
//! and a backslash in a measurement, tag or field key becomes `/` (a trailing backslash would
//! escape the separator after it). Empty tag values are left out (the protocol forbids them), and
//! NaN or infinite floats are left out (no InfluxDB accepts them). Tags are written sorted by key,
//! as the reference recommends for write performance.

use super::error::EncodeError;
use chrono::{DateTime, Utc};
use std::borrow::Cow;
use std::fmt::Write as _;

/// What a point is, for the store-and-forward backlog: when the backlog reaches its bound the
/// oldest batches of the first class go first, and [`Class::Events`] never go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Fine-grained readings: 1-second aggregates, polled meter values, the appliance's health.
    /// Plentiful and replaceable by coarser data: evicted first.
    Readings,
    /// Urms(1/2) profiles around events: evicted only when no fine readings are left.
    Profile,
    /// Interval-meter data (15-minute energy and demand): evicted last of the readings, because
    /// energy not supplied and load profiles are computed from it.
    Interval,
    /// Events, event starts and tickets: never evicted.
    Events,
}

impl Class {
    /// Every class, in eviction order (the last is never evicted).
    pub const ALL: [Class; 4] = [
        Class::Readings,
        Class::Profile,
        Class::Interval,
        Class::Events,
    ];

    /// Stable number stored in the backlog.
    pub fn code(self) -> i64 {
        match self {
            Class::Readings => 0,
            Class::Profile => 1,
            Class::Interval => 2,
            Class::Events => 3,
        }
    }

    /// The class for a stored number (unknown numbers are kept as events: never evicted).
    pub fn from_code(code: i64) -> Class {
        match code {
            0 => Class::Readings,
            1 => Class::Profile,
            2 => Class::Interval,
            _ => Class::Events,
        }
    }

    /// Whether the backlog may evict batches of this class.
    pub fn evictable(self) -> bool {
        self != Class::Events
    }

    /// Lower-case name, for logs and stats.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Readings => "readings",
            Class::Profile => "profile",
            Class::Interval => "interval",
            Class::Events => "events",
        }
    }
}

/// A field value.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldValue {
    /// 64-bit float (left out when NaN or infinite).
    Float(f64),
    /// Signed integer, written with the `i` suffix.
    Int(i64),
    /// Boolean.
    Bool(bool),
    /// String, written quoted.
    Str(String),
}

impl From<f64> for FieldValue {
    fn from(v: f64) -> Self {
        FieldValue::Float(v)
    }
}
impl From<f32> for FieldValue {
    fn from(v: f32) -> Self {
        FieldValue::Float(v as f64)
    }
}
impl From<i64> for FieldValue {
    fn from(v: i64) -> Self {
        FieldValue::Int(v)
    }
}
impl From<u32> for FieldValue {
    fn from(v: u32) -> Self {
        FieldValue::Int(v as i64)
    }
}
impl From<u64> for FieldValue {
    fn from(v: u64) -> Self {
        // Counters never reach 2^63; saturate rather than wrap if one ever did.
        FieldValue::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<bool> for FieldValue {
    fn from(v: bool) -> Self {
        FieldValue::Bool(v)
    }
}
impl From<String> for FieldValue {
    fn from(v: String) -> Self {
        FieldValue::Str(v)
    }
}
impl From<&str> for FieldValue {
    fn from(v: &str) -> Self {
        FieldValue::Str(v.to_string())
    }
}

/// One point: measurement, tags, fields, time, and its backlog class.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Measurement name.
    pub measurement: Cow<'static, str>,
    /// Tags (indexed; bounded values only, see `dashboards/README.md`).
    pub tags: Vec<(Cow<'static, str>, String)>,
    /// Fields (at least one must be writable).
    pub fields: Vec<(Cow<'static, str>, FieldValue)>,
    /// Time stamp.
    pub time: DateTime<Utc>,
    /// Backlog class.
    pub class: Class,
}

impl Point {
    /// A point with no tags or fields yet.
    pub fn new(
        measurement: impl Into<Cow<'static, str>>,
        class: Class,
        time: DateTime<Utc>,
    ) -> Self {
        Point {
            measurement: measurement.into(),
            tags: Vec::new(),
            fields: Vec::new(),
            time,
            class,
        }
    }

    /// Adds a tag.
    pub fn tag(mut self, key: impl Into<Cow<'static, str>>, value: impl Into<String>) -> Self {
        self.tags.push((key.into(), value.into()));
        self
    }

    /// Adds a field.
    pub fn field(
        mut self,
        key: impl Into<Cow<'static, str>>,
        value: impl Into<FieldValue>,
    ) -> Self {
        self.fields.push((key.into(), value.into()));
        self
    }

    /// Adds a field when there is a value.
    pub fn field_opt<V: Into<FieldValue>>(
        self,
        key: impl Into<Cow<'static, str>>,
        value: Option<V>,
    ) -> Self {
        match value {
            Some(v) => self.field(key, v),
            None => self,
        }
    }

    /// The value of a tag, if set.
    pub fn tag_value(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of a field, if set.
    pub fn field_value(&self, key: &str) -> Option<&FieldValue> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// Characters that cannot appear as such: newlines end a line; backslashes in names are
/// ambiguous between parsers.
fn clean_name(s: &str) -> Cow<'_, str> {
    if s.contains(['\n', '\r', '\\']) {
        Cow::Owned(
            s.chars()
                .map(|c| match c {
                    '\n' | '\r' => ' ',
                    '\\' => '/',
                    c => c,
                })
                .collect(),
        )
    } else {
        Cow::Borrowed(s)
    }
}

fn escape_into(out: &mut String, s: &str, specials: &[char]) {
    for c in clean_name(s).chars() {
        if specials.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Appends a measurement name, escaped.
pub fn escape_measurement(out: &mut String, s: &str) {
    escape_into(out, s, &[',', ' ']);
}

/// Appends a tag key, tag value or field key, escaped.
pub fn escape_key(out: &mut String, s: &str) {
    escape_into(out, s, &[',', '=', ' ']);
}

/// Appends a string field value, quoted and escaped.
pub fn escape_string_field(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_value(out: &mut String, v: &FieldValue) {
    match v {
        // Rust's Display for f64 is the shortest round-trip form and never uses an exponent,
        // which every line-protocol parser reads.
        FieldValue::Float(f) => {
            let _ = write!(out, "{f}");
        }
        FieldValue::Int(i) => {
            let _ = write!(out, "{i}i");
        }
        FieldValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        FieldValue::Str(s) => escape_string_field(out, s),
    }
}

fn writable(v: &FieldValue) -> bool {
    !matches!(v, FieldValue::Float(f) if !f.is_finite())
}

/// Appends one point as one line (with its trailing newline) to `out`. `extra_tags` (the site
/// tags) are added unless the point has a tag of the same key. On error `out` is unchanged.
pub fn encode_line(
    out: &mut String,
    p: &Point,
    extra_tags: &[(String, String)],
) -> Result<(), EncodeError> {
    if clean_name(&p.measurement).trim().is_empty() {
        return Err(EncodeError::EmptyMeasurement);
    }
    if !p.fields.iter().any(|(k, v)| !k.is_empty() && writable(v)) {
        return Err(EncodeError::NoFields(p.measurement.to_string()));
    }
    let ns = p
        .time
        .timestamp_nanos_opt()
        .ok_or(EncodeError::TimeOutOfRange)?;

    let mut tags: Vec<(&str, &str)> = p
        .tags
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_str()))
        .chain(
            extra_tags
                .iter()
                .filter(|(k, _)| !p.tags.iter().any(|(pk, _)| pk == k))
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        .collect();
    // Byte order, as Go's bytes.Compare (the reference's advice); stable, so a repeated key
    // keeps its first value first.
    tags.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    tags.dedup_by(|b, a| a.0 == b.0);

    escape_measurement(out, &p.measurement);
    for (k, v) in tags {
        out.push(',');
        escape_key(out, k);
        out.push('=');
        escape_key(out, v);
    }
    let mut sep = ' ';
    for (k, v) in &p.fields {
        if k.is_empty() || !writable(v) {
            continue;
        }
        out.push(sep);
        sep = ',';
        escape_key(out, k);
        out.push('=');
        write_value(out, v);
    }
    let _ = writeln!(out, " {ns}");
    Ok(())
}

/// Encodes one point to a new string (tests, logs).
pub fn to_line(p: &Point, extra_tags: &[(String, String)]) -> Result<String, EncodeError> {
    let mut s = String::new();
    encode_line(&mut s, p, extra_tags)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t() -> DateTime<Utc> {
        // The reference's examples use 1465839830100400200.
        Utc.timestamp_nanos(1_465_839_830_100_400_200)
    }

    fn weather() -> Point {
        Point::new("weather", Class::Readings, t())
    }

    #[test]
    fn reference_basic_line() {
        let p = weather()
            .tag("location", "us-midwest")
            .field("temperature", 82.0);
        assert_eq!(
            to_line(&p, &[]).unwrap(),
            "weather,location=us-midwest temperature=82 1465839830100400200\n"
        );
    }

    #[test]
    fn reference_special_characters() {
        // Examples from the line-protocol reference's "special characters" section.
        let comma_in_tag = weather()
            .tag("location", "us,midwest")
            .field("temperature", 82.0);
        assert_eq!(
            to_line(&comma_in_tag, &[]).unwrap(),
            "weather,location=us\\,midwest temperature=82 1465839830100400200\n"
        );
        let equals_in_field_key = weather()
            .tag("location", "us-midwest")
            .field("temp=rature", 82.0);
        assert_eq!(
            to_line(&equals_in_field_key, &[]).unwrap(),
            "weather,location=us-midwest temp\\=rature=82 1465839830100400200\n"
        );
        let space_in_tag_key = weather()
            .tag("location place", "us-midwest")
            .field("temperature", 82.0);
        assert_eq!(
            to_line(&space_in_tag_key, &[]).unwrap(),
            "weather,location\\ place=us-midwest temperature=82 1465839830100400200\n"
        );
        let quotes_in_string = weather()
            .tag("location", "us-midwest")
            .field("temperature", "too\"hot\"");
        assert_eq!(
            to_line(&quotes_in_string, &[]).unwrap(),
            "weather,location=us-midwest temperature=\"too\\\"hot\\\"\" 1465839830100400200\n"
        );
        let comma_in_measurement = Point::new("wea,ther", Class::Readings, t())
            .tag("location", "us-midwest")
            .field("temperature", 82.0);
        assert_eq!(
            to_line(&comma_in_measurement, &[]).unwrap(),
            "wea\\,ther,location=us-midwest temperature=82 1465839830100400200\n"
        );
        let space_in_measurement = Point::new("wea ther", Class::Readings, t())
            .tag("location", "us-midwest")
            .field("temperature", 82.0);
        assert_eq!(
            to_line(&space_in_measurement, &[]).unwrap(),
            "wea\\ ther,location=us-midwest temperature=82 1465839830100400200\n"
        );
        // Equals signs need no escape in a measurement; they do in tag values.
        let eq = Point::new("a=b", Class::Readings, t())
            .tag("row", "90>u>=80")
            .field("n", 1i64);
        assert_eq!(
            to_line(&eq, &[]).unwrap(),
            "a=b,row=90>u>\\=80 n=1i 1465839830100400200\n"
        );
    }

    #[test]
    fn string_fields_escape_backslashes_and_quotes() {
        let p = weather().field("path", r#"C:\temp "x""#);
        assert_eq!(
            to_line(&p, &[]).unwrap(),
            "weather path=\"C:\\\\temp \\\"x\\\"\" 1465839830100400200\n"
        );
    }

    #[test]
    fn types_and_suffixes() {
        let p = weather()
            .field("f", 1.5)
            .field("i", -3i64)
            .field("b", true)
            .field("big", 1e21)
            .field("small", 1.25e-7)
            .field("s", "x");
        assert_eq!(
            to_line(&p, &[]).unwrap(),
            "weather f=1.5,i=-3i,b=true,big=1000000000000000000000,small=0.000000125,s=\"x\" 1465839830100400200\n"
        );
    }

    #[test]
    fn tags_sorted_site_tags_added_and_empty_values_left_out() {
        let p = weather()
            .tag("source", "node 1")
            .tag("phase", "a")
            .tag("empty", "")
            .field("v", 1.0);
        let site = vec![
            ("site".to_string(), "SITE-1".to_string()),
            ("customer".to_string(), "CUST,1".to_string()),
            ("tier".to_string(), "critical".to_string()),
        ];
        assert_eq!(
            to_line(&p, &site).unwrap(),
            "weather,customer=CUST\\,1,phase=a,site=SITE-1,source=node\\ 1,tier=critical v=1 1465839830100400200\n"
        );
        // A point's own tag wins over a site tag of the same key.
        let own = weather().tag("site", "OTHER").field("v", 1.0);
        assert_eq!(
            to_line(&own, &site[..1]).unwrap(),
            "weather,site=OTHER v=1 1465839830100400200\n"
        );
    }

    #[test]
    fn non_finite_floats_are_left_out_and_a_point_needs_a_field() {
        let p = weather().field("nan", f64::NAN).field("v", 2.0);
        assert_eq!(
            to_line(&p, &[]).unwrap(),
            "weather v=2 1465839830100400200\n"
        );
        let none = weather().field("inf", f64::INFINITY);
        assert_eq!(
            to_line(&none, &[]),
            Err(EncodeError::NoFields("weather".into()))
        );
        let mut out = String::from("keep\n");
        assert!(encode_line(&mut out, &weather(), &[]).is_err());
        assert_eq!(out, "keep\n");
        assert_eq!(
            to_line(&Point::new("", Class::Readings, t()).field("v", 1.0), &[]),
            Err(EncodeError::EmptyMeasurement)
        );
    }

    #[test]
    fn newlines_and_backslashes_cannot_break_a_line() {
        let p = Point::new("m\\x", Class::Readings, t())
            .tag("t", "a\nb\\")
            .field("s", "line1\nline2");
        assert_eq!(
            to_line(&p, &[]).unwrap(),
            "m/x,t=a\\ b/ s=\"line1 line2\" 1465839830100400200\n"
        );
    }

    #[test]
    fn class_codes_round_trip() {
        for c in Class::ALL {
            assert_eq!(Class::from_code(c.code()), c);
        }
        assert!(!Class::Events.evictable());
        assert!(Class::Readings.evictable());
    }
}
