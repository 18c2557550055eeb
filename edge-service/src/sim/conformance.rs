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

use crate::pipeline::events::kind_order;
use kare_firmware::detector::{Detector, Event, EventKind, Observation, Thresholds, Transition};
use kare_firmware::monitor::{Monitor, Output};
use kare_firmware::urms::{MAX_SAMPLE, POS_ONE};
use std::collections::BTreeMap;
use std::f64::consts::{PI, SQRT_2};
use std::fmt::Write as _;

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

/// Where one case lies on its run's waveform; all times in seconds after the run's first sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slot {
    /// The case's index in the list the run was built from.
    pub index: usize,
    /// The case.
    pub case: Case,
    /// Start of the slot: events starting at or after it (and before `to_s`) are this case's.
    pub from_s: f64,
    /// The event's constructed start.
    pub event_start_s: f64,
    /// The event's constructed end (`event_start_s` + `cycles` cycles).
    pub event_end_s: f64,
    /// End of the slot.
    pub to_s: f64,
}

/// Cases that share a supply frequency, nominal frequency and sample rate, laid out along one
/// waveform.
#[derive(Clone, Debug)]
pub struct Run {
    /// Actual supply frequency, Hz.
    pub frequency_hz: f64,
    /// Nominal frequency, Hz.
    pub nominal_hz: f64,
    /// Samples per second.
    pub sample_rate_hz: f64,
    /// The slots, in time order.
    pub slots: Vec<Slot>,
}

impl Run {
    /// Samples in the run.
    pub fn sample_count(&self) -> u64 {
        let end = self.slots.last().map_or(LEAD_IN_S, |s| s.to_s);
        (end * self.sample_rate_hz).ceil() as u64
    }

    /// Length of the run, seconds.
    pub fn length_s(&self) -> f64 {
        self.sample_count() as f64 / self.sample_rate_hz
    }

    /// The quantised samples of channels A, B, C, generated one instant at a time.
    pub fn samples(&self) -> Samples<'_> {
        Samples {
            run: self,
            k: 0,
            n: self.sample_count(),
            slot: 0,
            lsb: f64::from(volts_per_unit()),
        }
    }

    /// The slot an event starting at `start_s` belongs to; `None` in the lead-in or past the end.
    pub fn slot_of(&self, start_s: f64) -> Option<usize> {
        let i = self.slots.partition_point(|s| s.from_s <= start_s);
        (i > 0 && start_s < self.slots[i - 1].to_s).then(|| i - 1)
    }
}

/// Splits `cases` into runs (one per frequency, nominal and sample rate, in order of first
/// appearance) and lays each run's cases out in slots. [`Slot::index`] is the index in `cases`.
pub fn runs(cases: &[Case]) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        let key = (case.frequency_hz, case.nominal_hz, case.sample_rate_hz);
        let pos = out
            .iter()
            .position(|r| (r.frequency_hz, r.nominal_hz, r.sample_rate_hz) == key);
        let run = match pos {
            Some(p) => &mut out[p],
            None => {
                out.push(Run {
                    frequency_hz: key.0,
                    nominal_hz: key.1,
                    sample_rate_hz: key.2,
                    slots: Vec::new(),
                });
                out.last_mut().expect("just pushed")
            }
        };
        let from_s = run.slots.last().map_or(LEAD_IN_S, |s| s.to_s);
        // Phase A's angle is 2π·f·t: the first instant after PRE_S at the asked angle.
        let f = case.frequency_hz;
        let turn = case.angle_deg / 360.0;
        let k = ((from_s + PRE_S) * f - turn).ceil();
        let event_start_s = (k + turn) / f;
        let event_end_s = event_start_s + case.cycles / f;
        run.slots.push(Slot {
            index,
            case: *case,
            from_s,
            event_start_s,
            event_end_s,
            to_s: event_end_s + POST_S,
        });
    }
    out
}

/// The samples of a [`Run`]: `[A, B, C]` in sample units (volts / [`volts_per_unit`], rounded,
/// held to the 24-bit range), as the simulator's ADC gives them to the node.
pub struct Samples<'a> {
    run: &'a Run,
    k: u64,
    n: u64,
    slot: usize,
    lsb: f64,
}

impl Iterator for Samples<'_> {
    type Item = [i32; CHANNELS];

    fn next(&mut self) -> Option<[i32; CHANNELS]> {
        if self.k >= self.n {
            return None;
        }
        let run = self.run;
        let t = self.k as f64 / run.sample_rate_hz;
        // Whole cycles dropped before taking the angle, so a long run keeps full precision.
        let turns = (run.frequency_hz * self.k as f64 / run.sample_rate_hz).fract();
        self.k += 1;
        while self.slot + 1 < run.slots.len() && t >= run.slots[self.slot].to_s {
            self.slot += 1;
        }
        let slot = run.slots.get(self.slot);
        let mut out = [0i32; CHANNELS];
        for (ch, o) in out.iter_mut().enumerate() {
            let mut amplitude = 1.0;
            if let Some(s) = slot {
                if s.case.affects(ch) && t >= s.event_start_s && t < s.event_end_s {
                    amplitude = s.case.level_pct / 100.0;
                }
            }
            let angle = 2.0 * PI * turns - ch as f64 * 2.0 * PI / 3.0;
            let volts = UDIN * SQRT_2 * amplitude * angle.sin();
            let units = (volts / self.lsb).round();
            *o = units.clamp(-f64::from(MAX_SAMPLE), f64::from(MAX_SAMPLE)) as i32;
        }
        Some(out)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.n - self.k) as usize;
        (left, Some(left))
    }
}

/// One event the construction calls for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Expected {
    /// Dip, swell or interruption.
    pub kind: EventKind,
    /// Residual or maximum, % of Udin.
    pub extreme_pct: f64,
    /// The channel that must be the worst; `None` when all three carry the same level (three
    /// phases), where any may be reported.
    pub worst_channel: Option<u8>,
}

/// The events a case calls for, and nothing else: a dip for a level below 90 % (residual =
/// level, worst channel A for one phase); for three phases below 10 % also an interruption
/// (residual = level; a single phase below 10 % is a dip only); a swell for a level above 110 %.
pub fn expected(case: &Case) -> Vec<Expected> {
    let t = thresholds();
    let worst_channel = match case.phases {
        Phases::One => Some(0),
        Phases::Three => None,
    };
    let mut out = Vec::new();
    let level = case.level_pct;
    if level < f64::from(t.dip_pct) {
        out.push(Expected {
            kind: EventKind::Dip,
            extreme_pct: level,
            worst_channel,
        });
        if case.phases == Phases::Three && level < f64::from(t.interruption_pct) {
            out.push(Expected {
                kind: EventKind::Interruption,
                extreme_pct: level,
                worst_channel,
            });
        }
    }
    if level > f64::from(t.swell_pct) {
        out.push(Expected {
            kind: EventKind::Swell,
            extreme_pct: level,
            worst_channel,
        });
    }
    out
}

/// An event as a path reported it, in the units the judge compares.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    /// Dip, swell or interruption.
    pub kind: EventKind,
    /// Start, seconds after the run's first sample.
    pub start_s: f64,
    /// Duration (end − start), seconds; `None` if it never ended.
    pub duration_s: Option<f64>,
    /// Residual or maximum, % of Udin.
    pub extreme_pct: f64,
    /// Channel of the extreme (0 = A).
    pub worst_channel: u8,
}

impl Found {
    /// From the core's event, with the arithmetic of `pipeline::events::characterise`.
    pub fn from_core(e: &Event, sample_rate_hz: f64) -> Found {
        let seconds = |pos: u64| pos as f64 / POS_ONE as f64 / sample_rate_hz;
        Found {
            kind: e.kind,
            start_s: seconds(e.start),
            duration_s: e.end.map(|end| seconds(end - e.start)),
            extreme_pct: e.extreme as f64 / UDIN * 100.0,
            worst_channel: e.worst_channel,
        }
    }

    /// From an event as the edge reports it (`kare replay`, the pqlink stream).
    pub fn from_reported(e: &crate::pipeline::events::ReportedEvent) -> Found {
        Found {
            kind: e.kind,
            start_s: e.offset_s,
            duration_s: e.duration_s,
            extreme_pct: e.extreme_pct,
            worst_channel: CHANNEL_NAMES
                .iter()
                .position(|n| *n == e.worst_channel)
                .map_or(u8::MAX, |i| i as u8),
        }
    }

    /// One line for listings.
    pub fn describe(&self) -> String {
        format!(
            "{} at {:.6} s for {} s, {:.3} % on {}",
            self.kind.as_str(),
            self.start_s,
            self.duration_s
                .map_or("(open)".to_string(), |d| format!("{d:.6}")),
            self.extreme_pct,
            CHANNEL_NAMES
                .get(self.worst_channel as usize)
                .copied()
                .unwrap_or("?")
        )
    }
}

/// The time-stamp convention, in one place: the errors of a found event's start and duration
/// against the construction, in cycles of the actual frequency (found − constructed).
///
/// Today's convention (IEC 61000-4-30 time stamps as the detector gives them): the start is
/// the start of the first Urms(1/2) window beyond the threshold, the duration is the
/// detector's `end − start` (end = start of the first window back within the hysteresis).
/// Both are compared with the rectangular event's own start and length.
pub fn time_errors(found: &Found, slot: &Slot) -> (f64, Option<f64>) {
    let cycle = slot.case.cycle_s();
    let start = (found.start_s - slot.event_start_s) / cycle;
    let duration = found
        .duration_s
        .map(|d| (d - (slot.event_end_s - slot.event_start_s)) / cycle);
    (start, duration)
}

/// How one expected event was measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    /// What was expected.
    pub expected: Expected,
    /// The event matched to it (the first of its kind in the slot); `None` if missing.
    pub found: Option<Found>,
    /// Residual/maximum error, % of Udin (found − constructed).
    pub extreme_err_pct: Option<f64>,
    /// Start error, cycles (found − constructed).
    pub start_err_cycles: Option<f64>,
    /// Duration error, cycles (found − constructed).
    pub duration_err_cycles: Option<f64>,
}

/// The judgement of one case.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// The case's slot.
    pub slot: Slot,
    /// Each expected event, measured.
    pub measured: Vec<Measured>,
    /// Why the case fails; empty when it passes.
    pub failures: Vec<String>,
}

impl Verdict {
    /// Whether every check held.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Judges what was found in `slot` against the construction: each expected event present once,
/// with the right kind and worst channel, residual/maximum within [`EXTREME_TOLERANCE_PCT`],
/// start within [`START_TOLERANCE_CYCLES`], duration within [`DURATION_TOLERANCE_CYCLES`];
/// and no other event.
pub fn judge(slot: &Slot, found: &[Found]) -> Verdict {
    let case = &slot.case;
    let mut failures = Vec::new();
    let mut measured = Vec::new();
    let expect = expected(case);
    for x in &expect {
        let mut same: Vec<&Found> = found.iter().filter(|f| f.kind == x.kind).collect();
        same.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
        let Some(f) = same.first() else {
            failures.push(format!("missing {}", x.kind.as_str()));
            measured.push(Measured {
                expected: *x,
                found: None,
                extreme_err_pct: None,
                start_err_cycles: None,
                duration_err_cycles: None,
            });
            continue;
        };
        if same.len() > 1 {
            failures.push(format!(
                "{} {}s instead of one (other event)",
                same.len(),
                x.kind.as_str()
            ));
        }
        let extreme_err = f.extreme_pct - x.extreme_pct;
        let (start_err, duration_err) = time_errors(f, slot);
        if case.cycles >= MIN_CYCLES_FOR_EXTREME && extreme_err.abs() > EXTREME_TOLERANCE_PCT {
            failures.push(format!(
                "{} {} {:.3} % of Udin off ({:.3} % for {} %)",
                x.kind.as_str(),
                if x.kind == EventKind::Swell {
                    "maximum"
                } else {
                    "residual"
                },
                extreme_err,
                f.extreme_pct,
                x.extreme_pct
            ));
        }
        if start_err.abs() > START_TOLERANCE_CYCLES + TIME_RESOLUTION_CYCLES {
            failures.push(format!(
                "{} start {start_err:+.3} cycles off",
                x.kind.as_str()
            ));
        }
        match duration_err {
            None => failures.push(format!("{} never ended", x.kind.as_str())),
            Some(d) if d.abs() > DURATION_TOLERANCE_CYCLES + TIME_RESOLUTION_CYCLES => {
                failures.push(format!("{} duration {d:+.3} cycles off", x.kind.as_str()))
            }
            Some(_) => {}
        }
        if let Some(ch) = x.worst_channel {
            if f.worst_channel != ch {
                failures.push(format!(
                    "{} worst channel {} instead of {}",
                    x.kind.as_str(),
                    f.worst_channel,
                    ch
                ));
            }
        }
        measured.push(Measured {
            expected: *x,
            found: Some((*f).clone()),
            extreme_err_pct: Some(extreme_err),
            start_err_cycles: Some(start_err),
            duration_err_cycles: duration_err,
        });
    }
    for f in found {
        if !expect.iter().any(|x| x.kind == f.kind) {
            failures.push(format!("other event: {}", f.describe()));
        }
    }
    Verdict {
        slot: *slot,
        measured,
        failures,
    }
}

/// The replay path over a run: the measurement core's `Monitor` fed with the quantised samples,
/// one instant at a time, exactly as `kare replay` measures a uniform recording with no flagged
/// data (`replay/feed.rs` feeds `UrmsMeter`, then whole units times the scale, then
/// `Monitor::judge`). Every event, ended or still open at the end, in order of start (dip,
/// swell, interruption for equal starts).
pub fn replay(run: &Run) -> Vec<Found> {
    let vpu = volts_per_unit();
    let mut m = Monitor::new(
        run.sample_rate_hz as f32,
        run.nominal_hz as f32,
        &[vpu; CHANNELS],
        thresholds(),
    )
    .expect("the conformance settings are valid");
    let mut events = Vec::new();
    for s in run.samples() {
        m.push(&s, |out| {
            if let Output::Transition(Transition::Ended(e)) = out {
                events.push(e);
            }
        });
    }
    events.extend(m.open_events());
    let mut found: Vec<Found> = events
        .iter()
        .map(|e| Found::from_core(e, run.sample_rate_hz))
        .collect();
    sort_found(&mut found);
    found
}

/// A reference, not the product: an ideal Urms(1/2) meter on the same signals, feeding today's
/// `Detector`. Each value is the exact RMS of the constructed (unquantised) waveform over one
/// cycle, on a regular grid of windows that start at every zero crossing of phase A (every half
/// cycle, whatever the event does to the phases). What it scores is what the detector's
/// thresholds and time-stamp convention allow at best: a failure here is the convention's or
/// the tolerance's, not the meter's.
pub fn ideal(run: &Run) -> Vec<Found> {
    let mut det = Detector::new(thresholds(), CHANNELS);
    let fs = run.sample_rate_hz;
    let cycle = 1.0 / run.frequency_hz;
    let omega = 2.0 * PI * run.frequency_hz;
    let end_s = run.length_s();
    let pos = |t: f64| (t * fs * POS_ONE as f64).round() as u64;
    // ∫ sin²(ωt + φ) dt
    let prim = |t: f64, phi: f64| t / 2.0 - (2.0 * (omega * t + phi)).sin() / (4.0 * omega);
    let mut events = Vec::new();
    let mut slot = 0usize;
    let mut k = 0u64;
    loop {
        let a = k as f64 * cycle / 2.0;
        let b = a + cycle;
        if b > end_s {
            break;
        }
        k += 1;
        while slot + 1 < run.slots.len() && a >= run.slots[slot].to_s {
            slot += 1;
        }
        let s = run.slots.get(slot);
        for ch in 0..CHANNELS {
            let phi = -(ch as f64) * 2.0 * PI / 3.0;
            let part = |u: f64, v: f64| {
                if v > u {
                    prim(v, phi) - prim(u, phi)
                } else {
                    0.0
                }
            };
            let mut sum = part(a, b);
            if let Some(s) = s.filter(|s| s.case.affects(ch)) {
                // The part of the window inside the event carries level² instead of 1.
                let (u, v) = (a.max(s.event_start_s), b.min(s.event_end_s));
                let l = s.case.level_pct / 100.0;
                sum += (l * l - 1.0) * part(u, v);
            }
            let rms = UDIN * (2.0 * sum.max(0.0) / cycle).sqrt();
            let obs = Observation {
                channel: ch as u8,
                start: pos(a),
                end: pos(b),
                value: rms as f32,
            };
            for tr in det.observe(&obs) {
                if let Transition::Ended(e) = tr {
                    events.push(e);
                }
            }
        }
    }
    events.extend(det.open_events());
    let mut found: Vec<Found> = events.iter().map(|e| Found::from_core(e, fs)).collect();
    sort_found(&mut found);
    found
}

/// Sorts events by start, then kind (dip, swell, interruption), as `kare replay` lists them.
pub fn sort_found(found: &mut [Found]) {
    found.sort_by(|a, b| {
        a.start_s
            .total_cmp(&b.start_s)
            .then(kind_order(a.kind).cmp(&kind_order(b.kind)))
    });
}

/// Events found in a run, sorted into its slots: per slot the events that start in it, and
/// those that start in the lead-in or past the last slot (stray: each one is a failure).
pub fn sort_into_slots(run: &Run, found: Vec<Found>) -> (Vec<Vec<Found>>, Vec<Found>) {
    let mut per = vec![Vec::new(); run.slots.len()];
    let mut stray = Vec::new();
    for f in found {
        match run.slot_of(f.start_s) {
            Some(i) => per[i].push(f),
            None => stray.push(f),
        }
    }
    (per, stray)
}

/// Verdicts of many cases, with the events that belong to none.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// One per case, in the order judged.
    pub verdicts: Vec<Verdict>,
    /// Events in a run's lead-in or past its last slot, with the run's description.
    pub stray: Vec<(String, Found)>,
}

impl Report {
    /// Judges one run's events and adds the verdicts.
    pub fn add_run(&mut self, run: &Run, found: Vec<Found>) {
        let (per, stray) = sort_into_slots(run, found);
        for (slot, found) in run.slots.iter().zip(&per) {
            self.verdicts.push(judge(slot, found));
        }
        let name = format!(
            "run {}/{} Hz {} Sps",
            run.frequency_hz, run.nominal_hz, run.sample_rate_hz
        );
        self.stray
            .extend(stray.into_iter().map(|f| (name.clone(), f)));
    }

    /// Cases that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Verdict> {
        self.verdicts.iter().filter(|v| !v.passed())
    }

    /// Whether every case passed and no stray event was found.
    pub fn passed(&self) -> bool {
        self.stray.is_empty() && self.verdicts.iter().all(|v| v.passed())
    }

    /// Every case's errors as CSV, one line per expected event (a case that expects none, or
    /// has other events, still has a line): frequencies, level, duration, angle, phases,
    /// event kind, residual/maximum error (% of Udin), start and duration errors (cycles),
    /// pass, failures.
    pub fn csv(&self) -> String {
        let mut s = String::from(
            "kind,level_pct,cycles,angle_deg,phases,frequency_hz,nominal_hz,sample_rate_hz,\
             event_start_s,event,extreme_err_pct,start_err_cycles,duration_err_cycles,passed,failures\n",
        );
        let num = |x: Option<f64>| x.map_or(String::new(), |v| format!("{v:.4}"));
        for v in &self.verdicts {
            let c = &v.slot.case;
            let head = format!(
                "{},{},{},{},{},{},{},{},{:.6}",
                format!("{:?}", c.kind).to_lowercase(),
                c.level_pct,
                c.cycles,
                c.angle_deg,
                format!("{:?}", c.phases).to_lowercase(),
                c.frequency_hz,
                c.nominal_hz,
                c.sample_rate_hz,
                v.slot.event_start_s
            );
            let tail = format!(
                "{},\"{}\"",
                v.passed(),
                v.failures.join("; ").replace('"', "'")
            );
            if v.measured.is_empty() {
                let _ = writeln!(s, "{head},,,,,{tail}");
            }
            for m in &v.measured {
                let _ = writeln!(
                    s,
                    "{head},{},{},{},{},{tail}",
                    m.expected.kind.as_str(),
                    num(m.extreme_err_pct),
                    num(m.start_err_cycles),
                    num(m.duration_err_cycles)
                );
            }
        }
        s
    }

    /// The table of worst errors: per event kind the worst residual/maximum, start and duration
    /// error with its case; failure counts per kind × phases × frequency; the first failures.
    pub fn table(&self, title: &str, first_failures: usize) -> String {
        let mut s = String::new();
        let failed = self.failures().count();
        let _ = writeln!(s, "== {title} ==");
        let _ = writeln!(
            s,
            "cases {}, passed {}, failed {}, stray events {}",
            self.verdicts.len(),
            self.verdicts.len() - failed,
            failed,
            self.stray.len()
        );
        let _ = writeln!(
            s,
            "tolerances: residual/maximum ±{EXTREME_TOLERANCE_PCT} % of Udin (events ≥ \
             {MIN_CYCLES_FOR_EXTREME} cycles), start ±{START_TOLERANCE_CYCLES} cycle, duration \
             ±{DURATION_TOLERANCE_CYCLES} cycle (inclusive; times allow \
             {TIME_RESOLUTION_CYCLES} cycle for the rounding of positions)"
        );
        let _ = writeln!(s);
        let _ = writeln!(s, "worst errors (found − constructed):");
        for kind in [EventKind::Dip, EventKind::Interruption, EventKind::Swell] {
            let of_kind: Vec<(&Verdict, &Measured)> = self
                .verdicts
                .iter()
                .flat_map(|v| v.measured.iter().map(move |m| (v, m)))
                .filter(|(_, m)| m.expected.kind == kind)
                .collect();
            if of_kind.is_empty() {
                continue;
            }
            let missing = of_kind.iter().filter(|(_, m)| m.found.is_none()).count();
            let _ = writeln!(
                s,
                "  {} ({} expected, {} missing)",
                kind.as_str(),
                of_kind.len(),
                missing
            );
            let worst = |get: &dyn Fn(&Measured) -> Option<f64>| {
                of_kind
                    .iter()
                    .filter_map(|(v, m)| get(m).map(|e| (e, *v)))
                    .max_by(|a, b| a.0.abs().total_cmp(&b.0.abs()))
            };
            let name = if kind == EventKind::Swell {
                "maximum "
            } else {
                "residual"
            };
            if let Some((e, v)) = worst(&|m: &Measured| m.extreme_err_pct) {
                let _ = writeln!(s, "    {name} {e:+9.3} % of Udin   {}", v.slot.case.label());
            }
            if let Some((e, v)) = worst(&|m: &Measured| m.start_err_cycles) {
                let _ = writeln!(
                    s,
                    "    start    {e:+9.3} cycles      {}",
                    v.slot.case.label()
                );
            }
            if let Some((e, v)) = worst(&|m: &Measured| m.duration_err_cycles) {
                let _ = writeln!(
                    s,
                    "    duration {e:+9.3} cycles      {}",
                    v.slot.case.label()
                );
            }
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "failures per kind × phases × frequency (failed/cases):");
        let mut counts: BTreeMap<(Kind, Phases, String), (usize, usize)> = BTreeMap::new();
        for v in &self.verdicts {
            let c = &v.slot.case;
            let key = (
                c.kind,
                c.phases,
                format!(
                    "{:>5}/{} Hz {:>4} Sps",
                    c.frequency_hz, c.nominal_hz, c.sample_rate_hz
                ),
            );
            let e = counts.entry(key).or_default();
            e.1 += 1;
            e.0 += usize::from(!v.passed());
        }
        for ((kind, phases, freq), (bad, all)) in &counts {
            let _ = writeln!(
                s,
                "  {:<5} {:<5} {freq}  {bad:>4}/{all}",
                format!("{kind:?}").to_lowercase(),
                format!("{phases:?}").to_lowercase()
            );
        }
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for v in self.failures() {
            for f in &v.failures {
                *reasons.entry(reason_class(f)).or_default() += 1;
            }
        }
        if !reasons.is_empty() {
            let _ = writeln!(s);
            let _ = writeln!(s, "failed checks by reason:");
            for (r, n) in &reasons {
                let _ = writeln!(s, "  {n:>5}  {r}");
            }
        }
        if failed > 0 || !self.stray.is_empty() {
            let _ = writeln!(s);
            let _ = writeln!(s, "first failing cases:");
            for v in self.failures().take(first_failures) {
                let _ = writeln!(
                    s,
                    "  {} (event at {:.6} s): {}",
                    v.slot.case.label(),
                    v.slot.event_start_s,
                    v.failures.join("; ")
                );
            }
            for (run, f) in self.stray.iter().take(first_failures) {
                let _ = writeln!(s, "  stray event in {run}: {}", f.describe());
            }
        }
        s
    }
}

/// A failure message without its numbers, for counting failures by reason.
fn reason_class(msg: &str) -> String {
    let words: Vec<&str> = msg
        .split_whitespace()
        .filter(|w| {
            !w.starts_with(|c: char| c.is_ascii_digit() || c == '+' || c == '-' || c == '(')
        })
        .take(4)
        .collect();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rms_over(run: &Run, from_s: f64, to_s: f64, ch: usize) -> f64 {
        let fs = run.sample_rate_hz;
        let (a, b) = ((from_s * fs).ceil() as usize, (to_s * fs).floor() as usize);
        let lsb = f64::from(volts_per_unit());
        let sum: f64 = run
            .samples()
            .skip(a)
            .take(b - a)
            .map(|s| (s[ch] as f64 * lsb).powi(2))
            .sum();
        (sum / (b - a) as f64).sqrt() / UDIN * 100.0
    }

    #[test]
    fn the_test_signal_holds_the_constructed_rms_inside_and_outside_the_event() {
        let case = Case {
            kind: Kind::Dip,
            level_pct: 30.0,
            cycles: 10.0,
            angle_deg: 45.0,
            phases: Phases::One,
            frequency_hz: 49.5,
            nominal_hz: 50.0,
            sample_rate_hz: SIM_RATE_HZ,
        };
        let run = &runs(&[case])[0];
        let s = run.slots[0];
        let cycle = case.cycle_s();
        // Eight cycles inside the event, and five before it (whole samples: within 0.1 %).
        let inside = rms_over(
            run,
            s.event_start_s + cycle,
            s.event_start_s + 9.0 * cycle,
            0,
        );
        assert!((inside - 30.0).abs() < 0.1, "{inside}");
        let before = rms_over(run, s.event_start_s - 5.0 * cycle, s.event_start_s, 0);
        assert!((before - 100.0).abs() < 0.1, "{before}");
        let b = rms_over(
            run,
            s.event_start_s + cycle,
            s.event_start_s + 9.0 * cycle,
            1,
        );
        assert!((b - 100.0).abs() < 0.1, "phase B is untouched: {b}");
        // Phase A is at 45° when the event starts.
        let turns = (s.event_start_s * case.frequency_hz).fract();
        assert!((turns - 0.125).abs() < 1e-9, "{turns}");
        assert!(s.event_start_s - s.from_s >= PRE_S && s.to_s - s.event_end_s >= POST_S);
        assert!((s.event_end_s - s.event_start_s - 10.0 / 49.5).abs() < 1e-12);
    }

    #[test]
    fn each_case_calls_for_its_events_and_nothing_else() {
        let mut c = grid()[0];
        c.kind = Kind::Dip;
        c.level_pct = 5.0;
        c.phases = Phases::One;
        let kinds = |c: &Case| expected(c).iter().map(|x| x.kind).collect::<Vec<_>>();
        assert_eq!(
            kinds(&c),
            [EventKind::Dip],
            "one phase below 10 % is a dip only"
        );
        c.phases = Phases::Three;
        assert_eq!(kinds(&c), [EventKind::Dip, EventKind::Interruption]);
        c.level_pct = 85.0;
        assert_eq!(kinds(&c), [EventKind::Dip]);
        c.kind = Kind::Swell;
        c.level_pct = 112.0;
        assert_eq!(kinds(&c), [EventKind::Swell]);
    }

    #[test]
    fn the_grid_covers_every_level_duration_angle_phase_and_frequency() {
        let g = grid();
        assert_eq!(g.len(), 14 * 7 * 4 * 2 * 6 + 14 * 2 * 6);
        let rs = runs(&g);
        assert_eq!(rs.len(), 6);
        assert_eq!(rs.iter().map(|r| r.slots.len()).sum::<usize>(), g.len());
        assert_eq!(pico_grid().len(), 14 * 7 * 2 * 2 * 4);
    }

    #[test]
    fn a_correct_event_passes_and_a_wrong_or_extra_one_fails() {
        let case = Case {
            kind: Kind::Dip,
            level_pct: 5.0,
            cycles: 5.0,
            angle_deg: 0.0,
            phases: Phases::Three,
            frequency_hz: 50.0,
            nominal_hz: 50.0,
            sample_rate_hz: SIM_RATE_HZ,
        };
        let slot = runs(&[case])[0].slots[0];
        let good = |kind| Found {
            kind,
            start_s: slot.event_start_s + 0.002,
            duration_s: Some(0.1 + 0.01),
            extreme_pct: 5.1,
            worst_channel: 2,
        };
        let v = judge(
            &slot,
            &[good(EventKind::Dip), good(EventKind::Interruption)],
        );
        assert!(v.passed(), "{:?}", v.failures);
        let v = judge(&slot, &[good(EventKind::Dip)]);
        assert_eq!(v.failures, ["missing interruption"]);
        let mut late = good(EventKind::Interruption);
        late.start_s += 0.03;
        late.extreme_pct = 5.3;
        let v = judge(&slot, &[good(EventKind::Dip), late]);
        assert_eq!(v.failures.len(), 2, "{:?}", v.failures);
        let v = judge(
            &slot,
            &[
                good(EventKind::Dip),
                good(EventKind::Interruption),
                good(EventKind::Swell),
            ],
        );
        assert!(
            v.failures[0].starts_with("other event: swell"),
            "{:?}",
            v.failures
        );
    }
}
