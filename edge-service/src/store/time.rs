//! Time stamps as stored: fixed-width RFC 3339 UTC with microseconds, so that text order is
//! time order and SQLite's indexes and `BETWEEN` work on them.

use chrono::{DateTime, SecondsFormat, Utc};

/// Formats a time stamp as stored: `2026-11-26T08:15:00.123456Z`.
pub fn format_ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The years (UTC) a time typed by a person may fall in. A stored stamp's text sorts as its time
/// only with a four-digit year, and chrono reads signed and five-digit years (`-262143-01-01`,
/// `+10000-01-01`) that overflow its arithmetic or sort wrong as text.
pub const YEARS: std::ops::RangeInclusive<i32> = 1970..=9999;

/// Whether `t` falls in [`YEARS`].
pub fn in_years(t: DateTime<Utc>) -> bool {
    use chrono::Datelike;
    YEARS.contains(&t.year())
}

/// Parses a stored time stamp (any RFC 3339 form is accepted).
pub fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The start of the UTC hour `t` falls in.
pub fn hour_start(t: DateTime<Utc>) -> DateTime<Utc> {
    let s = t.timestamp().div_euclid(3600) * 3600;
    DateTime::<Utc>::from_timestamp(s, 0).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn store_time_text_order_is_time_order() {
        let a = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let b = a + chrono::Duration::microseconds(1);
        let c = a + chrono::Duration::days(400);
        assert!(format_ts(a) < format_ts(b) && format_ts(b) < format_ts(c));
        assert_eq!(format_ts(a), "2026-01-02T03:04:05.000000Z");
        assert_eq!(parse_ts(&format_ts(b)), Some(b));
    }
}
