//! Hostile and synthetic recordings for the replay tests, written into a temporary folder: a
//! three-phase 50 Hz supply with an optional dip, as CSV, or COMTRADE ASCII or BINARY.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Output;

/// Udin of the synthetic supply (phase-to-neutral volts).
pub const UDIN: f64 = 230.0;

/// One row per sample: time and the three phase voltages.
pub struct Rows {
    pub t: Vec<f64>,
    pub v: Vec<[f64; 3]>,
}

/// `secs` of a 50 Hz three-phase supply at `rate`, at `level` × Udin, dipping to `dip.2` × Udin
/// from `dip.0` to `dip.1` seconds.
pub fn supply(rate: f64, secs: f64, dip: Option<(f64, f64, f64)>) -> Rows {
    let n = (secs * rate).round() as usize;
    let mut rows = Rows {
        t: Vec::with_capacity(n),
        v: Vec::with_capacity(n),
    };
    for k in 0..n {
        let t = k as f64 / rate;
        let level = match dip {
            Some((a, b, l)) if t >= a && t < b => l,
            _ => 1.0,
        };
        let amp = UDIN * std::f64::consts::SQRT_2 * level;
        let w = 2.0 * std::f64::consts::PI * 50.0 * t;
        rows.t.push(t);
        rows.v.push([
            amp * w.sin(),
            amp * (w - 2.094_395_102_393_195).sin(),
            amp * (w + 2.094_395_102_393_195).sin(),
        ]);
    }
    rows
}

/// CSV text; `None` values are left blank.
pub fn csv(rows: &Rows) -> String {
    let mut s = String::from("time,VA,VB,VC\n");
    for (t, v) in rows.t.iter().zip(&rows.v) {
        let cell = |x: f64| {
            if x.is_nan() {
                String::new()
            } else {
                format!("{x:.4}")
            }
        };
        let _ = writeln!(s, "{t:.7},{},{},{}", cell(v[0]), cell(v[1]), cell(v[2]));
    }
    s
}

/// A cfg: `revision` (1999, 2013), `rates` lines (`samp,endsamp`), `start` date line, format.
pub fn cfg(revision: &str, names: [&str; 3], rates: &[&str], start: &str, format: &str) -> String {
    let mut s = format!("Station,Device,{revision}\n3,3A,0D\n");
    for (i, n) in names.iter().enumerate() {
        let _ = writeln!(s, "{},{n},,,V,0.1,0,0,-32767,32767,1,1,P", i + 1);
    }
    let _ = writeln!(s, "50\n{}", rates.len());
    for r in rates {
        let _ = writeln!(s, "{r}");
    }
    let _ = writeln!(s, "{start}\n{start}\n{format}\n1");
    s
}

/// ASCII data for [`cfg`] (a = 0.1: raw = volts × 10); NaN is written as `missing`.
pub fn dat_ascii(rows: &Rows, missing: &str) -> String {
    let mut s = String::new();
    for (k, (t, v)) in rows.t.iter().zip(&rows.v).enumerate() {
        let _ = write!(s, "{},{}", k + 1, (t * 1e6).round() as u64);
        for x in v {
            if x.is_nan() {
                let _ = write!(s, ",{missing}");
            } else {
                let _ = write!(s, ",{}", (x * 10.0).round() as i64);
            }
        }
        s.push('\n');
    }
    s
}

/// BINARY data for [`cfg`].
pub fn dat_binary(rows: &Rows) -> Vec<u8> {
    let mut b = Vec::new();
    for (k, (t, v)) in rows.t.iter().zip(&rows.v).enumerate() {
        b.extend((k as u32 + 1).to_le_bytes());
        b.extend(((t * 1e6).round() as u32).to_le_bytes());
        for x in v {
            b.extend(((x * 10.0).round().clamp(-32767.0, 32767.0) as i16).to_le_bytes());
        }
    }
    b
}

/// Writes `name` into `dir` and returns its path.
pub fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// `kare replay FILE --channels VA,VB,VC --udin 230 --format json` plus `extra`.
pub fn kare(file: &Path, extra: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_kare"))
        .arg("replay")
        .arg(file)
        .args(["--channels", "VA,VB,VC", "--format", "json"])
        .args(extra)
        .output()
        .unwrap()
}

/// The options the tests replay with.
pub fn opts() -> kare::replay::ReplayOptions {
    kare::replay::ReplayOptions::new(vec!["VA".into(), "VB".into(), "VC".into()], UDIN)
}
