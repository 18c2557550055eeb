//! Values: packed BCD, lowest byte first, a decimal point fixed per identifier, and for signed
//! quantities the highest bit of the highest byte as the sign (1 = negative). Date-time fields
//! are BCD too, lowest unit first on the wire (`ss mm hh DD MM YY` for `YYMMDDhhmmss`).

use super::Error;
use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use std::fmt;
use std::str::FromStr;

/// A number's layout as the standard writes it: `XXX.X` is four digits, one after the point, in
/// two bytes. Digits are always even in DL/T 645-2007 (two per byte).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct NumberFormat {
    /// All digits, before and after the point.
    pub digits: u8,
    /// Digits after the point.
    pub decimals: u8,
}

impl NumberFormat {
    /// Bytes on the wire.
    pub fn bytes(self) -> usize {
        (self.digits as usize).div_ceil(2)
    }
}

impl fmt::Display for NumberFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let before = self.digits - self.decimals;
        for _ in 0..before {
            f.write_str("X")?;
        }
        if self.decimals > 0 {
            f.write_str(".")?;
            for _ in 0..self.decimals {
                f.write_str("X")?;
            }
        }
        Ok(())
    }
}

impl FromStr for NumberFormat {
    type Err = Error;

    /// `XXX.X`, `XXXXXX` (also with `N` for digits, as some tables write counts).
    fn from_str(s: &str) -> Result<NumberFormat, Error> {
        let bad = || Error::Table(format!("{s:?} is not a number format like XXX.X"));
        let mut parts = s.split('.');
        let before = parts.next().ok_or_else(bad)?;
        let after = parts.next().unwrap_or("");
        if parts.next().is_some() {
            return Err(bad());
        }
        let is_digits = |p: &str| p.chars().all(|c| c == 'X' || c == 'N');
        if before.is_empty() || !is_digits(before) || !is_digits(after) || s.ends_with('.') {
            return Err(bad());
        }
        let digits = before.len() + after.len();
        if !digits.is_multiple_of(2) || digits > 16 {
            return Err(Error::Table(format!(
                "{s:?} has {digits} digits: DL/T 645 values are whole bytes of two digits, at most 16"
            )));
        }
        Ok(NumberFormat {
            digits: digits as u8,
            decimals: after.len() as u8,
        })
    }
}

/// The two digits of a BCD byte, or why not.
fn digits_of(byte: u8, position: usize) -> Result<u8, Error> {
    let (hi, lo) = (byte >> 4, byte & 0x0F);
    if hi > 9 || lo > 9 {
        return Err(Error::BadBcd { byte, position });
    }
    Ok(hi * 10 + lo)
}

/// Decodes a number laid out as `format` from its wire bytes (lowest first, offset removed).
/// `signed`: the top bit of the last byte is the sign. `position_base` is added to byte
/// positions in errors, so that they count from the start of the value's data field.
pub(crate) fn decode_number_at(
    bytes: &[u8],
    format: NumberFormat,
    signed: bool,
    position_base: usize,
) -> Result<f64, Error> {
    let n = format.bytes();
    if bytes.len() < n {
        return Err(Error::Truncated {
            needed: n,
            got: bytes.len(),
        });
    }
    let bytes = &bytes[..n];
    let mut magnitude: u64 = 0;
    let mut negative = false;
    for (i, &raw) in bytes.iter().enumerate().rev() {
        let b = if signed && i == n - 1 {
            negative = raw & 0x80 != 0;
            raw & 0x7F
        } else {
            raw
        };
        // Report the byte as received, not with the sign bit masked.
        let two = digits_of(b, position_base + i).map_err(|_| Error::BadBcd {
            byte: raw,
            position: position_base + i,
        })?;
        magnitude = magnitude * 100 + u64::from(two);
    }
    let value = magnitude as f64 / 10f64.powi(i32::from(format.decimals));
    // A sign bit on zero is still zero (no -0.0 in reports).
    Ok(if negative && magnitude != 0 {
        -value
    } else {
        value
    })
}

/// Decodes a number laid out as `format` from its wire bytes (lowest first, offset removed).
pub fn decode_number(bytes: &[u8], format: NumberFormat, signed: bool) -> Result<f64, Error> {
    decode_number_at(bytes, format, signed, 0)
}

/// Encodes `value` as `format` (lowest byte first), rounding to the format's decimals. For
/// unsigned formats a negative value is refused; signed formats lose their top digit's high
/// bit to the sign, so `XX.XXXX` signed holds at most ±79.9999.
pub fn encode_number(value: f64, format: NumberFormat, signed: bool) -> Result<Vec<u8>, Error> {
    let out_of_range = || Error::OutOfRange {
        value,
        format: format.to_string(),
    };
    if !value.is_finite() || (value < 0.0 && !signed) {
        return Err(out_of_range());
    }
    let scaled = (value.abs() * 10f64.powi(i32::from(format.decimals))).round();
    let limit = 10f64.powi(i32::from(format.digits));
    if scaled >= limit {
        return Err(out_of_range());
    }
    let mut m = scaled as u64;
    let mut out = Vec::with_capacity(format.bytes());
    for _ in 0..format.bytes() {
        let two = (m % 100) as u8;
        m /= 100;
        out.push(((two / 10) << 4) | (two % 10));
    }
    if signed {
        let top = out.len() - 1;
        if out[top] & 0x80 != 0 {
            return Err(out_of_range());
        }
        if value < 0.0 && scaled > 0.0 {
            out[top] |= 0x80;
        }
    }
    Ok(out)
}

/// Decodes a date-time field: 6 bytes `ss mm hh DD MM YY` (format `YYMMDDhhmmss`) or 5 bytes
/// `mm hh DD MM YY` (format `YYMMDDhhmm`), as on the wire. Years are 2000–2099. All zeros is
/// how meters say "not recorded": `None`.
pub fn decode_datetime(bytes: &[u8]) -> Result<Option<NaiveDateTime>, Error> {
    decode_datetime_at(bytes, 0)
}

pub(crate) fn decode_datetime_at(
    bytes: &[u8],
    position_base: usize,
) -> Result<Option<NaiveDateTime>, Error> {
    if bytes.len() != 5 && bytes.len() != 6 {
        return Err(Error::BadDateTime(format!(
            "a date-time field is 5 or 6 bytes, not {}",
            bytes.len()
        )));
    }
    if bytes.iter().all(|&b| b == 0) {
        return Ok(None);
    }
    let mut v = [0u32; 6];
    for (i, &b) in bytes.iter().enumerate() {
        v[i] = u32::from(digits_of(b, position_base + i)?);
    }
    let (second, rest) = if bytes.len() == 6 {
        (v[0], &v[1..6])
    } else {
        (0, &v[0..5])
    };
    let (minute, hour, day, month, year) = (rest[0], rest[1], rest[2], rest[3], rest[4]);
    let text = format!("20{year:02}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}");
    NaiveDate::from_ymd_opt(2000 + year as i32, month, day)
        .and_then(|d| d.and_hms_opt(hour, minute, second))
        .map(Some)
        .ok_or(Error::BadDateTime(text))
}

/// Encodes a date-time as on the wire: `ss mm hh DD MM YY` with seconds, `mm hh DD MM YY`
/// without. Years outside 2000–2099 are refused (the field holds two digits).
pub fn encode_datetime(t: NaiveDateTime, with_seconds: bool) -> Result<Vec<u8>, Error> {
    let year = t.year() - 2000;
    if !(0..=99).contains(&year) {
        return Err(Error::BadDateTime(format!(
            "{t} is outside 2000-2099, which a two-digit year field cannot hold"
        )));
    }
    let bcd = |v: u32| (((v / 10) << 4) | (v % 10)) as u8;
    let mut out = Vec::with_capacity(6);
    if with_seconds {
        out.push(bcd(t.second()));
    }
    out.extend([
        bcd(t.minute()),
        bcd(t.hour()),
        bcd(t.day()),
        bcd(t.month()),
        bcd(year as u32),
    ]);
    Ok(out)
}
