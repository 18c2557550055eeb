//! The channel and rate lines of a cfg: `An,…` analog and `Dn,…` digital definitions, and
//! `samp,endsamp`.

use super::fields::*;
use super::Cursor;
use crate::recording::{
    AnalogChannel, DigitalChannel, RecordingError, Scaling, MAX_SAMPLE_RATE_HZ,
};

/// `An,ch_id,ph,ccbm,uu,a,b,skew,min,max[,primary,secondary,PS]`
pub(super) fn parse_analog(
    cur: &mut Cursor,
    k: u64,
    n: u64,
) -> Result<AnalogChannel, RecordingError> {
    let (ln, l) = cur.next(|| format!("analog channel {k} of {n}"))?;
    let f = fields(l);
    if f.len() < 10 {
        return Err(cur.problem(
            ln,
            format!(
                "analog channel {k} of {n}: expected at least 10 comma-separated fields \
                 (An,ch_id,ph,ccbm,uu,a,b,skew,min,max), found {}: `{}`",
                f.len(),
                l.trim()
            ),
        ));
    }
    let name = f[1];
    let what = |field: &str| format!("analog channel {k} (`{name}`): {field}");
    let a = cur.number(ln, f[5], || what("multiplier `a`"))?;
    let b = cur.number_or(ln, f.get(6), 0.0, || what("offset `b`"))?;
    let skew_us = cur.number_or(ln, f.get(7), 0.0, || what("time skew"))?;
    let min = cur.number_or(ln, f.get(8), 0.0, || what("minimum `min`"))?;
    let max = cur.number_or(ln, f.get(9), 0.0, || what("maximum `max`"))?;
    let primary = cur.number_or(ln, f.get(10), 1.0, || what("primary factor"))?;
    let secondary = cur.number_or(ln, f.get(11), 1.0, || what("secondary factor"))?;
    let scaling = match f.get(12).copied().unwrap_or("") {
        "" | "p" | "P" => Scaling::Primary,
        "s" | "S" => Scaling::Secondary,
        other => {
            return Err(cur.problem(
                ln,
                format!(
                    "{}: expected P or S, found `{other}`",
                    what("primary/secondary flag")
                ),
            ))
        }
    };
    Ok(AnalogChannel {
        // The channel number is informational; a garbled one is replaced by the position.
        index: f[0].parse().unwrap_or(k as u32),
        name: name.to_string(),
        phase: f[2].to_string(),
        circuit: f[3].to_string(),
        unit: f[4].to_string(),
        a,
        b,
        skew_s: skew_us / 1e6,
        min,
        max,
        primary,
        secondary,
        scaling,
        values: Vec::new(),
    })
}

/// `Dn,ch_id,ph,ccbm,y` (1999+) or `Dn,ch_id,y` (1991).
///
/// Four fields is neither; some recorders write `Dn,ch_id,y,ccbm`, so with four fields the
/// normal state is whichever of the last two is 0 or 1 (the last one if both are).
pub(super) fn parse_digital(
    cur: &mut Cursor,
    k: u64,
    n: u64,
) -> Result<DigitalChannel, RecordingError> {
    let (ln, l) = cur.next(|| format!("digital channel {k} of {n}"))?;
    let f = fields(l);
    let is_state = |s: &str| matches!(s, "0" | "1");
    let (phase, circuit, y) = match f.len() {
        0..=2 => {
            return Err(cur.problem(
                ln,
                format!(
                    "digital channel {k} of {n}: expected `Dn,ch_id,ph,ccbm,y` \
                     (or `Dn,ch_id,y`), found `{}`",
                    l.trim()
                ),
            ))
        }
        3 => ("", "", f[2]),
        4 if !is_state(f[3]) && is_state(f[2]) => ("", f[3], f[2]),
        4 => (f[2], "", f[3]),
        _ => (f[2], f[3], f[4]),
    };
    let normal_state = match y {
        "" | "0" => 0,
        "1" => 1,
        other => {
            return Err(cur.problem(
                ln,
                format!(
                    "digital channel {k} (`{}`): normal state `y` must be 0 or 1, found `{other}`",
                    f[1]
                ),
            ))
        }
    };
    Ok(DigitalChannel {
        index: f[0].parse().unwrap_or(k as u32),
        name: f[1].to_string(),
        phase: phase.to_string(),
        circuit: circuit.to_string(),
        normal_state,
        values: Vec::new(),
    })
}

/// `samp,endsamp`
pub(super) fn parse_rate_line(
    cur: &Cursor,
    ln: usize,
    l: &str,
    what: &str,
) -> Result<(f64, u64), RecordingError> {
    let f = fields(l);
    if f.len() < 2 {
        return Err(cur.problem(
            ln,
            format!("{what}: expected `samp,endsamp`, found `{}`", l.trim()),
        ));
    }
    let rate = if f[0].is_empty() {
        0.0
    } else {
        cur.number(ln, f[0], || format!("{what}: sample rate `samp`"))?
    };
    // A rate is what the file's time axis is built from: a negative one means nothing, and one
    // beyond what any recorder produces (a hostile `1e9` or `1e300`) would have replay allocate
    // gigabytes for a few kilobytes of data.
    if !(0.0..=MAX_SAMPLE_RATE_HZ).contains(&rate) {
        return Err(cur.problem(
            ln,
            format!(
                "{what}: sample rate `samp` {} is out of range: expected 0 (time from the time \
                 stamps) up to {MAX_SAMPLE_RATE_HZ} samples/s",
                f[0]
            ),
        ));
    }
    let end = parse_count(f[1]).ok_or_else(|| {
        cur.not_a_number(ln, format!("{what}: last sample number `endsamp`"), f[1])
    })?;
    Ok((rate, end))
}
