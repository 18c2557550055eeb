//! Feeding a recording to the measurement core: one uniform sample clock, with what could not
//! be measured flagged rather than judged.
//!
//! IEC 61000-4-30 (4.7, flagging): a Urms(1/2) value over data that is missing or not a
//! measurement must not start, end or extend an event. kare's sensor node does this by flagging
//! half cycles over a failed ADC read (`GAP`, `ADC_ERROR`) and the edge drops those windows
//! (`sources::pqlink`); replay does the same with a file's own defects:
//!
//! - a **missing sample** (blank, `99999`, a binary missing marker) or an **out-of-range** one
//!   (beyond [`OUT_OF_RANGE_PCT`] of Udin) is replaced by a stand-in, the sample one nominal cycle
//!   earlier, so that the meter keeps its zero-crossing lock; every window that touches a
//!   stand-in is flagged and not judged;
//! - a **gap** in the time axis (rows cut out of a CSV, a time stamp jump, a rate segment too slow
//!   to hold a waveform) is never interpolated across: the meter stops before it and starts afresh
//!   after it, on the same clock, so no window spans it. An event in progress stays open across a
//!   gap (nothing in the gap can end it), as it does across a node's flagged windows.
//!
//! Variable-rate recordings are resampled onto the uniform clock as they are fed, one grid
//! sample at a time (linear interpolation between neighbours, never across a gap): nothing the
//! size of the whole record at the grid rate is ever built. Time is bounded too: every interval
//! fed spans at most 1/8 cycle of data, and the grid rate is at most
//! [`MAX_RESAMPLE_PER_CYCLE`] samples per cycle, so each file sample gives at most 64 grid ones.

use kare_firmware::detector::MAX_CHANNELS;
use kare_firmware::urms::{lock_gate, HalfCycle, UrmsConfig, UrmsMeter, POS_ONE};
use std::collections::VecDeque;

/// A value beyond this many % of Udin (as a peak: × √2) is not a measurement of a supply
/// voltage but a corrupt value (`1e23`), a missing-data marker read as a number, or a wrong
/// `--udin`. 1000 % is far above any swell or switching overvoltage an instrument transformer
/// passes, so no real reading is lost.
pub const OUT_OF_RANGE_PCT: f64 = 1000.0;

/// The highest rate a variable-rate recording is resampled to, in samples per nominal cycle.
/// Urms(1/2) gains nothing above a few hundred samples per cycle; the cap keeps a recording
/// with one very fast segment from multiplying the work for the rest of it.
pub const MAX_RESAMPLE_PER_CYCLE: f64 = 512.0;

/// A stretch of the time axis with no data, as the report lists it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gap {
    /// Time of the last sample before the gap, seconds after the first sample.
    pub offset_s: f64,
    /// Time from that sample to the next one, seconds.
    pub duration_s: f64,
}

/// What was flagged rather than judged.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Flagged {
    /// Urms(1/2) windows over a stand-in sample: measured, not judged.
    pub windows: usize,
    /// Samples (rows) in which an analysed channel has no value.
    pub missing_samples: usize,
    /// Samples in which an analysed channel's value is beyond [`OUT_OF_RANGE_PCT`] of Udin.
    pub out_of_range_samples: usize,
    /// Gaps in the time axis, in order.
    pub gaps: Vec<Gap>,
}

/// One window as the feed hands it on: the record (positions on the whole record's clock) and
/// whether it is flagged.
pub(crate) struct Window {
    pub half: HalfCycle,
    pub flagged: bool,
}

/// The meter with what it needs to flag windows and stand in for missing samples.
pub(crate) struct Feed {
    config: UrmsConfig,
    gates: Vec<i32>,
    lsb: Vec<f64>,
    limit: f64,
    meter: UrmsMeter,
    /// Grid index of the current meter's first sample.
    origin: u64,
    /// Samples fed to the current meter.
    local: u64,
    /// One nominal cycle of the last samples fed, per channel (the stand-ins).
    history: Vec<Vec<i32>>,
    /// Runs `[first, last]` of stand-in samples (local indices) a future window may still touch.
    stand_ins: VecDeque<(u64, u64)>,
    frame: Vec<i32>,
    /// Grid samples fed in all.
    pub fed: u64,
    /// Grid index of the last sample fed.
    pub last_index: u64,
    /// Windows flagged so far.
    pub flagged_windows: usize,
}

impl Feed {
    /// A feed for channels with these quantisation steps (`lsb`, in the unit of Udin);
    /// `limit` is the largest magnitude taken as a measurement.
    pub fn new(config: UrmsConfig, udin: f64, lsb: Vec<f64>, limit: f64) -> Feed {
        // The same lock gate the core's Monitor gives each channel.
        let gates: Vec<i32> = lsb
            .iter()
            .map(|l| lock_gate((udin * std::f64::consts::SQRT_2 / l) as f32))
            .collect();
        let cycle = ((config.sample_rate_hz / config.nominal_hz).round() as usize).max(1);
        let channels = lsb.len().min(MAX_CHANNELS);
        Feed {
            meter: UrmsMeter::new(config, &gates),
            config,
            gates,
            limit,
            origin: 0,
            local: 0,
            history: vec![vec![0; cycle]; channels],
            stand_ins: VecDeque::new(),
            frame: vec![0; channels],
            lsb,
            fed: 0,
            last_index: 0,
            flagged_windows: 0,
        }
    }

    /// Starts the meter afresh at grid index `index` (after a gap): no window spans the gap.
    pub fn restart(&mut self, index: u64) {
        self.meter = UrmsMeter::new(self.config, &self.gates);
        self.origin = index;
        self.local = 0;
        for h in &mut self.history {
            h.fill(0);
        }
        self.stand_ins.clear();
    }

    /// Feeds the sample at grid index `index` (values in the unit of Udin; NaN is missing) and
    /// returns the window it completes, if any.
    pub fn push(&mut self, index: u64, values: &[f64]) -> Option<Window> {
        debug_assert!(index >= self.origin + self.local);
        let local = self.local;
        let slot = (local % self.history[0].len() as u64) as usize;
        let mut stand_in = false;
        for (ch, &x) in values.iter().enumerate().take(self.frame.len()) {
            let q = if x.is_finite() && x.abs() <= self.limit {
                (x / self.lsb[ch]).round() as i32
            } else {
                // One cycle earlier keeps the zero crossings where they were.
                stand_in = true;
                self.history[ch][slot]
            };
            self.history[ch][slot] = q;
            self.frame[ch] = q;
        }
        if stand_in {
            match self.stand_ins.back_mut() {
                Some((_, last)) if *last + 1 == local => *last = local,
                _ => self.stand_ins.push_back((local, local)),
            }
        }
        self.local += 1;
        self.fed += 1;
        self.last_index = index;
        let mut half = self.meter.push(&self.frame)?;
        // A stand-in's slot overlaps the window when it lies within one sample of either end
        // (the node's rule: the window's ends are interpolated between samples).
        while self
            .stand_ins
            .front()
            .is_some_and(|&(_, last)| last * POS_ONE + POS_ONE <= half.start)
        {
            self.stand_ins.pop_front();
        }
        let flagged = self.stand_ins.iter().any(|&(first, last)| {
            last * POS_ONE + POS_ONE > half.start && first * POS_ONE < half.end + POS_ONE
        });
        if flagged {
            self.flagged_windows += 1;
        }
        let shift = self.origin * POS_ONE;
        half.start += shift;
        half.end += shift;
        Some(Window { half, flagged })
    }
}

/// Whether a value is missing or beyond the measurable range.
pub(crate) fn unusable(x: f64, limit: f64) -> bool {
    !(x.is_finite() && x.abs() <= limit)
}
