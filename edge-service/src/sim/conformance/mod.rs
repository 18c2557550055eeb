//! Class A conformance suite for dips, swells and interruptions: rectangular test signals of
//! known construction and a judge that holds the measurement core's events against them.
//!
//! It follows, in spirit, the dip/swell/interruption tests of IEC 62586-2 (the product standard
//! that tests IEC 61000-4-30 Class A instruments): a clean three-phase supply at Udin carries one
//! rectangular event at a time (the amplitude steps instantly to a known residual or maximum and
//! steps back, the phase runs on), of a known duration, starting at a known point on the wave,
//! on one phase or on all three, at nominal and off-nominal frequency; the instrument must report
//! the event's kind, residual (maximum), start and duration within stated uncertainties, and
//! nothing else.
//!
//! * [`Case`]: one event and the supply it rides on. [`grid`] is the suite at the simulator's
//!   6400 Sps, [`pico_grid`] a smaller one at the Pico's 3750 Sps.
//! * [`Run`]: the cases that share a supply frequency and sample rate, laid out in [`Slot`]s
//!   along one long waveform ([`LEAD_IN_S`] of clean supply, then per case at least [`PRE_S`]
//!   of clean supply, the event, at least [`POST_S`] after). [`Run::samples`] generates the
//!   quantised samples lazily, one instant at a time, never the whole waveform.
//! * [`expected`]: what the construction calls for; [`judge`] compares what was found in a
//!   slot with it; [`Report`] collects verdicts and writes the table of worst errors (and a CSV
//!   of every case's errors).
//! * [`replay`]: the replay path over a run (the core's `Monitor` fed sample by sample, as
//!   `kare replay` measures a uniform recording); [`ideal`]: a reference, an ideal Urms(1/2)
//!   meter feeding today's detector, which shows what the convention and tolerances allow.
//!
//! The tolerances are named constants here ([`EXTREME_TOLERANCE_PCT`],
//! [`START_TOLERANCE_CYCLES`], [`DURATION_TOLERANCE_CYCLES`]); how a detected event's times are
//! read against the construction is one function, [`time_errors`].
//!
//! What the grid covers: dips to residual 0, 5, 8, 15, 30, 50, 70, 85 % of Udin; swells to 112,
//! 115, 120, 130, 140, 150 %; durations 1.5, 2.5, 3, 5, 10, 25 and 100 cycles (and 150 cycles,
//! 3 s at 50 Hz, at start angle 0°); start angles 0, 45, 90 and 135° of phase A; one phase (A)
//! or all three; 50 and 60 Hz systems at nominal frequency and ±1 % off it (49.5, 50.5, 59.4,
//! 60.6 Hz). The Pico grid keeps every level and duration but only the angles 0 and 90°, 50 Hz
//! nominal and 49.5 Hz, 60 Hz nominal and 60.6 Hz.
//!
//! What it leaves out: harmonics, noise, DC offset and phase jumps with the event (IEC 62586-2
//! tests some of them separately), events on two phases, non-rectangular (ramped, multi-stage)
//! events, events shorter than 1.5 cycles, interruptions with recovery through a phase shift,
//! frequency steps, clipping (every signal stays within the 24-bit range), and the flagging of
//! values during frequency excursions beyond ±1 %.

mod judge;
mod paths;
mod report;
mod signal;
#[cfg(test)]
mod tests;

pub use judge::*;
pub use paths::*;
pub use report::*;
pub use signal::*;

use kare_firmware::detector::Thresholds;
use std::f64::consts::SQRT_2;

/// Declared voltage Udin of every test signal, volts phase-neutral.
pub const UDIN: f64 = 230.0;

/// Residual or maximum must lie within this many % of Udin of the construction's level (for
/// events of at least [`MIN_CYCLES_FOR_EXTREME`] cycles). IEC 62586-2 Class A: ±0.2 % of Udin.
pub const EXTREME_TOLERANCE_PCT: f64 = 0.2;
/// The residual is judged only for events at least this long (cycles): a shorter one holds no
/// whole Urms(1/2) window.
pub const MIN_CYCLES_FOR_EXTREME: f64 = 1.5;
/// The start must lie within this many cycles (of the actual frequency) of the construction's.
pub const START_TOLERANCE_CYCLES: f64 = 1.0;
/// The duration must lie within this many cycles (of the actual frequency) of the construction's.
pub const DURATION_TOLERANCE_CYCLES: f64 = 1.0;

/// Tolerances are inclusive, and a time compared with one may exceed it by this much (cycles):
/// positions are rounded to 1/256 sample (≤ 5·10⁻⁵ cycle over a duration at 3750 Sps), so an
/// error of exactly one cycle, which a regular half-cycle grid often gives, may read 1.00003.
pub const TIME_RESOLUTION_CYCLES: f64 = 1e-4;

/// Clean supply before the first slot of a run (the meter locks here; it belongs to no case).
pub const LEAD_IN_S: f64 = 1.0;
/// At least this much clean supply before each event.
pub const PRE_S: f64 = 0.5;
/// At least this much clean supply after each event.
pub const POST_S: f64 = 0.5;

/// The simulator's sample rate (`DEFAULT_SAMPLE_RATE_HZ`).
pub const SIM_RATE_HZ: f64 = 6400.0;
/// The Pico's sample rate (ADS131M04, CLKIN 7.68 MHz, OSR 1024).
pub const PICO_RATE_HZ: f64 = 3750.0;

/// Channels of every test signal: A, B, C.
pub const CHANNELS: usize = 3;
/// Channel names, as a node announces them.
pub const CHANNEL_NAMES: [&str; CHANNELS] = ["VA", "VB", "VC"];

/// Volts per sample unit: full scale (2^23) is twice the nominal peak, as a sensor front end
/// is set up (and as `firmware/tests/waveforms.rs` does). Kept as the `f32` the node announces.
pub fn volts_per_unit() -> f32 {
    (UDIN * SQRT_2 * 2.0 / (1u64 << 23) as f64) as f32
}

/// The thresholds every case is judged with: dip 90 %, swell 110 %, interruption 10 %,
/// hysteresis 2 %.
pub fn thresholds() -> Thresholds {
    Thresholds::typical(UDIN as f32)
}

/// Which way the amplitude steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Down to a residual below 100 %.
    Dip,
    /// Up to a maximum above 100 %.
    Swell,
}

/// Which phases the event is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phases {
    /// Phase A only.
    One,
    /// All three phases.
    Three,
}

/// One test: a clean three-phase supply at Udin (A at angle 0, B at −120°, C at +120°) and one
/// rectangular event on it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Case {
    /// Dip or swell.
    pub kind: Kind,
    /// Residual (dip) or maximum (swell) RMS during the event, % of Udin.
    pub level_pct: f64,
    /// Duration in cycles of the actual frequency.
    pub cycles: f64,
    /// Angle of phase A when the event starts, degrees (0 = A's positive-going zero crossing).
    pub angle_deg: f64,
    /// Phase A only, or all three.
    pub phases: Phases,
    /// Actual supply frequency, Hz.
    pub frequency_hz: f64,
    /// The system's nominal frequency (50 or 60), as the instrument is set up.
    pub nominal_hz: f64,
    /// Samples per second.
    pub sample_rate_hz: f64,
}

impl Case {
    /// Length of one cycle of the actual frequency, seconds.
    pub fn cycle_s(&self) -> f64 {
        1.0 / self.frequency_hz
    }

    /// A short name, e.g. `dip 30% 2.5cyc 45° 1ph 49.5/50Hz 6400Sps`.
    pub fn label(&self) -> String {
        format!(
            "{} {}% {}cyc {}° {} {}/{}Hz {}Sps",
            match self.kind {
                Kind::Dip => "dip",
                Kind::Swell => "swell",
            },
            self.level_pct,
            self.cycles,
            self.angle_deg,
            match self.phases {
                Phases::One => "1ph",
                Phases::Three => "3ph",
            },
            self.frequency_hz,
            self.nominal_hz,
            self.sample_rate_hz
        )
    }

    /// Whether channel `ch` carries the event.
    fn affects(&self, ch: usize) -> bool {
        ch == 0 || self.phases == Phases::Three
    }
}

/// Dip residuals of the grid, % of Udin.
pub const DIP_LEVELS: [f64; 8] = [0.0, 5.0, 8.0, 15.0, 30.0, 50.0, 70.0, 85.0];
/// Swell maxima of the grid, % of Udin.
pub const SWELL_LEVELS: [f64; 6] = [112.0, 115.0, 120.0, 130.0, 140.0, 150.0];
/// Durations of the grid, cycles.
pub const DURATIONS: [f64; 7] = [1.5, 2.5, 3.0, 5.0, 10.0, 25.0, 100.0];
/// The long duration (3 s at 50 Hz), tested at start angle 0° only.
pub const LONG_CYCLES: f64 = 150.0;
/// Start angles of phase A, degrees.
pub const ANGLES: [f64; 4] = [0.0, 45.0, 90.0, 135.0];
/// `(actual, nominal)` frequencies, Hz: nominal and ±1 % off it.
pub const FREQUENCIES: [(f64, f64); 6] = [
    (50.0, 50.0),
    (49.5, 50.0),
    (50.5, 50.0),
    (60.0, 60.0),
    (59.4, 60.0),
    (60.6, 60.0),
];

fn levels() -> impl Iterator<Item = (Kind, f64)> {
    DIP_LEVELS
        .iter()
        .map(|l| (Kind::Dip, *l))
        .chain(SWELL_LEVELS.iter().map(|l| (Kind::Swell, *l)))
}

fn cases_at(
    sample_rate_hz: f64,
    frequencies: &[(f64, f64)],
    durations: &[f64],
    angles: &[f64],
) -> Vec<Case> {
    let mut out = Vec::new();
    for &(frequency_hz, nominal_hz) in frequencies {
        for phases in [Phases::One, Phases::Three] {
            for (kind, level_pct) in levels() {
                for &cycles in durations {
                    for &angle_deg in angles {
                        out.push(Case {
                            kind,
                            level_pct,
                            cycles,
                            angle_deg,
                            phases,
                            frequency_hz,
                            nominal_hz,
                            sample_rate_hz,
                        });
                    }
                }
            }
        }
    }
    out
}

/// The suite at the simulator's 6400 Sps: every level × duration × angle × phases × frequency
/// (4704 cases), and 150-cycle events at angle 0° (168 cases).
pub fn grid() -> Vec<Case> {
    let mut out = cases_at(SIM_RATE_HZ, &FREQUENCIES, &DURATIONS, &ANGLES);
    out.extend(cases_at(SIM_RATE_HZ, &FREQUENCIES, &[LONG_CYCLES], &[0.0]));
    out
}

/// A smaller suite at the Pico's 3750 Sps: every level and duration, angles 0° and 90°, one
/// and three phases, 50 Hz, 49.5 Hz, 60 Hz and 60.6 Hz (1568 cases).
pub fn pico_grid() -> Vec<Case> {
    let freqs = [
        FREQUENCIES[0],
        FREQUENCIES[1],
        FREQUENCIES[3],
        FREQUENCIES[5],
    ];
    cases_at(PICO_RATE_HZ, &freqs, &DURATIONS, &[0.0, 90.0])
}
