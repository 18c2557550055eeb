//! The report's period `[from, to)`: `--from` / `--to` as RFC 3339 time stamps or dates
//! (`2026-11-01`, its midnight UTC), by default the last full calendar month (UTC) before now.

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, TimeZone, Utc};
use thiserror::Error;

/// A report period, `from` inclusive, `to` exclusive, `from < to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    /// Start, inclusive.
    pub from: DateTime<Utc>,
    /// End, exclusive.
    pub to: DateTime<Utc>,
}

/// Why a period was refused: one line for the person who typed it.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PeriodError {
    /// Neither RFC 3339 nor a date.
    #[error("{flag} {value:?} is neither an RFC 3339 time (2026-11-01T00:00:00Z) nor a date (2026-11-01)")]
    BadDate {
        /// `--from` or `--to`.
        flag: &'static str,
        /// What was given.
        value: String,
    },
    /// A year before 1970 or after 9999 (UTC).
    #[error("{flag} {value:?} is outside the years 1970 to 9999 (UTC)")]
    OutOfRange {
        /// `--from` or `--to`.
        flag: &'static str,
        /// What was given.
        value: String,
    },
    /// `to <= from`.
    #[error("--to ({to}) must be after --from ({from})")]
    Reversed {
        /// As given or defaulted.
        from: String,
        /// As given or defaulted.
        to: String,
    },
}

impl Period {
    /// The period from the flags; a missing bound comes from the default period (the last full
    /// calendar month before `now`), except that `--from` alone runs to `now`'s month start when
    /// that is later, else to `now`.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Period, PeriodError> {
        let default = Period::last_full_month(now);
        let from = match from {
            Some(s) => parse_time(s, "--from")?,
            None => default.from,
        };
        let to = match to {
            Some(s) => parse_time(s, "--to")?,
            // `--from` after the default end (a date this month): up to now.
            None if from >= default.to => now.max(from),
            None => default.to,
        };
        if to <= from {
            return Err(PeriodError::Reversed {
                from: from.to_rfc3339_opts(SecondsFormat::Secs, true),
                to: to.to_rfc3339_opts(SecondsFormat::Secs, true),
            });
        }
        Ok(Period { from, to })
    }

    /// The last full calendar month (UTC) before `now`.
    pub fn last_full_month(now: DateTime<Utc>) -> Period {
        let this = month_start(now.year(), now.month());
        let (y, m) = if now.month() == 1 {
            (now.year() - 1, 12)
        } else {
            (now.year(), now.month() - 1)
        };
        Period {
            from: month_start(y, m),
            to: this,
        }
    }

    /// Length in hours.
    pub fn hours(&self) -> f64 {
        (self.to - self.from).num_milliseconds() as f64 / 3_600_000.0
    }
}

fn month_start(y: i32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// RFC 3339, or `YYYY-MM-DD` meaning its midnight UTC; in the years 1970 to 9999 (UTC), the
/// store's ([`crate::store::YEARS`]).
fn parse_time(s: &str, flag: &'static str) -> Result<DateTime<Utc>, PeriodError> {
    let s = s.trim();
    let value = || s.chars().take(64).collect::<String>();
    let t = match DateTime::parse_from_rfc3339(s) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| Utc.from_utc_datetime(&t)),
    };
    match t {
        Some(t) if crate::store::in_years(t) => Ok(t),
        Some(_) => Err(PeriodError::OutOfRange {
            flag,
            value: value(),
        }),
        None => Err(PeriodError::BadDate {
            flag,
            value: value(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_default_is_the_last_full_calendar_month() {
        let p = Period::parse(None, None, t("2026-12-04T17:00:00Z")).unwrap();
        assert_eq!(p.from, t("2026-11-01T00:00:00Z"));
        assert_eq!(p.to, t("2026-12-01T00:00:00Z"));
        assert_eq!(p.hours(), 720.0);
    }

    #[test]
    fn in_january_the_default_is_last_december() {
        let p = Period::parse(None, None, t("2027-01-01T00:00:00Z")).unwrap();
        assert_eq!(p.from, t("2026-12-01T00:00:00Z"));
        assert_eq!(p.to, t("2027-01-01T00:00:00Z"));
    }

    #[test]
    fn a_date_means_its_midnight_utc_and_rfc3339_keeps_its_offset() {
        let p = Period::parse(
            Some("2026-11-01"),
            Some("2026-11-02T08:00:00+08:00"),
            t("2026-12-04T00:00:00Z"),
        )
        .unwrap();
        assert_eq!(p.from, t("2026-11-01T00:00:00Z"));
        assert_eq!(p.to, t("2026-11-02T00:00:00Z"));
    }

    #[test]
    fn from_this_month_alone_runs_to_now() {
        let now = t("2026-12-04T17:00:00Z");
        let p = Period::parse(Some("2026-12-01"), None, now).unwrap();
        assert_eq!(p.to, now);
    }

    #[test]
    fn to_before_or_at_from_is_refused_with_both_times() {
        let now = t("2026-12-04T00:00:00Z");
        let e = Period::parse(Some("2026-11-02"), Some("2026-11-01"), now).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--to (2026-11-01T00:00:00Z) must be after --from (2026-11-02T00:00:00Z)"
        );
        assert!(Period::parse(Some("2026-11-02"), Some("2026-11-02"), now).is_err());
    }

    #[test]
    fn a_year_outside_1970_to_9999_is_refused_with_its_flag_not_a_panic() {
        let now = t("2026-12-04T00:00:00Z");
        for (from, to, says) in [
            (
                "-262143-01-01",
                "2026-01-01",
                "--from \"-262143-01-01\" is outside the years",
            ),
            (
                "+10000-01-01",
                "+10001-01-01",
                "--from \"+10000-01-01\" is outside",
            ),
            (
                "2026-01-01",
                "+10000-01-01",
                "--to \"+10000-01-01\" is outside",
            ),
            (
                "1969-12-31",
                "2026-01-01",
                "--from \"1969-12-31\" is outside",
            ),
            ("2026-01-01", "9999-12-31T23:00:00-05:00", "--to "),
        ] {
            let e = Period::parse(Some(from), Some(to), now).unwrap_err();
            assert!(e.to_string().starts_with(says), "{from} {to}: {e}");
        }
        assert!(Period::parse(Some("1970-01-01"), Some("9999-12-31"), now).is_ok());
    }

    #[test]
    fn a_bad_date_names_its_flag() {
        let e = Period::parse(Some("yesterday"), None, Utc::now()).unwrap_err();
        assert!(e.to_string().starts_with("--from \"yesterday\" is neither"));
        let e = Period::parse(None, Some("2026-13-01"), Utc::now()).unwrap_err();
        assert!(e.to_string().starts_with("--to "));
    }
}
