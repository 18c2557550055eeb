//! `kare replay`: run the measurement core over a recording and characterise what it finds.
//!
//! The recording's scaled values are quantised to the 24-bit sample units the core works in
//! (the same integer path the sensor node runs), so a recording replayed here and the same
//! waveform on a node are judged alike.

pub mod output;

pub use crate::pipeline::events::ReportedEvent;
use crate::pipeline::events::{characterise, kind_order, Clock};
use crate::recording::Recording;
use chrono::{DateTime, Utc};
use kare_firmware::detector::{self, Event, Thresholds, Transition, MAX_CHANNELS};
use kare_firmware::monitor::{Monitor, Output};
use kare_firmware::urms::POS_ONE;
use thiserror::Error;

/// Headroom of the quantisation: the largest value in a channel maps to 2^22, half of full scale.
const QUANT_PEAK: f64 = (1 << 22) as f64;

/// What to analyse and with which settings.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// Analog channel names as written in the file, one per phase.
    pub channels: Vec<String>,
    /// Declared voltage in the unit of the channels' scaled values.
    pub udin: f64,
    /// Nominal frequency; `None` takes the file's own line frequency.
    pub frequency_hz: Option<f64>,
    /// Dip threshold, % of Udin.
    pub dip_pct: f64,
    /// Swell threshold, % of Udin.
    pub swell_pct: f64,
    /// Interruption threshold, % of Udin.
    pub interruption_pct: f64,
    /// Hysteresis, % of Udin.
    pub hysteresis_pct: f64,
    /// Keep every Urms(1/2) record in the report (for `--rms`).
    pub keep_rms: bool,
}

impl ReplayOptions {
    /// Options with the contract's default thresholds (90 / 110 / 10 / 2 %).
    pub fn new(channels: Vec<String>, udin: f64) -> Self {
        ReplayOptions {
            channels,
            udin,
            frequency_hz: None,
            dip_pct: f64::from(detector::DEFAULT_DIP_PCT),
            swell_pct: f64::from(detector::DEFAULT_SWELL_PCT),
            interruption_pct: f64::from(detector::DEFAULT_INTERRUPTION_PCT),
            hysteresis_pct: f64::from(detector::DEFAULT_HYSTERESIS_PCT),
            keep_rms: false,
        }
    }
}

/// Why a recording could not be analysed.
#[derive(Debug, Error)]
pub enum ReplayError {
    /// A `--channels` name is not an analog channel of the file.
    #[error("no analog channel named `{name}` in the recording (it has: {available})")]
    UnknownChannel {
        /// The name asked for.
        name: String,
        /// The analog channel names the file has.
        available: String,
    },
    /// No channel names given, or too many.
    #[error("give between 1 and {MAX_CHANNELS} channel names with --channels (one per phase)")]
    ChannelCount,
    /// The declared voltage is not a positive number.
    #[error("--udin must be a positive number, not {0}")]
    Udin(f64),
    /// Nominal frequency unknown or unsupported.
    #[error("{0}")]
    Frequency(String),
    /// Inconsistent thresholds.
    #[error("thresholds: {0}")]
    Thresholds(&'static str),
    /// Too few samples per cycle, or no samples at all.
    #[error("{0}")]
    Sampling(String),
}

/// Everything `kare replay` prints.
#[derive(Clone, Debug)]
pub struct ReplayReport {
    /// Declared voltage used.
    pub udin: f64,
    /// Nominal frequency used.
    pub frequency_hz: f64,
    /// Channel names analysed, in order.
    pub channels: Vec<String>,
    /// Sample rate the core ran at (after resampling a variable-rate recording).
    pub sample_rate_hz: f64,
    /// Whether the recording had to be resampled to a uniform rate.
    pub resampled: bool,
    /// Number of samples per channel analysed.
    pub samples: usize,
    /// Length of the data analysed, seconds.
    pub length_s: f64,
    /// Recording start in UTC, as used for event time stamps.
    pub start: DateTime<Utc>,
    /// Whether `start` came from the file (false: the file has none, the Unix epoch is used).
    pub start_from_file: bool,
    /// Thresholds in force, % of Udin.
    pub thresholds: Thresholds,
    /// Events in order of start (kind order dip, swell, interruption for equal starts).
    pub events: Vec<ReportedEvent>,
    /// Every Urms(1/2) record, when asked for with [`ReplayOptions::keep_rms`].
    pub rms: Vec<RmsRecord>,
}

/// One Urms(1/2) record of every channel, as `--rms` writes it.
#[derive(Clone, Debug, PartialEq)]
pub struct RmsRecord {
    /// Window start, seconds after the first sample.
    pub start_s: f64,
    /// Window end, seconds after the first sample.
    pub end_s: f64,
    /// Urms(1/2) per channel, % of Udin.
    pub pct: Vec<f64>,
    /// Frequency over the window, Hz.
    pub frequency_hz: f64,
    /// Whether the window is bounded by real zero crossings.
    pub locked: bool,
}

/// Runs the detector over `rec` and characterises every event.
pub fn analyse(rec: &Recording, opts: &ReplayOptions) -> Result<ReplayReport, ReplayError> {
    if opts.channels.is_empty() || opts.channels.len() > MAX_CHANNELS {
        return Err(ReplayError::ChannelCount);
    }
    if !(opts.udin.is_finite() && opts.udin > 0.0) {
        return Err(ReplayError::Udin(opts.udin));
    }
    let mut channels = Vec::with_capacity(opts.channels.len());
    for name in &opts.channels {
        let ch = rec
            .analog(name.trim())
            .ok_or_else(|| ReplayError::UnknownChannel {
                name: name.trim().to_string(),
                available: rec
                    .analog
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        channels.push(ch);
    }
    let thresholds = Thresholds {
        udin: opts.udin as f32,
        dip_pct: opts.dip_pct as f32,
        swell_pct: opts.swell_pct as f32,
        interruption_pct: opts.interruption_pct as f32,
        hysteresis_pct: opts.hysteresis_pct as f32,
    };
    thresholds.validate().map_err(ReplayError::Thresholds)?;

    let n = rec.sample_count();
    if n < 2 {
        return Err(ReplayError::Sampling(
            "the recording holds fewer than two samples".into(),
        ));
    }
    let frequency_hz = nominal_frequency(rec, opts, &channels[0].values)?;

    // A uniform sample clock, resampling variable-rate recordings linearly.
    let (rate, resampled, series): (f64, bool, Vec<Vec<f64>>) = match rec.uniform_rate_hz() {
        Some(rate) => (
            rate,
            false,
            channels.iter().map(|c| c.values.clone()).collect(),
        ),
        None => {
            let rate = rec
                .rates
                .iter()
                .map(|r| r.rate_hz)
                .fold(0.0_f64, f64::max)
                .max(estimate_rate(&rec.time_s));
            let series = channels
                .iter()
                .map(|c| resample(&rec.time_s, &c.values, rate))
                .collect();
            (rate, true, series)
        }
    };
    if !(rate.is_finite() && rate >= 8.0 * frequency_hz) {
        return Err(ReplayError::Sampling(format!(
            "the sample rate ({rate:.1} samples/s) is too low: at least 8 samples per cycle of \
             {frequency_hz} Hz are needed to measure Urms(1/2)"
        )));
    }

    // Quantise each channel so its largest value is at half of the 24-bit full scale.
    let lsb: Vec<f64> = series
        .iter()
        .map(|v| {
            let peak = v
                .iter()
                .filter(|x| x.is_finite())
                .fold(0.0_f64, |m, x| m.max(x.abs()));
            if peak > 0.0 {
                peak / QUANT_PEAK
            } else {
                opts.udin * 2f64.sqrt() / QUANT_PEAK
            }
        })
        .collect();
    let scale: Vec<f32> = lsb.iter().map(|l| *l as f32).collect();
    let mut monitor = Monitor::new(rate as f32, frequency_hz as f32, &scale, thresholds)
        .map_err(|e| ReplayError::Sampling(e.to_string()))?;

    let samples = series[0].len();
    let mut ended: Vec<Event> = Vec::new();
    let mut rms: Vec<RmsRecord> = Vec::new();
    let to_s = |pos: u64| pos as f64 / POS_ONE as f64 / rate;
    let mut frame = vec![0i32; series.len()];
    let mut last = vec![0i32; series.len()];
    for k in 0..samples {
        for (ch, v) in series.iter().enumerate() {
            let x = v[k];
            // A missing value (NaN) holds the previous sample rather than inventing a zero.
            frame[ch] = if x.is_finite() {
                (x / lsb[ch]).round() as i32
            } else {
                last[ch]
            };
            last[ch] = frame[ch];
        }
        monitor.push(&frame, |out| match out {
            Output::Transition(Transition::Ended(e)) => ended.push(e),
            Output::Values { half, values } if opts.keep_rms => rms.push(RmsRecord {
                start_s: to_s(half.start),
                end_s: to_s(half.end),
                pct: values[..half.channels as usize]
                    .iter()
                    .map(|v| *v as f64 / opts.udin * 100.0)
                    .collect(),
                frequency_hz: half.frequency_hz as f64,
                locked: half.locked,
            }),
            _ => {}
        });
    }
    let end_pos = (samples as u64 - 1) * POS_ONE;
    let mut events: Vec<Event> = ended;
    events.extend(monitor.open_events());
    events.sort_by_key(|e| (e.start, kind_order(e.kind)));

    let (start, start_from_file) = match rec.start {
        Some(s) => (s, true),
        None => (DateTime::<Utc>::UNIX_EPOCH, false),
    };
    let names: Vec<String> = channels.iter().map(|c| c.name.clone()).collect();
    let secs = |pos: u64| pos as f64 / POS_ONE as f64 / rate;
    let clock = Clock {
        start,
        sample_rate_hz: rate,
        udin: opts.udin,
        nominal_hz: frequency_hz,
    };
    let reported = events
        .iter()
        .map(|e| characterise(e, &clock, &names, end_pos))
        .collect();

    Ok(ReplayReport {
        udin: opts.udin,
        frequency_hz,
        channels: names,
        sample_rate_hz: rate,
        resampled,
        samples,
        length_s: secs(end_pos),
        start,
        start_from_file,
        thresholds,
        events: reported,
        rms,
    })
}

/// The nominal frequency: as asked, else the file's own, else estimated from the first channel.
fn nominal_frequency(
    rec: &Recording,
    opts: &ReplayOptions,
    first: &[f64],
) -> Result<f64, ReplayError> {
    if let Some(f) = opts.frequency_hz {
        return if f == 50.0 || f == 60.0 {
            Ok(f)
        } else {
            Err(ReplayError::Frequency(format!(
                "--frequency must be 50 or 60, not {f}"
            )))
        };
    }
    if let Some(lf) = rec.line_frequency_hz {
        if (45.0..=55.0).contains(&lf) {
            return Ok(50.0);
        }
        if (55.0..=65.0).contains(&lf) {
            return Ok(60.0);
        }
        return Err(ReplayError::Frequency(format!(
            "the recording's line frequency is {lf} Hz; kare measures 50 and 60 Hz systems: \
             give --frequency 50 or 60"
        )));
    }
    // No line frequency in the file (CSV): count zero crossings of the first channel.
    let times = &rec.time_s;
    let mean = first.iter().filter(|x| x.is_finite()).sum::<f64>() / first.len() as f64;
    let crossings: Vec<f64> = first
        .windows(2)
        .enumerate()
        .filter(|(_, w)| (w[0] - mean < 0.0) != (w[1] - mean < 0.0))
        .map(|(i, _)| times[i])
        .collect();
    // The median interval between crossings: gaps in the supply (an outage) do not bias it.
    let mut halves: Vec<f64> = crossings.windows(2).map(|w| w[1] - w[0]).collect();
    if halves.len() >= 20 {
        halves.sort_by(f64::total_cmp);
        let f = 0.5 / halves[halves.len() / 2];
        if (45.0..55.0).contains(&f) {
            return Ok(50.0);
        }
        if (55.0..65.0).contains(&f) {
            return Ok(60.0);
        }
    }
    Err(ReplayError::Frequency(
        "the recording does not say its line frequency and it cannot be told from the data: \
         give --frequency 50 or 60"
            .into(),
    ))
}

/// Mean sample rate from time stamps.
fn estimate_rate(t: &[f64]) -> f64 {
    if t.len() < 2 {
        return 0.0;
    }
    let span = t[t.len() - 1] - t[0];
    if span > 0.0 {
        (t.len() - 1) as f64 / span
    } else {
        0.0
    }
}

/// Linear resampling of `(t, v)` onto a uniform grid at `rate` starting at `t[0]`.
fn resample(t: &[f64], v: &[f64], rate: f64) -> Vec<f64> {
    let t0 = t[0];
    let span = t[t.len() - 1] - t0;
    let n = (span * rate).floor() as usize + 1;
    let mut out = Vec::with_capacity(n);
    let mut j = 0;
    for k in 0..n {
        let tk = t0 + k as f64 / rate;
        while j + 2 < t.len() && t[j + 1] < tk {
            j += 1;
        }
        let (ta, tb) = (t[j], t[j + 1]);
        let w = if tb > ta { (tk - ta) / (tb - ta) } else { 0.0 };
        out.push(v[j] + (v[j + 1] - v[j]) * w.clamp(0.0, 1.0));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resampling_a_line_keeps_it_a_line() {
        let t = [0.0, 0.1, 0.25, 0.3, 0.5];
        let v: Vec<f64> = t.iter().map(|x| 2.0 * x + 1.0).collect();
        let r = resample(&t, &v, 20.0);
        assert_eq!(r.len(), 11);
        for (k, y) in r.iter().enumerate() {
            assert!((y - (2.0 * (k as f64 / 20.0) + 1.0)).abs() < 1e-9);
        }
    }
}
