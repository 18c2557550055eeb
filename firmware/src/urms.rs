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
//! * **Never silent.** During an interruption there are no zero crossings. When no accepted crossing
//!   arrives within 1.5 expected half cycles, the meter free-runs at the last tracked frequency and
//!   keeps reporting (near-zero) values every half cycle, flagged as unlocked.

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

/// Settings of one channel's Urms(1/2) meter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UrmsConfig {
    /// Sampling rate in samples per second.
    pub sample_rate_hz: f32,
    /// Nominal system frequency, 50 or 60 Hz; frequency is tracked within ±10 % of it.
    pub nominal_hz: f32,
    /// Smallest peak of the filtered signal (in sample units) for a zero crossing to count.
    ///
    /// Below it the channel is treated as dead (an interruption) and the meter free-runs. A good
    /// value is about 1 % of the declared voltage's peak in sample units.
    pub lock_gate: i32,
}

impl UrmsConfig {
    /// Settings for a channel whose declared voltage `udin_peak_units` (√2·Udin in sample units)
    /// is known: the lock gate is 1 % of it.
    pub fn new(sample_rate_hz: f32, nominal_hz: f32, udin_peak_units: f32) -> Self {
        let gate = (udin_peak_units * 0.01) as i32;
        UrmsConfig {
            sample_rate_hz,
            nominal_hz,
            lock_gate: gate.max(1),
        }
    }
}

/// One Urms(1/2) value: the RMS over the cycle `[start, end)`, available at `end`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HalfCycle {
    /// Start of the one-cycle window (a fundamental zero crossing).
    pub start: Pos,
    /// End of the window; the value is known once the sample at `end` has arrived.
    pub end: Pos,
    /// RMS over the window, in sample units.
    pub urms: f32,
    /// Fundamental frequency tracked over the window, in Hz.
    pub frequency_hz: f32,
    /// Whether both ends of the window are real zero crossings. `false` while free-running
    /// (no fundamental to lock to, as in an interruption).
    pub locked: bool,
    /// Whether any sample in the window reached [`MAX_SAMPLE`] (the value may read low).
    pub clipped: bool,
}

/// A zero crossing (or a free-running substitute) that bounds half-cycle windows.
#[derive(Clone, Copy, Debug, Default)]
struct Boundary {
    pos: Pos,
    /// Doubled trapezoid integral of x² from sample 0 up to `pos`, wrapping.
    integral2: u64,
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

/// Urms(1/2) meter for one channel. Feed it every sample with [`UrmsMeter::push`].
#[derive(Clone, Debug)]
pub struct UrmsMeter {
    config: UrmsConfig,
    filter: Bandpass,
    /// Index of the next sample to arrive.
    next_index: u64,
    prev_sq: u64,
    prev_filtered: i32,
    /// Doubled trapezoid integral of x² from sample 0 to the previous sample, wrapping.
    integral2: u64,
    /// The last three boundaries, oldest first: a window spans `bounds[0]..bounds[2]`.
    bounds: [Boundary; 3],
    bound_count: u8,
    /// Peak |filtered| since the last boundary: a crossing counts only if the half cycle before
    /// it had a real fundamental in it.
    half_peak: i32,
    /// Tracked half period in 1/256 sample.
    half_period: u64,
    min_half: u64,
    max_half: u64,
    clipped_since: [bool; 2],
}

impl UrmsMeter {
    /// A meter that has seen no sample yet.
    pub fn new(config: UrmsConfig) -> Self {
        let nominal_half = half_period_pos(config.sample_rate_hz, config.nominal_hz);
        // Track 45–55 Hz on a 50 Hz system and 55–65 Hz on a 60 Hz system (IEC 61000-4-30 range).
        let max_half = half_period_pos(config.sample_rate_hz, config.nominal_hz * 0.9);
        let min_half = half_period_pos(config.sample_rate_hz, config.nominal_hz * 1.1);
        UrmsMeter {
            config,
            filter: Bandpass::new(config.nominal_hz, config.sample_rate_hz),
            next_index: 0,
            prev_sq: 0,
            prev_filtered: 0,
            integral2: 0,
            bounds: [Boundary::default(); 3],
            // Sample 0 is a provisional boundary so that a dead channel still free-runs from the start.
            bound_count: 1,
            half_peak: 0,
            half_period: nominal_half,
            min_half,
            max_half,
            clipped_since: [false; 2],
        }
    }

    /// The settings this meter runs with.
    pub fn config(&self) -> &UrmsConfig {
        &self.config
    }

    /// Tracked fundamental frequency in Hz (nominal until the first cycles are seen).
    pub fn frequency_hz(&self) -> f32 {
        self.config.sample_rate_hz * POS_ONE as f32 / (2 * self.half_period) as f32
    }

    /// Feeds one sample; returns a Urms(1/2) value when this sample completes a half cycle.
    ///
    /// At most one value per sample: a half cycle is always longer than one sample in the supported
    /// frequency range.
    #[inline]
    pub fn push(&mut self, sample: i32) -> Option<HalfCycle> {
        let clipped = sample >= MAX_SAMPLE || sample <= -MAX_SAMPLE;
        let x = sample.clamp(-MAX_SAMPLE, MAX_SAMPLE);
        let sq = (x as i64 * x as i64) as u64;
        let index = self.next_index;
        self.next_index += 1;
        let filtered = self.filter.step(x);
        if clipped {
            self.clipped_since[1] = true;
        }

        if index == 0 {
            self.prev_sq = sq;
            self.prev_filtered = filtered;
            return None;
        }

        let mut out = None;
        // A candidate crossing between sample index-1 (prev) and index (this one).
        let prev = self.prev_filtered;
        if (prev < 0) != (filtered < 0) && prev != filtered {
            let frac = interpolate(prev, filtered);
            let pos = ((index - 1) << 8) + frac;
            out = self.on_crossing(pos, frac, sq);
        }
        let peak = filtered.unsigned_abs().min(i32::MAX as u32) as i32;
        if peak > self.half_peak {
            self.half_peak = peak;
        }

        self.integral2 = self.integral2.wrapping_add(self.prev_sq + sq);
        self.prev_sq = sq;
        self.prev_filtered = filtered;

        if out.is_none() {
            out = self.free_run(index);
        }
        out
    }

    /// Handles a sign change of the filtered signal at `pos`, between the previous sample and this one.
    fn on_crossing(&mut self, pos: Pos, frac: u64, sq_next: u64) -> Option<HalfCycle> {
        let last = self.bounds[self.bound_count as usize - 1];
        let since = pos.saturating_sub(last.pos);
        let provisional = self.bound_count == 1 && !last.real;
        if self.half_peak < self.config.lock_gate {
            return None;
        }
        if !provisional && since < self.min_half * 3 / 4 {
            // A second crossing too soon: noise or a harmonic riding on the fundamental.
            return None;
        }
        let integral2 = self.integral_at(frac, sq_next);
        let b = Boundary {
            pos,
            integral2,
            real: true,
        };
        if provisional && since < self.half_period * 3 / 2 {
            // The first real crossing replaces the provisional start of data.
            self.bounds[0] = b;
            self.half_peak = 0;
            self.clipped_since = [false, self.clipped_since[1]];
            return None;
        }
        if last.real && since >= self.min_half && since <= self.max_half {
            // Smooth over a full cycle's worth of half periods so DC offset (unequal halves) cancels.
            self.half_period = (self.half_period * 3 + since) / 4;
        }
        self.push_boundary(b)
    }

    /// Places a substitute boundary when no real crossing has come for 1.5 half periods.
    ///
    /// The boundary goes where the crossing was due (one tracked half period after the last one);
    /// its integral is interpolated linearly between the last boundary and now. On a dead channel
    /// that is exact on average, and it needs no sample history.
    fn free_run(&mut self, index: u64) -> Option<HalfCycle> {
        let last = self.bounds[self.bound_count as usize - 1];
        let now = index << 8;
        if now < last.pos + self.half_period * 3 / 2 {
            return None;
        }
        let pos = last.pos + self.half_period;
        let delta = self.integral2.wrapping_sub(last.integral2) as u128;
        let part = delta * (pos - last.pos) as u128 / (now - last.pos) as u128;
        let integral2 = last.integral2.wrapping_add(part as u64);
        self.push_boundary(Boundary {
            pos,
            integral2,
            real: false,
        })
    }

    fn push_boundary(&mut self, b: Boundary) -> Option<HalfCycle> {
        self.half_peak = 0;
        let clipped = self.clipped_since[0] || self.clipped_since[1];
        self.clipped_since = [self.clipped_since[1], false];
        if (self.bound_count as usize) < 3 {
            self.bounds[self.bound_count as usize] = b;
            self.bound_count += 1;
            if self.bound_count < 3 {
                return None;
            }
        } else {
            self.bounds = [self.bounds[1], self.bounds[2], b];
        }
        let first = self.bounds[0];
        let span = b.pos - first.pos;
        let integral2 = b.integral2.wrapping_sub(first.integral2);
        // integral2 is twice the integral in (sample units)² · samples; span is in 1/256 sample.
        let mean_sq = integral2 as f32 * (POS_ONE as f32 / 2.0) / span as f32;
        Some(HalfCycle {
            start: first.pos,
            end: b.pos,
            urms: sqrtf(mean_sq),
            frequency_hz: self.config.sample_rate_hz * POS_ONE as f32 / span as f32,
            locked: first.real && self.bounds[1].real && b.real,
            clipped,
        })
    }

    /// Doubled trapezoid integral of x² up to `frac/256` past the previous sample (whose square is
    /// `self.prev_sq`; the integral up to it is `self.integral2`), the next sample's square being
    /// `sq_next`.
    fn integral_at(&self, frac: u64, sq_next: u64) -> u64 {
        self.integral2
            .wrapping_add(partial2(self.prev_sq, sq_next, frac))
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
