//! Urms(1/2) as IEC 61000-4-30 defines it: the RMS value over one fundamental cycle, starting at a
//! fundamental zero crossing and refreshed every half cycle.
//!
//! How it is computed, and why:
//!
//! * **Per sample, integers only.** The Pico has no FPU, and a sensor node runs this for every sample
//!   of every channel. Each sample costs one band-pass biquad step in fixed point (to find the
//!   *fundamental* zero crossings, immune to harmonics, noise and DC offset), one square and two
//!   additions. Floating point is used only once per half cycle.
//! * **Exact one-cycle windows at any frequency.** A window never holds a whole number of samples
//!   (a 49.7 Hz cycle at 600 samples/s is 12.07 samples). Zero crossings are interpolated to 1/256
//!   of a sample and the square of the signal is integrated with the trapezoid rule between those
//!   fractional positions, so the window is exactly one measured cycle. A running prefix integral
//!   (wrapping `u64`) makes each window's integral a single subtraction.
//! * **One set of windows for all channels.** The windows follow the fundamental zero crossings of a
//!   *reference* channel, and every channel's RMS is taken over the same windows, so one half cycle
//!   is one record for all phases (one pqlink frame, one row). In steady state every window is one
//!   exact cycle of every phase, so the RMS of each phase is exact whatever its angle. When the
//!   reference phase dies (a single-phase loss), the meter moves to the strongest live phase.
//! * **Never silent.** During an interruption there are no zero crossings. When no accepted crossing
//!   arrives within 1.5 expected half cycles and no phase is alive, the meter free-runs at the last
//!   tracked frequency and keeps reporting (near-zero) values every half cycle, flagged unlocked.

use libm::{cosf, sinf, sqrtf};

/// A position on the sample clock in 1/256 of a sample (Q56.8): sample `k` is at `k << 8`.
pub type Pos = u64;

/// Sub-sample resolution of [`Pos`]: positions count 1/256 of a sample.
pub const POS_ONE: u64 = 256;

/// Largest sample magnitude the meter accepts; larger inputs are clipped to it and flagged.
///
/// 2^23 is the full scale of a 24-bit ADC such as the ADS131M04. Keeping squares below 2^46 lets a
/// `u64` prefix integral and its fractional parts stay exact.
pub const MAX_SAMPLE: i32 = (1 << 23) - 1;

/// Fixed-point shift of the biquad coefficients (Q2.28).
const COEF_SHIFT: u32 = 28;

/// Quality factor of the band-pass that finds fundamental zero crossings. A resonator's transient
/// rings at ω·√(1 − 1/4Q²), which moves crossings after a sudden amplitude step; Q = 3 keeps that
/// error in the residual of a dip under 0.2 % of Udin (Q = 1 gave 0.6 %) and attenuates the 3rd
/// harmonic to an eighth, while still settling within two cycles.
const BANDPASS_Q: f32 = 3.0;

/// Most channels one meter (and one detector) handles: three phases, neutral and spares.
pub const MAX_CHANNELS: usize = 8;

/// Settings of a Urms(1/2) meter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UrmsConfig {
    /// Sampling rate in samples per second.
    pub sample_rate_hz: f32,
    /// Nominal system frequency, 50 or 60 Hz; frequency is tracked within ±10 % of it.
    pub nominal_hz: f32,
}

/// Lock gate for a channel whose declared voltage peak (√2·Udin) is `udin_peak_units` sample
/// units: the smallest band-passed peak for a zero crossing to count, 1 % of it. Below the gate
/// a channel is treated as dead.
pub fn lock_gate(udin_peak_units: f32) -> i32 {
    ((udin_peak_units * 0.01) as i32).max(1)
}

/// One Urms(1/2) record: every channel's RMS over the cycle `[start, end)`, available at `end`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HalfCycle {
    /// Start of the one-cycle window (a fundamental zero crossing of the reference channel).
    pub start: Pos,
    /// End of the window; the values are known once the sample at `end` has arrived.
    pub end: Pos,
    /// RMS over the window per channel, in sample units (`channels` entries are used).
    pub urms: [f32; MAX_CHANNELS],
    /// Number of channels.
    pub channels: u8,
    /// Fundamental frequency over the window, in Hz.
    pub frequency_hz: f32,
    /// Whether both ends of the window are real zero crossings. `false` while free-running
    /// (no fundamental to lock to, as in an interruption) or just after changing reference.
    pub locked: bool,
    /// Channel whose zero crossings bound the windows.
    pub reference: u8,
    /// Bit `i` set: a sample of channel `i` in the window reached [`MAX_SAMPLE`] (reads low).
    pub clipped: u8,
}

impl HalfCycle {
    /// The RMS values of the channels in use.
    pub fn values(&self) -> &[f32] {
        &self.urms[..self.channels as usize]
    }
}

/// A zero crossing (or a substitute) that bounds half-cycle windows.
#[derive(Clone, Copy, Debug, Default)]
struct Boundary {
    pos: Pos,
    real: bool,
}

/// Band-pass biquad in fixed point (RBJ cookbook, constant 0 dB peak gain), transposed direct
/// form I. Zero phase shift at the centre frequency, so crossings are not displaced at nominal.
#[derive(Clone, Copy, Debug)]
struct Bandpass {
    b0: i64,
    a1: i64,
    a2: i64,
    x1: i64,
    x2: i64,
    y1: i64,
    y2: i64,
}

impl Bandpass {
    fn new(centre_hz: f32, sample_rate_hz: f32) -> Self {
        let w0 = 2.0 * core::f32::consts::PI * centre_hz / sample_rate_hz;
        let alpha = sinf(w0) / (2.0 * BANDPASS_Q);
        let a0 = 1.0 + alpha;
        let scale = (1u64 << COEF_SHIFT) as f32;
        Bandpass {
            b0: ((alpha / a0) * scale) as i64,
            a1: ((-2.0 * cosf(w0) / a0) * scale) as i64,
            a2: (((1.0 - alpha) / a0) * scale) as i64,
            x1: 0,
            x2: 0,
            y1: 0,
            y2: 0,
        }
    }

    #[inline]
    fn step(&mut self, x: i32) -> i32 {
        let x = x as i64;
        // b1 = 0 and b2 = -b0 for this band-pass.
        let acc = self.b0 * (x - self.x2) - self.a1 * self.y1 - self.a2 * self.y2;
        let y = acc >> COEF_SHIFT;
        self.x2 = self.x1;
        self.x1 = x;
        self.y2 = self.y1;
        self.y1 = y;
        y as i32
    }
}

/// Per-channel running state.
#[derive(Clone, Copy, Debug)]
struct Channel {
    filter: Bandpass,
    gate: i32,
    prev_sq: u64,
    prev_filtered: i32,
    /// Doubled trapezoid integral of x² from sample 0 to the previous sample, wrapping.
    integral2: u64,
    /// The integral at each of the last three boundaries.
    at_bound: [u64; 3],
    /// Peak |band-passed| since the last boundary: is there a fundamental on this channel?
    half_peak: i32,
    /// Clipping in the previous and in the current half cycle.
    clipped: [bool; 2],
}

/// Urms(1/2) meter for up to [`MAX_CHANNELS`] channels sampled together.
/// Feed it every sample with [`UrmsMeter::push`].
#[derive(Clone, Debug)]
pub struct UrmsMeter {
    config: UrmsConfig,
    ch: heapless::Vec<Channel, MAX_CHANNELS>,
    reference: usize,
    /// The reference has just changed: the next crossing of the new one is taken even if it comes
    /// sooner than a half period (phases are 60° apart, not 180°).
    switching: bool,
    /// Index of the next sample to arrive.
    next_index: u64,
    /// The last three boundaries, oldest first: a window spans `bounds[0]..bounds[2]`.
    bounds: [Boundary; 3],
    bound_count: u8,
    /// Tracked half period in 1/256 sample.
    half_period: u64,
    min_half: u64,
    max_half: u64,
}

impl UrmsMeter {
    /// A meter for `gates.len()` channels (at most [`MAX_CHANNELS`]; more are ignored), with each
    /// channel's lock gate (see [`lock_gate`]).
    pub fn new(config: UrmsConfig, gates: &[i32]) -> Self {
        let nominal_half = half_period_pos(config.sample_rate_hz, config.nominal_hz);
        // Track 45–55 Hz on a 50 Hz system and 55–65 Hz on a 60 Hz system (IEC 61000-4-30 range).
        let max_half = half_period_pos(config.sample_rate_hz, config.nominal_hz * 0.9);
        let min_half = half_period_pos(config.sample_rate_hz, config.nominal_hz * 1.1);
        let filter = Bandpass::new(config.nominal_hz, config.sample_rate_hz);
        let ch = gates
            .iter()
            .take(MAX_CHANNELS)
            .map(|g| Channel {
                filter,
                gate: (*g).max(1),
                prev_sq: 0,
                prev_filtered: 0,
                integral2: 0,
                at_bound: [0; 3],
                half_peak: 0,
                clipped: [false; 2],
            })
            .collect();
        UrmsMeter {
            config,
            ch,
            reference: 0,
            switching: false,
            next_index: 0,
            // Sample 0 is a provisional boundary, so that a dead supply still free-runs from the start.
            bounds: [Boundary::default(); 3],
            bound_count: 1,
            half_period: nominal_half,
            min_half,
            max_half,
        }
    }

    /// The settings this meter runs with.
    pub fn config(&self) -> &UrmsConfig {
        &self.config
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.ch.len()
    }

    /// Tracked fundamental frequency in Hz (nominal until the first cycles are seen).
    pub fn frequency_hz(&self) -> f32 {
        self.config.sample_rate_hz * POS_ONE as f32 / (2 * self.half_period) as f32
    }

    /// Feeds one simultaneous sample of every channel (`samples.len()` should equal
    /// [`Self::channels`]; a missing channel reads 0); returns a record when this sample completes
    /// a half cycle. At most one record per sample.
    #[inline]
    pub fn push(&mut self, samples: &[i32]) -> Option<HalfCycle> {
        let index = self.next_index;
        self.next_index += 1;
        let mut sq = [0u64; MAX_CHANNELS];
        let mut filtered = [0i32; MAX_CHANNELS];
        for (i, c) in self.ch.iter_mut().enumerate() {
            let raw = samples.get(i).copied().unwrap_or(0);
            if raw >= MAX_SAMPLE || raw <= -MAX_SAMPLE {
                c.clipped[1] = true;
            }
            let x = raw.clamp(-MAX_SAMPLE, MAX_SAMPLE);
            sq[i] = (x as i64 * x as i64) as u64;
            filtered[i] = c.filter.step(x);
        }
        if index == 0 {
            for (i, c) in self.ch.iter_mut().enumerate() {
                c.prev_sq = sq[i];
                c.prev_filtered = filtered[i];
            }
            return None;
        }

        let mut out = None;
        // A candidate crossing of the reference between sample index-1 and index.
        let r = self.reference;
        let (prev, now) = (self.ch[r].prev_filtered, filtered[r]);
        if (prev < 0) != (now < 0) && prev != now {
            let frac = interpolate(prev, now);
            out = self.on_crossing(((index - 1) << 8) + frac, frac, &sq);
        }
        for (i, c) in self.ch.iter_mut().enumerate() {
            let peak = filtered[i].unsigned_abs().min(i32::MAX as u32) as i32;
            c.half_peak = c.half_peak.max(peak);
            c.integral2 = c.integral2.wrapping_add(c.prev_sq + sq[i]);
            c.prev_sq = sq[i];
            c.prev_filtered = filtered[i];
        }
        if out.is_none() {
            out = self.free_run(index);
        }
        out
    }

    /// Handles a sign change of the reference's band-passed signal at `pos`, a fraction `frac`
    /// of the way from the previous sample to this one (whose squares are `sq`).
    fn on_crossing(&mut self, pos: Pos, frac: u64, sq: &[u64; MAX_CHANNELS]) -> Option<HalfCycle> {
        let last = self.bounds[self.bound_count as usize - 1];
        let since = pos.saturating_sub(last.pos);
        let provisional = self.bound_count == 1 && !last.real;
        let reference = &self.ch[self.reference];
        if reference.half_peak < reference.gate {
            return None;
        }
        // The band-pass of a phase that has just died rings on for several cycles (at a slightly
        // wrong frequency); only the raw signal tells. A crossing counts only if the raw RMS of
        // the half cycle before it reaches the gate too (mean square >= gate² / 2).
        let newest = self.bound_count as usize - 1;
        let at_ref =
            reference
                .integral2
                .wrapping_add(partial2(reference.prev_sq, sq[self.reference], frac));
        let raw2 = at_ref.wrapping_sub(reference.at_bound[newest]) as u128;
        let gate2 = (reference.gate as u128) * (reference.gate as u128);
        // raw2 / 2 / (since / 256) >= gate² / 2  <=>  raw2 * 256 >= gate² * since
        if since > 0 && raw2 * (POS_ONE as u128) < gate2 * (since as u128) {
            return None;
        }
        let too_soon = if self.switching {
            self.half_period / 4
        } else {
            self.min_half * 3 / 4
        };
        if !provisional && since < too_soon {
            // A second crossing too soon: noise or a harmonic riding on the fundamental.
            return None;
        }
        if provisional && since < self.half_period * 3 / 2 {
            // The first real crossing replaces the provisional start of data.
            self.bounds[0] = Boundary { pos, real: true };
            for (i, c) in self.ch.iter_mut().enumerate() {
                c.at_bound[0] = c.integral2.wrapping_add(partial2(c.prev_sq, sq[i], frac));
                c.half_peak = 0;
                c.clipped[0] = false;
            }
            return None;
        }
        if last.real && !self.switching && since >= self.min_half && since <= self.max_half {
            // Smooth over a few half periods so that DC offset (unequal halves) cancels.
            self.half_period = (self.half_period * 3 + since) / 4;
        }
        // The windows on either side of a change of reference are not whole cycles: the two
        // records that span it are flagged unlocked.
        let real = !self.switching;
        self.switching = false;
        let mut at = [0u64; MAX_CHANNELS];
        for (i, c) in self.ch.iter().enumerate() {
            at[i] = c.integral2.wrapping_add(partial2(c.prev_sq, sq[i], frac));
        }
        self.close_half(Boundary { pos, real }, &at)
    }

    /// No real crossing for 1.5 half periods. If another phase is alive, it becomes the reference
    /// and its next crossing (due within a half period) is taken, however soon. If none is (or the
    /// new reference gave none either), the meter free-runs: the boundary goes where the crossing
    /// was due, with integrals interpolated linearly (exact on average on a dead channel, and it
    /// needs no sample history).
    fn free_run(&mut self, index: u64) -> Option<HalfCycle> {
        let last = self.bounds[self.bound_count as usize - 1];
        let now = index << 8;
        let grace = if self.switching { 5 } else { 3 };
        if now < last.pos + self.half_period * grace / 2 {
            return None;
        }
        if !self.switching {
            let alive = self
                .ch
                .iter()
                .enumerate()
                .filter(|(i, c)| *i != self.reference && c.half_peak >= c.gate)
                .max_by_key(|(_, c)| c.half_peak)
                .map(|(i, _)| i);
            if let Some(new_ref) = alive {
                self.reference = new_ref;
                self.switching = true;
                return None;
            }
        }
        self.switching = false;
        let pos = last.pos + self.half_period;
        let newest = self.bound_count as usize - 1;
        let mut at = [0u64; MAX_CHANNELS];
        for (i, c) in self.ch.iter().enumerate() {
            let last_at = c.at_bound[newest];
            let delta = c.integral2.wrapping_sub(last_at) as u128;
            let part = delta * (pos - last.pos) as u128 / (now - last.pos) as u128;
            at[i] = last_at.wrapping_add(part as u64);
        }
        self.close_half(Boundary { pos, real: false }, &at)
    }

    /// Records boundary `b`, with each channel's integral `at` it, and, once three boundaries
    /// are known, returns the record for the cycle that ends at it.
    fn close_half(&mut self, b: Boundary, at: &[u64; MAX_CHANNELS]) -> Option<HalfCycle> {
        let n = self.bound_count as usize;
        if n < 3 {
            self.bounds[n] = b;
            for (i, c) in self.ch.iter_mut().enumerate() {
                c.at_bound[n] = at[i];
            }
            self.bound_count += 1;
        } else {
            self.bounds = [self.bounds[1], self.bounds[2], b];
            for (i, c) in self.ch.iter_mut().enumerate() {
                c.at_bound = [c.at_bound[1], c.at_bound[2], at[i]];
            }
        }
        let complete = self.bound_count == 3;
        let first = self.bounds[0];
        let span = b.pos - first.pos;
        let mut rec = HalfCycle {
            start: first.pos,
            end: b.pos,
            urms: [0.0; MAX_CHANNELS],
            channels: self.ch.len() as u8,
            frequency_hz: self.config.sample_rate_hz * POS_ONE as f32 / span.max(1) as f32,
            locked: first.real && self.bounds[1].real && b.real,
            reference: self.reference as u8,
            clipped: 0,
        };
        for (i, c) in self.ch.iter_mut().enumerate() {
            if c.clipped[0] || c.clipped[1] {
                rec.clipped |= 1 << i;
            }
            c.clipped = [c.clipped[1], false];
            c.half_peak = 0;
            if complete {
                let integral2 = c.at_bound[2].wrapping_sub(c.at_bound[0]);
                // integral2 is twice the integral in (sample units)² · samples; span is in 1/256 sample.
                let mean_sq = integral2 as f32 * (POS_ONE as f32 / 2.0) / span as f32;
                rec.urms[i] = sqrtf(mean_sq);
            }
        }
        self.choose_reference();
        complete.then_some(rec)
    }

    /// Moves the reference to the strongest channel when the present one has fallen below a
    /// quarter of its amplitude over the last half cycle. Judged on the raw signal, because the
    /// band-pass of a phase that has just died rings on for several cycles at a slightly wrong
    /// frequency, which would bend the windows of the live phases.
    fn choose_reference(&mut self) {
        if self.bound_count < 2 {
            return;
        }
        let half = |c: &Channel| c.at_bound[2].wrapping_sub(c.at_bound[1]);
        let Some((strongest, top)) = self
            .ch
            .iter()
            .enumerate()
            .map(|(i, c)| (i, half(c)))
            .max_by_key(|(_, ms)| *ms)
        else {
            return;
        };
        let present = half(&self.ch[self.reference]);
        // Amplitude below a quarter: mean square below a sixteenth.
        if strongest != self.reference && present.saturating_mul(16) < top {
            self.reference = strongest;
            self.switching = true;
        }
    }
}

/// Doubled trapezoid integral of the straight line from `y0` (at 0) to `y1` (at 1) over
/// `[0, frac/256]`: `2·y0·f + (y1 − y0)·f²` with `f = frac/256`, computed exactly in `u128`.
#[inline]
fn partial2(y0: u64, y1: u64, frac: u64) -> u64 {
    let f = frac as u128;
    let num = (y0 as u128) * f * (512 - f) + (y1 as u128) * f * f;
    (num >> 16) as u64
}

/// Fraction (in 1/256) of the way from `a` to `b` where the straight line through them is zero.
#[inline]
fn interpolate(a: i32, b: i32) -> u64 {
    let a = a as i64;
    let b = b as i64;
    let f = (a * 256) / (a - b);
    f.clamp(0, 255) as u64
}

fn half_period_pos(sample_rate_hz: f32, frequency_hz: f32) -> u64 {
    (sample_rate_hz * POS_ONE as f32 / (2.0 * frequency_hz)) as u64
}
