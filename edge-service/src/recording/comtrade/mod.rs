//! COMTRADE (IEEE C37.111-1991/1999/2013): `.cfg` + `.dat` pairs, the 2013 single-file `.cff`,
//! and a writer for 1999 `.cfg` + `.dat`.
//!
//! Time axis: when the cfg gives sample rates (`nrates` ≥ 1 and every `samp` > 0), sample times
//! come from the rate segments and the dat time stamps are ignored; otherwise from the time
//! stamps × `timemult`, in microseconds (nanoseconds in a 2013 file whose dates have more than
//! six fractional digits).

mod cff;
mod cfg;
mod dat;
mod writer;

pub use writer::{cff_bytes, write, WriteFormat};

use super::{
    read_file, text, AnalogChannel, DataFormat, DigitalChannel, Recording, RecordingError,
    SampleRate,
};
use cfg::Cfg;
use dat::Dat;
use std::path::{Path, PathBuf};

/// Read a `.cfg` and the `.dat` beside it (same name, `.dat` or `.DAT`, the cfg's own letter
/// case tried first).
pub fn read_cfg_dat(cfg: &Path) -> Result<Recording, RecordingError> {
    let cfg_name = cfg.display().to_string();
    let cfg_bytes = read_file(cfg)?;
    // Parse the cfg first: if it is broken, that is the more useful message.
    let parsed = cfg::parse_cfg(&text::decode(&cfg_bytes).0, 1, &cfg_name)?;
    let dat_path = find_dat(cfg)?;
    let dat_bytes = read_file(&dat_path)?;
    let dat_name = dat_path.display().to_string();
    let dat = decode_dat(&parsed, &dat_bytes, 1, parsed.data_format, &dat_name)?;
    assemble(parsed, dat, &dat_name)
}

/// Read a 2013 single-file `.cff`.
pub fn read_cff(path: &Path) -> Result<Recording, RecordingError> {
    let bytes = read_file(path)?;
    parse_cff(&bytes, &path.display().to_string())
}

/// Decode a recording from the contents of a cfg and its dat; the names are quoted in errors.
pub fn parse_cfg_dat(
    cfg: &[u8],
    dat: &[u8],
    cfg_name: &str,
    dat_name: &str,
) -> Result<Recording, RecordingError> {
    let parsed = cfg::parse_cfg(&text::decode(cfg).0, 1, cfg_name)?;
    let dat = decode_dat(&parsed, dat, 1, parsed.data_format, dat_name)?;
    assemble(parsed, dat, dat_name)
}

/// Decode a recording from the contents of a `.cff`; `name` is quoted in errors.
pub fn parse_cff(bytes: &[u8], name: &str) -> Result<Recording, RecordingError> {
    cff::parse(bytes, name)
}

/// The data file beside `cfg`: the cfg's extension with its letter case carried over
/// (`cfg`→`dat`, `CFG`→`DAT`, `Cfg`→`Dat`), then `dat`, then `DAT`.
fn find_dat(cfg: &Path) -> Result<PathBuf, RecordingError> {
    let ext = cfg.extension().and_then(|e| e.to_str()).unwrap_or("cfg");
    let mirrored: String = ext
        .chars()
        .zip("dat".chars())
        .map(|(c, d)| {
            if c.is_ascii_uppercase() {
                d.to_ascii_uppercase()
            } else {
                d
            }
        })
        .collect();
    let mut candidates = vec![mirrored];
    for e in ["dat", "DAT"] {
        if !candidates.iter().any(|c| c == e) {
            candidates.push(e.to_string());
        }
    }
    let paths: Vec<PathBuf> = candidates.iter().map(|e| cfg.with_extension(e)).collect();
    if let Some(found) = paths.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let tried = paths
        .iter()
        .map(|p| {
            p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    Err(RecordingError::DataFileNotFound {
        cfg: cfg.to_path_buf(),
        tried,
    })
}

/// Decode dat bytes in `format`; `first_line` numbers ASCII lines (inside a `.cff`).
fn decode_dat(
    cfg: &Cfg,
    bytes: &[u8],
    first_line: usize,
    format: DataFormat,
    name: &str,
) -> Result<Dat, RecordingError> {
    match format {
        DataFormat::Ascii => dat::parse_ascii(&text::decode(bytes).0, first_line, cfg, name),
        binary => dat::parse_binary(bytes, cfg, binary, name),
    }
}

/// Put cfg and decoded data together into a [`Recording`].
fn assemble(cfg: Cfg, dat: Dat, dat_name: &str) -> Result<Recording, RecordingError> {
    let time_s = sample_times(&cfg, &dat, dat_name)?;
    // A file numbered from 0 announces either its count (`0..endsamp-1`, as wisp-set2/5 does) or
    // its last number (`0..endsamp`): only a file shorter than both is said to be cut short.
    let read = dat.timestamps.len() as u64;
    let samples_declared = cfg
        .end_sample
        .map(|n| if dat.zero_based && read > n { n + 1 } else { n });
    let start = cfg.utc(cfg.start);
    let trigger = cfg.utc(cfg.trigger);
    let analog = cfg
        .analog
        .into_iter()
        .zip(dat.analog)
        .map(|(c, values)| AnalogChannel { values, ..c })
        .collect();
    let digital = cfg
        .digital
        .into_iter()
        .zip(dat.digital)
        .map(|(c, values)| DigitalChannel { values, ..c })
        .collect();
    Ok(Recording {
        station: cfg.station,
        device: cfg.device,
        revision: cfg.revision,
        line_frequency_hz: cfg.line_frequency_hz,
        start,
        start_unreadable: cfg.start_unreadable,
        trigger,
        samples_declared,
        time_s,
        rates: cfg.rates,
        analog,
        digital,
        data_format: cfg.data_format,
    })
}

/// Seconds after the first sample, for every sample.
fn sample_times(cfg: &Cfg, dat: &Dat, file: &str) -> Result<Vec<f64>, RecordingError> {
    let n = dat.timestamps.len();
    if !cfg.rates.is_empty() && cfg.rates.iter().all(|r| r.rate_hz > 0.0) {
        return Ok(times_from_rates(&cfg.rates, n, u64::from(dat.zero_based)));
    }
    let unit = cfg.time_mult * if cfg.nanosecond_stamps() { 1e-9 } else { 1e-6 };
    let mut times = Vec::with_capacity(n);
    let t0 = dat.timestamps.first().copied().unwrap_or(0.0);
    for (i, &ts) in dat.timestamps.iter().enumerate() {
        if ts.is_nan() {
            return Err(RecordingError::MissingTimestamp {
                file: file.to_string(),
                sample: i as u64 + 1,
            });
        }
        let t = (ts - t0) * unit;
        if let Some(&previous) = times.last() {
            if t <= previous {
                return Err(RecordingError::TimeNotIncreasing {
                    file: file.to_string(),
                    at: format!("sample {}", i + 1),
                    previous,
                    value: t,
                });
            }
        }
        times.push(t);
    }
    Ok(times)
}

/// Sample times from rate segments: segment j holds the samples after the previous segment's
/// last one up to its own `endsamp` (shifted by `offset` for files numbered from 0); each of
/// its samples follows the one before by 1/rate, so a segment continues from the time of the
/// previous segment's last sample. The last segment runs to the last sample read.
fn times_from_rates(rates: &[SampleRate], n: usize, offset: u64) -> Vec<f64> {
    let mut times: Vec<f64> = Vec::with_capacity(n);
    for (j, r) in rates.iter().enumerate() {
        let end = if j + 1 == rates.len() {
            n
        } else {
            usize::try_from(r.last_sample.saturating_add(offset))
                .unwrap_or(n)
                .min(n)
        };
        let begin = times.len();
        if end <= begin {
            continue;
        }
        let dt = 1.0 / r.rate_hz;
        // Multiply rather than accumulate, so rounding does not build up over long segments.
        match times.last().copied() {
            None => times.extend((0..end).map(|k| k as f64 * dt)),
            Some(origin) => times.extend((1..=end - begin).map(|k| origin + k as f64 * dt)),
        }
    }
    times
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_segments_continue_from_the_previous_end() {
        let rates = [
            SampleRate {
                rate_hz: 1000.0,
                last_sample: 3,
            },
            SampleRate {
                rate_hz: 100.0,
                last_sample: 5,
            },
        ];
        let t = times_from_rates(&rates, 5, 0);
        let want = [0.0, 0.001, 0.002, 0.012, 0.022];
        assert!(
            t.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12),
            "{t:?}"
        );
        // Numbered from 0: endsamp 2 means the third sample.
        let rates = [
            SampleRate {
                rate_hz: 1000.0,
                last_sample: 2,
            },
            SampleRate {
                rate_hz: 100.0,
                last_sample: 4,
            },
        ];
        let t = times_from_rates(&rates, 5, 1);
        assert!(
            t.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12),
            "{t:?}"
        );
    }

    #[test]
    fn data_file_name_follows_cfg_case() {
        let dir = tempfile::tempdir().unwrap();
        let e = find_dat(&dir.path().join("x.cfg")).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("x.cfg: data file not found (tried x.dat, x.DAT)"),
            "{e}"
        );
        let e = find_dat(&dir.path().join("X.CFG")).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("X.CFG: data file not found (tried X.DAT, X.dat)"),
            "{e}"
        );
        std::fs::write(dir.path().join("y.DAT"), b"").unwrap();
        assert_eq!(
            find_dat(&dir.path().join("y.cfg")).unwrap(),
            dir.path().join("y.DAT")
        );
    }
}
