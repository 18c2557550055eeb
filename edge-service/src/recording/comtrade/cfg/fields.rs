//! Single cfg fields: numbers and counts that tolerate `4752.0`, the data format word, dates
//! and times (`dd/mm/yyyy,hh:mm:ss.ssssss`), the 2013 time code.

use super::CfgTime;
use crate::recording::{DataFormat, Revision};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

/// Split a cfg line at commas and trim every field. Always at least one field.
pub(super) fn fields(line: &str) -> Vec<&str> {
    line.split(',').map(str::trim).collect()
}

pub(super) fn ends_with_letter(s: &str, c: char) -> bool {
    s.ends_with(c) || s.ends_with(c.to_ascii_lowercase())
}

/// A finite number (Rust's parser also takes `inf` and `NaN`, which no cfg field may be).
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A non-negative integer, also when written as `4752.0`.
pub(super) fn parse_count(s: &str) -> Option<u64> {
    let s = s.trim();
    s.parse::<u64>().ok().or_else(|| {
        parse_number(s)
            .filter(|v| *v >= 0.0 && v.fract() == 0.0 && *v < 1e15)
            .map(|v| v as u64)
    })
}

/// The word naming the data format, case-insensitive.
pub(super) fn data_format_word(s: &str) -> Option<DataFormat> {
    match s.trim().to_ascii_uppercase().as_str() {
        "ASCII" => Some(DataFormat::Ascii),
        "BINARY" => Some(DataFormat::Binary),
        "BINARY32" => Some(DataFormat::Binary32),
        "FLOAT32" => Some(DataFormat::Float32),
        _ => None,
    }
}

/// `dd/mm/yyyy,hh:mm:ss.ssssss` (1999, 2013) or `mm/dd/yy,hh:mm:ss.ssssss` (1991).
///
/// Two-digit years are 1970–2069. When day and month cannot be read in the revision's order
/// they are tried the other way round (a 1991 writer that used the 1999 order). Up to 9
/// fractional digits are kept (nanoseconds); more are cut off. Years before 1900 (such as the
/// all-zero "not set" date) give `None`.
pub(crate) fn parse_date(line: &str, revision: Revision) -> Option<CfgTime> {
    let (date, time) = line.split_once(',')?;
    let mut d = date.trim().split('/').map(str::trim);
    let (p1, p2, y) = (d.next()?, d.next()?, d.next()?);
    if d.next().is_some() || !all_digits(p1) || !all_digits(p2) || !all_digits(y) {
        return None;
    }
    let (p1, p2): (u32, u32) = (p1.parse().ok()?, p2.parse().ok()?);
    let year: i32 = match y.len() {
        1 | 2 => {
            let yy: i32 = y.parse().ok()?;
            if yy < 70 {
                2000 + yy
            } else {
                1900 + yy
            }
        }
        _ => y.parse().ok()?,
    };
    if year < 1900 {
        return None;
    }
    let (month, day) = if revision == Revision::Y1991 {
        (p1, p2)
    } else {
        (p2, p1)
    };
    let date = NaiveDate::from_ymd_opt(year, month, day)
        .or_else(|| NaiveDate::from_ymd_opt(year, day, month))?;

    let mut t = time.trim().split(':').map(str::trim);
    let (h, m, s) = (t.next()?, t.next()?, t.next()?);
    if t.next().is_some() {
        return None;
    }
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    if !all_digits(h)
        || !all_digits(m)
        || !all_digits(sec)
        || !(frac.is_empty() || all_digits(frac))
    {
        return None;
    }
    let kept = &frac[..frac.len().min(9)];
    let nanos = if kept.is_empty() {
        0
    } else {
        kept.parse::<u32>().ok()? * 10u32.pow(9 - kept.len() as u32)
    };
    let time =
        NaiveTime::from_hms_nano_opt(h.parse().ok()?, m.parse().ok()?, sec.parse().ok()?, nanos)?;
    Some(CfgTime {
        local: NaiveDateTime::new(date, time),
        fraction_digits: frac.len(),
    })
}

/// Whether a date line says "no date": empty, or nothing but zeros and separators
/// (`00/00/0000,00:00:00.000000`, which recorders write when their clock was never set).
pub(super) fn date_not_set(line: &str) -> bool {
    line.chars()
        .all(|c| matches!(c, '0' | '/' | ',' | ':' | '.' | ' ' | '\t'))
}

pub(super) fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// The 2013 time code: `-5h30`, `+8`, `0`, `10h` → offset from UTC in seconds. Empty or `x`
/// means "not given".
pub(crate) fn parse_time_code(s: &str) -> Result<Option<i32>, ()> {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("x") {
        return Ok(None);
    }
    let (sign, rest) = match s.as_bytes()[0] {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => (1, s),
    };
    let (h, m) = rest.split_once(['h', 'H']).unwrap_or((rest, ""));
    let (h, m) = (h.trim(), m.trim());
    if !all_digits(h) || !(m.is_empty() || all_digits(m)) || h.len() > 2 || m.len() > 2 {
        return Err(());
    }
    let h: i32 = h.parse().map_err(|_| ())?;
    let m: i32 = if m.is_empty() {
        0
    } else {
        m.parse().map_err(|_| ())?
    };
    if h > 24 || m >= 60 {
        return Err(());
    }
    Ok(Some(sign * (h * 3600 + m * 60)))
}
