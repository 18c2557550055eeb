//! Writing a recording as a C37.111-1999 `.cfg` + `.dat`, the revision every COMTRADE reader
//! understands.
//!
//! Values are stored as integers with a per-channel `a`, `b` chosen from the channel's range:
//! b is the middle of the range and a spreads it over ±32767 (BINARY) or ±99998 (ASCII; 99999
//! is the 1999 missing-value marker), so a value read back is within half a step `a` of the
//! original. Non-finite values are written as missing and read back as NaN.
//!
//! Time: the recording's rate segments are written as they are (their last `endsamp` set to the
//! sample count); without rate segments, `nrates` is 0 and the dat time stamps carry the time
//! in microseconds (`timemult` > 1 only when the record is longer than about 66 minutes). Start
//! and trigger are written in UTC with microseconds; a missing one as the all-zero date, which
//! readers take as "not set". Commas and line breaks in names would break the cfg layout, so
//! they become `;` and spaces. Channels are numbered 1, 2, … in the order they are held.

use super::super::{Recording, RecordingError, SampleRate, Scaling};
use chrono::{DateTime, Utc};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Layout of the data file to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteFormat {
    /// One text line per sample, integer values.
    Ascii,
    /// 16-bit integers.
    Binary,
}

/// Write `rec` as a revision-1999 `cfg_path` and its `.dat` next to it (`.DAT` when the cfg's
/// extension is upper case).
pub fn write(rec: &Recording, cfg_path: &Path, format: WriteFormat) -> Result<(), RecordingError> {
    let problem = |problem: String| RecordingError::Write {
        path: cfg_path.to_path_buf(),
        problem,
    };
    let dat_path = dat_path_for(cfg_path)
        .ok_or_else(|| problem("the cfg file name must end in .cfg".into()))?;
    let (cfg, dat) = encode(rec, format).map_err(problem)?;
    for (path, bytes) in [(cfg_path.to_path_buf(), cfg.into_bytes()), (dat_path, dat)] {
        std::fs::write(&path, bytes).map_err(|reason| RecordingError::Io {
            path,
            action: "cannot write",
            reason,
        })?;
    }
    Ok(())
}

/// `rec` as one 2013-style single file (`.cff`): the cfg section, then the data as ASCII, for
/// a download that is one file (the event page's COMTRADE link). The cfg inside is the 1999
/// layout [`write`] produces; every reader of `.cff` files takes it (this crate's does).
pub fn cff_bytes(rec: &Recording) -> Result<Vec<u8>, String> {
    let (cfg, dat) = encode(rec, WriteFormat::Ascii)?;
    let mut out = Vec::with_capacity(cfg.len() + dat.len() + 64);
    out.extend_from_slice(b"--- file type: CFG ---\r\n");
    out.extend_from_slice(cfg.as_bytes());
    if !cfg.ends_with('\n') {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"--- file type: DAT ASCII ---\r\n");
    out.extend_from_slice(&dat);
    Ok(out)
}

/// `x.cfg` → `x.dat`, `X.CFG` → `X.DAT`.
fn dat_path_for(cfg: &Path) -> Option<PathBuf> {
    let ext = cfg.extension()?.to_str()?;
    if !ext.eq_ignore_ascii_case("cfg") {
        return None;
    }
    let upper = ext.chars().all(|c| c.is_ascii_uppercase());
    Some(cfg.with_extension(if upper { "DAT" } else { "dat" }))
}

/// How one channel's values map to integers.
struct Quantiser {
    a: f64,
    b: f64,
    full: f64,
}

impl Quantiser {
    fn for_values(values: &[f64], full: f64) -> Quantiser {
        let (lo, hi) = values
            .iter()
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        let (a, b) = if lo > hi {
            (1.0, 0.0) // no value at all
        } else if hi == lo {
            (1.0, lo) // constant: every value is exactly b
        } else {
            let a = (hi - lo) / (2.0 * full);
            if a > 0.0 && a.is_finite() {
                (a, lo + (hi - lo) / 2.0)
            } else {
                (1.0, 0.0)
            }
        };
        Quantiser { a, b, full }
    }

    /// The integer for `v`, or `None` for a missing value.
    fn raw(&self, v: f64) -> Option<i32> {
        v.is_finite()
            .then(|| ((v - self.b) / self.a).round().clamp(-self.full, self.full) as i32)
    }
}

/// The rate segments to write for `n` samples; empty means "time from the time stamps".
fn rates_to_write(rec: &Recording, n: u64) -> Vec<SampleRate> {
    let rates = &rec.rates;
    let Some(last) = rates.last() else {
        return Vec::new();
    };
    if n == 0
        || rates
            .iter()
            .any(|r| !(r.rate_hz > 0.0 && r.rate_hz.is_finite()))
    {
        return Vec::new();
    }
    if last.last_sample == n {
        return rates.clone();
    }
    if rates.iter().all(|r| r.rate_hz == last.rate_hz) {
        return vec![SampleRate {
            rate_hz: last.rate_hz,
            last_sample: n,
        }];
    }
    // Read from a file that numbered samples from 0 (or held extra samples): move every
    // boundary by the same amount, if that still makes sense.
    let delta = n as i128 - last.last_sample as i128;
    let shifted: Vec<SampleRate> = rates
        .iter()
        .map(|r| SampleRate {
            rate_hz: r.rate_hz,
            last_sample: (r.last_sample as i128 + delta).max(0) as u64,
        })
        .collect();
    let increasing = shifted.first().is_some_and(|r| r.last_sample >= 1)
        && shifted
            .windows(2)
            .all(|w| w[0].last_sample < w[1].last_sample);
    if increasing {
        shifted
    } else {
        Vec::new()
    }
}

/// A text field safe to put between commas.
fn field(s: &str) -> String {
    s.trim().replace(',', ";").replace(['\r', '\n'], " ")
}

fn date(t: Option<DateTime<Utc>>) -> String {
    match t {
        Some(t) => t.format("%d/%m/%Y,%H:%M:%S%.6f").to_string(),
        None => "00/00/0000,00:00:00.000000".into(),
    }
}

/// A ratio factor as written: the standard wants a positive number.
fn factor(x: f64) -> f64 {
    if x.is_finite() && x != 0.0 {
        x
    } else {
        1.0
    }
}

/// Encode `rec` as cfg text and dat bytes. The error says what makes it unwritable.
pub(crate) fn encode(rec: &Recording, format: WriteFormat) -> Result<(String, Vec<u8>), String> {
    let n = rec.sample_count();
    for (name, len) in rec
        .analog
        .iter()
        .map(|c| (&c.name, c.values.len()))
        .chain(rec.digital.iter().map(|c| (&c.name, c.values.len())))
    {
        if len != n {
            return Err(format!(
                "channel `{name}` has {len} values, but the recording has {n} samples"
            ));
        }
    }
    if n as u64 >= u64::from(u32::MAX) {
        return Err(format!(
            "{n} samples are more than a COMTRADE file can number"
        ));
    }
    let full = match format {
        WriteFormat::Ascii => 99_998.0,
        WriteFormat::Binary => 32_767.0,
    };
    let quant: Vec<Quantiser> = rec
        .analog
        .iter()
        .map(|c| Quantiser::for_values(&c.values, full))
        .collect();

    // Time stamps in µs (× timemult) from the first sample.
    let t0 = rec.time_s.first().copied().unwrap_or(0.0);
    let span_us = rec.time_s.last().map_or(0.0, |t| (t - t0) * 1e6);
    if !span_us.is_finite() {
        return Err("the time axis holds a value that is not a number".into());
    }
    let time_mult = if span_us < 4.0e9 {
        1.0
    } else {
        (span_us / 4.0e9).ceil()
    };
    let stamps: Vec<u32> = rec
        .time_s
        .iter()
        .map(|t| (((t - t0) * 1e6 / time_mult).round()).clamp(0.0, f64::from(u32::MAX - 1)) as u32)
        .collect();
    let mut rates = rates_to_write(rec, n as u64);
    if rates.is_empty() && stamps.windows(2).any(|w| w[1] <= w[0]) {
        // Time stamps cannot tell these samples apart; a single rate still can.
        match rec.uniform_rate_hz() {
            Some(rate) => {
                rates = vec![SampleRate {
                    rate_hz: rate,
                    last_sample: n as u64,
                }]
            }
            None => {
                return Err(
                    "samples less than a microsecond apart (or out of order) cannot be timed \
                            by 1999 time stamps"
                        .into(),
                )
            }
        }
    }

    let mut cfg = String::new();
    let mut line = |s: String| {
        cfg.push_str(&s);
        cfg.push_str("\r\n");
    };
    line(format!(
        "{},{},1999",
        field(&rec.station),
        field(&rec.device)
    ));
    let (na, nd) = (rec.analog.len(), rec.digital.len());
    line(format!("{},{na}A,{nd}D", na + nd));
    for (k, (c, q)) in rec.analog.iter().zip(&quant).enumerate() {
        let raws = c.values.iter().filter_map(|&v| q.raw(v));
        let (min, max) = raws.fold((i32::MAX, i32::MIN), |(lo, hi), r| (lo.min(r), hi.max(r)));
        let (min, max) = if min > max {
            (-full as i32, full as i32)
        } else {
            (min, max)
        };
        let skew_us = (c.skew_s * 1e12).round() / 1e6;
        let ps = match c.scaling {
            Scaling::Primary => "P",
            Scaling::Secondary => "S",
        };
        line(format!(
            "{},{},{},{},{},{},{},{},{min},{max},{},{},{ps}",
            k + 1,
            field(&c.name),
            field(&c.phase),
            field(&c.circuit),
            field(&c.unit),
            q.a,
            q.b,
            if skew_us.is_finite() { skew_us } else { 0.0 },
            factor(c.primary),
            factor(c.secondary),
        ));
    }
    for (k, c) in rec.digital.iter().enumerate() {
        line(format!(
            "{},{},{},{},{}",
            k + 1,
            field(&c.name),
            field(&c.phase),
            field(&c.circuit),
            u8::from(c.normal_state != 0)
        ));
    }
    line(format!(
        "{}",
        rec.line_frequency_hz
            .filter(|f| f.is_finite())
            .unwrap_or(0.0)
    ));
    if rates.is_empty() {
        line("0".into());
        line(format!("0,{n}"));
    } else {
        line(rates.len().to_string());
        for r in &rates {
            line(format!("{},{}", r.rate_hz, r.last_sample));
        }
    }
    line(date(rec.start));
    line(date(rec.trigger));
    line(match format {
        WriteFormat::Ascii => "ASCII".into(),
        WriteFormat::Binary => "BINARY".into(),
    });
    line(format!("{time_mult}"));

    let dat = match format {
        WriteFormat::Ascii => ascii_dat(rec, &quant, &stamps),
        WriteFormat::Binary => binary_dat(rec, &quant, &stamps),
    };
    Ok((cfg, dat))
}

fn ascii_dat(rec: &Recording, quant: &[Quantiser], stamps: &[u32]) -> Vec<u8> {
    let mut out =
        String::with_capacity(stamps.len() * (12 + 8 * rec.analog.len() + 2 * rec.digital.len()));
    for (i, ts) in stamps.iter().enumerate() {
        // Writing into a String cannot fail.
        let _ = write!(out, "{},{ts}", i + 1);
        for (c, q) in rec.analog.iter().zip(quant) {
            match q.raw(c.values[i]) {
                Some(r) => {
                    let _ = write!(out, ",{r}");
                }
                None => out.push_str(",99999"),
            }
        }
        for c in &rec.digital {
            out.push_str(if c.values[i] != 0 { ",1" } else { ",0" });
        }
        out.push_str("\r\n");
    }
    out.into_bytes()
}

fn binary_dat(rec: &Recording, quant: &[Quantiser], stamps: &[u32]) -> Vec<u8> {
    let words = rec.digital.len().div_ceil(16);
    let mut out = Vec::with_capacity(stamps.len() * (8 + 2 * rec.analog.len() + 2 * words));
    for (i, ts) in stamps.iter().enumerate() {
        out.extend((i as u32 + 1).to_le_bytes());
        out.extend(ts.to_le_bytes());
        for (c, q) in rec.analog.iter().zip(quant) {
            let raw = q.raw(c.values[i]).map_or(i16::MIN, |r| r as i16);
            out.extend(raw.to_le_bytes());
        }
        for w in 0..words {
            let word = rec.digital[16 * w..]
                .iter()
                .take(16)
                .enumerate()
                .fold(0u16, |acc, (bit, c)| {
                    acc | (u16::from(c.values[i] != 0) << bit)
                });
            out.extend(word.to_le_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiser_covers_the_range() {
        let q = Quantiser::for_values(&[-3.0, 1.0, f64::NAN], 32_767.0);
        assert_eq!(q.raw(-3.0), Some(-32_767));
        assert_eq!(q.raw(1.0), Some(32_767));
        assert_eq!(q.raw(f64::NAN), None);
        assert!((q.a * f64::from(q.raw(0.3).unwrap()) + q.b - 0.3).abs() <= q.a / 2.0 + 1e-12);
        let q = Quantiser::for_values(&[7.5, 7.5], 32_767.0);
        assert_eq!(q.a * f64::from(q.raw(7.5).unwrap()) + q.b, 7.5);
    }

    #[test]
    fn dat_names() {
        assert_eq!(
            dat_path_for(Path::new("a/x.cfg")),
            Some(PathBuf::from("a/x.dat"))
        );
        assert_eq!(
            dat_path_for(Path::new("X.CFG")),
            Some(PathBuf::from("X.DAT"))
        );
        assert_eq!(dat_path_for(Path::new("x.dat")), None);
    }

    #[test]
    fn fields_cannot_break_the_layout() {
        assert_eq!(field(" a,b\r\nc "), "a;b  c");
    }
}
