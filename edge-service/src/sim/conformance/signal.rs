//! The test waveform: cases laid out in slots along one long run, generated lazily.

use super::*;
use kare_firmware::urms::MAX_SAMPLE;
use std::f64::consts::{PI, SQRT_2};

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
