//! `kare replay`: run the measurement core over a recording and characterise what it finds.
//!
//! The recording's scaled values are quantised to the 24-bit sample units the core works in
//! (the same integer path the sensor node runs), so a recording replayed here and the same
//! waveform on a node are judged alike.

mod feed;
mod grid;
use grid::Grid;
pub mod output;

pub use crate::pipeline::events::ReportedEvent;
use crate::pipeline::events::{characterise, kind_order, round, Clock};
use crate::recording::{printable, Recording, MAX_SAMPLE_RATE_HZ};
use chrono::{DateTime, Datelike, Utc};
use feed::{unusable, Feed, Window};
pub use feed::{Flagged, Gap, MAX_RESAMPLE_PER_CYCLE, OUT_OF_RANGE_PCT};
use kare_firmware::detector::{self, Event, Thresholds, Transition, MAX_CHANNELS};
use kare_firmware::monitor::{Monitor, Output};
use kare_firmware::urms::{UrmsConfig, POS_ONE};
use thiserror::Error;

/// Headroom of the quantisation: the largest value in a channel maps to 2^22, half of full scale.
const QUANT_PEAK: f64 = (1 << 22) as f64;

/// Smallest `--udin` accepted: 1 mV (or 1 mA, 0.001 kV...), below any declared supply voltage
/// in any unit a recorder writes.
pub const UDIN_MIN: f64 = 1e-3;
/// Largest `--udin` accepted: 10 MV, above the highest transmission voltage in service
/// (1100 kV) in volts. The core computes in f32; this keeps its levels finite and exact enough.
pub const UDIN_MAX: f64 = 1e7;
/// Longest time axis replayed: ten years. A longer one is a corrupt time stamp, and the core's
/// sample positions (1/256 sample in a u64) must not overflow at the highest rate.
pub const MAX_SPAN_S: f64 = 10.0 * 365.25 * 86_400.0;

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
    #[error(
        "no analog channel named `{}` in the recording (it has: {})",
        printable(.name),
        printable(.available)
    )]
    UnknownChannel {
        /// The name asked for.
        name: String,
        /// The analog channel names the file has.
        available: String,
    },
    /// No channel names given, or too many.
    #[error("give between 1 and {MAX_CHANNELS} channel names with --channels (one per phase)")]
    ChannelCount,
    /// The declared voltage is out of range.
    #[error(
        "--udin must be a number from {UDIN_MIN} to {UDIN_MAX} (the declared voltage in the unit \
         of the channels' values), not {0}"
    )]
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
    /// The recording's times cannot be written (past the year 9999).
    #[error("{0}")]
    Start(String),
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
    /// Number of samples per channel analysed (on the uniform clock, gaps left out).
    pub samples: usize,
    /// Number of samples read from the file.
    pub samples_read: usize,
    /// Number of samples the file announces (COMTRADE `endsamp`); `None` when it does not say.
    pub samples_declared: Option<u64>,
    /// The data file holds fewer samples than announced: it was cut short.
    pub truncated: bool,
    /// Urms(1/2) windows judged by the detector.
    pub windows_judged: usize,
    /// Judged windows with voltage present (some channel at or above the interruption
    /// threshold) that were not locked to the fundamental's zero crossings.
    pub windows_unlocked_live: usize,
    /// What was flagged (IEC 61000-4-30) rather than judged.
    pub flagged: Flagged,
    /// Length of the data analysed, seconds.
    pub length_s: f64,
    /// Recording start in UTC, as used for event time stamps.
    pub start: DateTime<Utc>,
    /// Whether `start` came from the file (false: the file has none, the Unix epoch is used).
    pub start_from_file: bool,
    /// The file's start date as written when it is no real date (then `start` is the epoch).
    pub start_unreadable: Option<String>,
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
    /// Whether the window lies over missing or out-of-range samples (measured, not judged).
    pub flagged: bool,
}

impl ReplayReport {
    /// What the reader must be told beside the events: truncation, flagged data, an impossible
    /// start date. One line each, file content escaped.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.truncated {
            out.push(format!(
                "the data is cut short: the file announces {} samples, {} were read",
                self.samples_declared.unwrap_or(0),
                self.samples_read
            ));
        }
        let f = &self.flagged;
        if f.windows > 0 || !f.gaps.is_empty() {
            let gap_s: f64 = f.gaps.iter().map(|g| g.duration_s).sum();
            out.push(format!(
                "{} Urms(1/2) window(s) flagged and not judged ({} missing sample(s), {} out of \
                 range beyond {OUT_OF_RANGE_PCT} % of Udin); {} gap(s) in the time axis, {} s in \
                 all, not judged",
                f.windows,
                f.missing_samples,
                f.out_of_range_samples,
                f.gaps.len(),
                round(gap_s, 6)
            ));
        }
        if self.windows_unlocked_live * 2 > self.windows_judged {
            out.push(format!(
                "{} of {} Urms(1/2) windows with voltage present never locked to a fundamental \
                 within ±10 % of {} Hz: the record's frequency or its sample rate is off, so the \
                 windows are not whole cycles and the values and events are approximate",
                self.windows_unlocked_live, self.windows_judged, self.frequency_hz
            ));
        }
        if let Some(s) = &self.start_unreadable {
            out.push(format!(
                "the start date ({}) is not a real date and time: event times are counted from \
                 1970-01-01T00:00:00Z instead",
                printable(s)
            ));
        }
        out
    }
}

/// Runs the detector over `rec` and characterises every event.
///
/// Refuses (with the reason) what cannot be measured: less than one cycle of data, a sample
/// rate out of range or too low, a record whose time stamps would run past the year 9999, and
/// a record in which not one Urms(1/2) window could be judged. What is measured around flagged
/// data is reported with the flags ([`ReplayReport::flagged`]).
pub fn analyse(rec: &Recording, opts: &ReplayOptions) -> Result<ReplayReport, ReplayError> {
    if opts.channels.is_empty() || opts.channels.len() > MAX_CHANNELS {
        return Err(ReplayError::ChannelCount);
    }
    if !(opts.udin.is_finite() && (UDIN_MIN..=UDIN_MAX).contains(&opts.udin)) {
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
            "the recording holds fewer than two samples: nothing can be measured".into(),
        ));
    }
    let frequency_hz = nominal_frequency(rec, opts, &channels[0].values)?;
    let t = &rec.time_s;
    let span = t[n - 1] - t[0];
    if !(span.is_finite() && span <= MAX_SPAN_S) {
        return Err(ReplayError::Sampling(format!(
            "the recording's time stamps span {span:e} s, more than the {MAX_SPAN_S:e} s kare \
             replays: the time axis is corrupt"
        )));
    }
    // Urms(1/2) is an RMS over one whole cycle: less than that holds no value at all.
    if span < 1.0 / frequency_hz {
        return Err(ReplayError::Sampling(format!(
            "the recording holds {} s of data ({n} samples), less than one cycle of \
             {frequency_hz} Hz ({} s): Urms(1/2) needs at least one whole cycle, so nothing \
             can be measured",
            round(span, 6),
            round(1.0 / frequency_hz, 6)
        )));
    }
    let (start, start_from_file) = match rec.start {
        Some(s) => (s, true),
        None => (DateTime::<Utc>::UNIX_EPOCH, false),
    };
    // Every printed time must be valid RFC 3339, whose years have four digits.
    let last_instant = start
        .checked_add_signed(chrono::Duration::microseconds((span * 1e6).ceil() as i64))
        .filter(|end| end.year() <= 9999);
    if last_instant.is_none() {
        return Err(ReplayError::Start(format!(
            "the recording starts {} and runs {} s, past the end of the year 9999: its times \
             cannot be written as RFC 3339",
            start.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            round(span, 6)
        )));
    }

    // The uniform clock the core runs on: the file's own, or a grid resampled onto.
    let uniform = rec.uniform_rate_hz();
    let (rate, grid) = match uniform {
        Some(rate) => (rate, None),
        None => {
            let g = Grid::new(rec, frequency_hz);
            (g.rate, Some(g))
        }
    };
    if !(rate.is_finite() && rate <= MAX_SAMPLE_RATE_HZ) {
        return Err(ReplayError::Sampling(format!(
            "the sample rate ({} samples/s) is out of range: kare replays recordings of up to \
             {MAX_SAMPLE_RATE_HZ} samples/s",
            round(rate, 3)
        )));
    }
    if rate < 8.0 * frequency_hz {
        return Err(ReplayError::Sampling(format!(
            "the sample rate ({rate:.1} samples/s) is too low: at least 8 samples per cycle of \
             {frequency_hz} Hz are needed to measure Urms(1/2)"
        )));
    }

    // Quantise each channel so its largest usable value is at half of the 24-bit full scale.
    // Values beyond the range are flagged, so one absurd value cannot squash the channel to 0.
    let limit = OUT_OF_RANGE_PCT / 100.0 * opts.udin * std::f64::consts::SQRT_2;
    let floor = opts.udin * std::f64::consts::SQRT_2 * 1e-3;
    let lsb: Vec<f64> = channels
        .iter()
        .map(|c| {
            let peak = c
                .values
                .iter()
                .filter(|x| !unusable(**x, limit))
                .fold(0.0_f64, |m, x| m.max(x.abs()));
            // A dead channel keeps a step fine enough to read as ~0 % and coarse enough for f32.
            peak.max(floor) / QUANT_PEAK
        })
        .collect();
    let scale: Vec<f32> = lsb.iter().map(|l| *l as f32).collect();
    // The core's Monitor checks the settings and judges; the feed below measures, so that
    // flagged windows can be kept from the judge.
    let mut monitor = Monitor::new(rate as f32, frequency_hz as f32, &scale, thresholds)
        .map_err(|e| ReplayError::Sampling(e.to_string()))?;
    let mut flagged = Flagged::default();
    for k in 0..n {
        let (mut missing, mut out) = (false, false);
        for c in &channels {
            let x = c.values[k];
            missing |= !x.is_finite();
            out |= x.is_finite() && x.abs() > limit;
        }
        flagged.missing_samples += usize::from(missing);
        flagged.out_of_range_samples += usize::from(out);
    }

    let config = UrmsConfig {
        sample_rate_hz: rate as f32,
        nominal_hz: frequency_hz as f32,
    };
    let mut feed = Feed::new(config, opts.udin, lsb, limit);
    let mut ended: Vec<Event> = Vec::new();
    let mut rms: Vec<RmsRecord> = Vec::new();
    let mut judged = 0usize;
    let mut unlocked_live = 0usize;
    let live = (opts.udin * opts.interruption_pct / 100.0) as f32;
    let to_s = |pos: u64| pos as f64 / POS_ONE as f64 / rate;
    let mut on_window = |w: Window, monitor: &mut Monitor| {
        let mut values = [0.0f32; MAX_CHANNELS];
        // Whole sample units times the scale, as the core's Monitor::push does.
        for (i, v) in w.half.values().iter().enumerate() {
            values[i] = v.round() * scale[i];
        }
        if opts.keep_rms {
            rms.push(RmsRecord {
                start_s: to_s(w.half.start),
                end_s: to_s(w.half.end),
                pct: values[..w.half.channels as usize]
                    .iter()
                    .map(|v| *v as f64 / opts.udin * 100.0)
                    .collect(),
                frequency_hz: w.half.frequency_hz as f64,
                locked: w.half.locked,
                flagged: w.flagged,
            });
        }
        if w.flagged {
            return;
        }
        judged += 1;
        if !w.half.locked
            && values[..w.half.channels as usize]
                .iter()
                .any(|v| *v >= live)
        {
            unlocked_live += 1;
        }
        monitor.judge(&w.half, &values[..w.half.channels as usize], |out| {
            if let Output::Transition(Transition::Ended(e)) = out {
                ended.push(e)
            }
        });
    };
    let mut frame = vec![0f64; channels.len()];
    match &grid {
        None => {
            for k in 0..n {
                for (f, c) in frame.iter_mut().zip(&channels) {
                    *f = c.values[k];
                }
                if let Some(w) = feed.push(k as u64, &frame) {
                    on_window(w, &mut monitor);
                }
            }
        }
        Some(g) => g.run(rec, &channels, &mut feed, &mut flagged.gaps, |w| {
            on_window(w, &mut monitor)
        }),
    }
    flagged.windows = feed.flagged_windows;
    if judged == 0 {
        return Err(ReplayError::Sampling(if flagged.windows > 0 {
            format!(
                "every Urms(1/2) window ({}) lies over missing or out-of-range samples: nothing \
                 could be measured ({} missing, {} out of range beyond {OUT_OF_RANGE_PCT} % of \
                 Udin; is --udin in the unit of the channels' values?)",
                flagged.windows, flagged.missing_samples, flagged.out_of_range_samples
            )
        } else {
            format!(
                "no Urms(1/2) window was completed in the {} s of data between gaps: the meter \
                 first locks onto the supply (about three cycles of it) and then measures whole \
                 cycles, so a recording needs about four cycles of signal: nothing could be \
                 measured",
                round(span, 6)
            )
        }));
    }

    let end_pos = feed.last_index * POS_ONE;
    let mut events: Vec<Event> = ended;
    events.extend(monitor.open_events());
    events.sort_by_key(|e| (e.start, kind_order(e.kind)));

    let names: Vec<String> = channels.iter().map(|c| c.name.clone()).collect();
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
        resampled: grid.is_some(),
        samples: usize::try_from(feed.fed).unwrap_or(usize::MAX),
        samples_read: n,
        samples_declared: rec.samples_declared,
        truncated: rec.truncated(),
        length_s: to_s(end_pos),
        start,
        start_from_file,
        start_unreadable: rec.start_unreadable.clone(),
        thresholds,
        windows_judged: judged,
        windows_unlocked_live: unlocked_live,
        flagged,
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
    // No line frequency in the file (CSV): count zero crossings of the first channel, over
    // usable values only (one absurd value must not move the mean off the waveform).
    let times = &rec.time_s;
    let limit = OUT_OF_RANGE_PCT / 100.0 * opts.udin * std::f64::consts::SQRT_2;
    let usable: Vec<(f64, f64)> = first
        .iter()
        .zip(times)
        .filter(|(x, _)| !unusable(**x, limit))
        .map(|(x, t)| (*x, *t))
        .collect();
    let mean = usable.iter().map(|(x, _)| x).sum::<f64>() / usable.len().max(1) as f64;
    let crossings: Vec<f64> = usable
        .windows(2)
        .filter(|w| (w[0].0 - mean < 0.0) != (w[1].0 - mean < 0.0))
        .map(|w| w[0].1)
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
