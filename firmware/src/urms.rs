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
//!   (a 49.7 Hz cycle at 600 samples/s is 12.07 samples). Window boundaries are placed to 1/256 of
//!   a sample and the square of the signal is integrated with the trapezoid rule between those
//!   fractional positions, so the window is exactly one tracked cycle. A running prefix integral
//!   (wrapping `u64`) makes each window's integral a single subtraction.
//! * **A grid of windows, steered by zero crossings.** Boundaries fall every tracked half period
//!   on a grid, like the output of a phase-locked loop. The fundamental zero crossings of a
//!   *reference* channel (interpolated to 1/256 sample) steer the grid's period and phase; they
//!   never bound a window themselves. Crossings go missing in an interruption and are displaced
//!   for two or three cycles after any sudden step (the band-pass rings), and a new reference's
//!   crossings sit 60° or 120° from the old one's: had windows followed them, some would not be
//!   one cycle long, and their values would be wrong on every phase (a short interruption read
//!   as a dip, a false swell on a healthy phase after a single-phase fault, residuals off by up
//!   to 1 % of Udin). On the grid, every window is one tracked cycle (and flagged unlocked when the
//!   tracked cycle may not be the supply's: see `ARCHITECTURE.md`, acquisition); in steady state it
//!   sits on the reference's zero crossings, as IEC 61000-4-30 asks. Once tracking, a crossing
//!   moves the grid by at most 1/512 of a half period, so a window's length never changes by more
//!   than 0.1 % of a cycle.
//! * **One set of windows for all channels.** Every channel's RMS is taken over the same windows,
//!   so one half cycle is one record for all phases (one pqlink frame, one row); in steady state
//!   every window is one exact cycle of every phase, so the RMS of each phase is exact whatever
//!   its angle. When the reference phase dies (a single-phase loss), the strongest live phase
//!   steers the grid instead, once its place on the grid is learned from its first crossing.
//! * **Never silent.** During an interruption there are no zero crossings: the grid runs on at
//!   the last tracked frequency and keeps reporting (near-zero) values every half cycle, flagged
//!   unlocked, and the supply's return finds the windows where they would have been.
//! * **Phase angles for free.** Every channel already runs the band-pass, so each channel's last
//!   rising fundamental zero crossing is kept (interpolated like the reference's, and only when
//!   the lobe before it is alive), and [`UrmsMeter::phase_angles`] compares them with channel 0's
//!   against the tracked period: integers only, no trigonometry, work only at crossings. Every
//!   channel has the same band-pass, so its delay (non-zero off nominal) cancels.

use libm::{atan2f, cosf, sinf, sqrtf};

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
    /// Start of the one-cycle window (a grid boundary: in steady state, a fundamental zero
    /// crossing of the reference channel).
    pub start: Pos,
    /// End of the window; the values are known once the sample at `end` has arrived.
    pub end: Pos,
    /// RMS over the window per channel, in sample units (`channels` entries are used).
    pub urms: [f32; MAX_CHANNELS],
    /// Number of channels.
    pub channels: u8,
    /// Fundamental frequency tracked at the window's end, in Hz.
    pub frequency_hz: f32,
    /// Whether the grid was locked to the reference's zero crossings at the window's three
    /// boundaries. `false` while free-running (no fundamental to lock to, as in an
    /// interruption), while the grid is first pulled onto the supply, or while it slews back
    /// after a phase jump of more than 22.5°. The window is one tracked cycle either way.
    pub locked: bool,
    /// Channel whose zero crossings steer the windows.
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

/// A boundary of half-cycle windows on the grid; `real` when the grid was locked to the
/// reference's zero crossings there.
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

    /// How much later than the input's the output's zero crossings come for a sine whose half
    /// period is `half_period` (in 1/256 sample): the phase of the transfer function at that
    /// frequency, as a delay. Zero at the centre frequency.
    fn delay(&self, half_period: u64) -> i64 {
        let scale = (1u64 << COEF_SHIFT) as f32;
        let (a1, a2) = (self.a1 as f32 / scale, self.a2 as f32 / scale);
        let w = core::f32::consts::PI * POS_ONE as f32 / half_period.max(1) as f32;
        // H(e^jw) = b0 (1 − e^−2jw) / (1 + a1 e^−jw + a2 e^−2jw); arg(1 − e^−2jw) = π/2 − w.
        let den = atan2f(
            -(a1 * sinf(w) + a2 * sinf(2.0 * w)),
            1.0 + a1 * cosf(w) + a2 * cosf(2.0 * w),
        );
        let phase = core::f32::consts::FRAC_PI_2 - w - den;
        (-phase / w * POS_ONE as f32) as i64
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
    /// Clipping in the previous and in the current half cycle.
    clipped: [bool; 2],
    /// This channel's last sign change of the band-passed signal (start of its present lobe)
    /// and its integral there: the raw check of its next crossing (see [`Channel::crossing`]).
    lobe: Option<(Pos, u64)>,
    /// Peak |band-passed| of this channel over its present lobe.
    lobe_peak: i32,
    /// This channel's last rising fundamental zero crossing whose lobe was alive, for
    /// [`UrmsMeter::phase_angles`].
    last_rising: Option<Pos>,
}

impl Channel {
    /// A sign change of this channel's band-passed signal from `prev` to `now`, at `pos`
    /// (`frac`/256 of the way from the previous sample, whose square was `prev_sq`; this
    /// sample's is `sq`): a rising one is kept as the channel's last fundamental zero crossing
    /// when the lobe before it was alive. Called only at sign changes (twice a cycle).
    fn crossing(&mut self, prev: i32, now: i32, pos: Pos, frac: u64, sq: u64) {
        let at = self
            .integral2
            .wrapping_add(partial2(self.prev_sq, sq, frac));
        // The same two gates as the reference's crossings: the band-passed lobe must reach the
        // lock gate, and so must the raw RMS over it, because the band-pass of a phase that has
        // just died rings on above the gate for several cycles and would keep a dead phase's
        // angle alive.
        if prev < 0 && self.lobe_peak >= self.gate {
            if let Some((lobe_pos, lobe_at)) = self.lobe {
                let span = pos.saturating_sub(lobe_pos);
                let raw2 = at.wrapping_sub(lobe_at) as u128;
                let gate2 = (self.gate as u128) * (self.gate as u128);
                if span > 0 && raw2 * (POS_ONE as u128) >= gate2 * (span as u128) {
                    self.last_rising = Some(pos);
                }
            }
        }
        self.lobe = Some((pos, at));
        self.lobe_peak = magnitude(now);
    }
}

/// Hundredths of a degree in a cycle.
const CDEG_PER_CYCLE: u64 = 36_000;

/// A channel's last rising crossing is fresh while it is at most this many quarter cycles old.
/// A live channel crosses once a cycle; the quarter cycle of margin covers a tracked period up
/// to 25 % shorter than the supply's (the tracking range is ±10 %). A dead channel's last
/// crossing that counts ends the lobe it died in, at most half a cycle after it died, so its
/// angle turns `None` within 1.75 cycles of its death.
const FRESH_QUARTERS: u64 = 5;

/// Accepted crossings of the reference, after the first, during which the grid restarts on each
/// crossing while the period is learned (no record is completed meanwhile): about three cycles,
/// longer if the intervals still disagree.
const ACQUIRE_CROSSINGS: u8 = 6;

/// Once tracking, a crossing moves the grid by 1/16 of its phase error, and by at most this
/// fraction of a half period: 1/512 of a half period changes one window's length by 0.1 % of a
/// cycle, which moves a Urms(1/2) value by at most 0.05 % of itself. A band-pass transient after
/// a step (crossings displaced for two or three cycles) therefore cannot bend a window.
const MAX_STEP_DIV: u64 = 512;

/// Consecutive half-period measurements outside the tracking band on the same side (and in the
/// 45–55 Hz range) after which the supply is taken to have really changed frequency (a generator
/// after an outage): four cycles.
const MISFITS_TO_RETUNE: u8 = 8;

/// A lobe tunes the period only if its raw mean square reaches this many times the lock gate's
/// (30 % of Udin: the gate is 1 % of its peak).
const TRACK_GATE_SQ: u128 = 30 * 30;

/// Urms(1/2) meter for up to [`MAX_CHANNELS`] channels sampled together.
/// Feed it every sample with [`UrmsMeter::push`].
///
/// The windows lie on a **grid**: a boundary every tracked half period, placed at its exact
/// fractional position whether or not a zero crossing is there. The reference channel's
/// fundamental zero crossings steer the grid (period and phase, like a phase-locked loop) but
/// never bound a window themselves. So every window is one tracked cycle long: through an
/// interruption (no crossings at all), through the band-pass transient after a sudden step (where
/// crossings are displaced for a few cycles), and across a change of reference phase (whose
/// crossings are 60° or 120° away from the old one's). In steady state the grid sits on the
/// reference's zero crossings, as IEC 61000-4-30 asks.
#[derive(Clone, Debug)]
pub struct UrmsMeter {
    config: UrmsConfig,
    ch: heapless::Vec<Channel, MAX_CHANNELS>,
    reference: usize,
    /// Index of the next sample to arrive.
    next_index: u64,
    /// The last three boundaries, oldest first: a window spans `bounds[0]..bounds[2]`.
    bounds: [Boundary; 3],
    bound_count: u8,
    /// Tracked half period in 1/256 sample.
    half_period: u64,
    min_half: u64,
    max_half: u64,
    /// Where the grid puts the next boundary.
    next_due: Pos,
    /// Where the reference's crossings fall after a grid boundary, in `[0, half_period)`;
    /// `None` until learned (at the start, the grid is put on the reference's first crossing;
    /// after a change of reference, the new one's first crossing tells its place).
    offset: Option<u64>,
    /// The grid has been placed on a real crossing (before, it runs from sample 0 at nominal).
    placed: bool,
    /// Last accepted crossing of the reference, for the period; `None` after a change.
    last_crossing: Option<Pos>,
    /// Last crossing of the reference that agreed with the grid (within 5.6°): the lock.
    last_in_step: Option<Pos>,
    /// The reference's last sign change (start of the present lobe) and its integral there.
    lobe: Option<(Pos, u64)>,
    /// Peak |band-passed| of the reference over the present lobe.
    lobe_peak: i32,
    /// Accepted crossings still to come before the grid is trusted (see [`ACQUIRE_CROSSINGS`]).
    acquiring: u8,
    /// Half-period measurements in a row outside the tracking band, and their sum.
    misfits: u8,
    misfit_sum: u64,
    /// The misfits so far were longer than the tracked half period.
    misfit_longer: bool,
    /// The last strong half period measured agreed with the tracked one (within 0.4 %).
    period_ok: bool,
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
                clipped: [false; 2],
                lobe: None,
                lobe_peak: 0,
                last_rising: None,
            })
            .collect();
        UrmsMeter {
            config,
            ch,
            reference: 0,
            next_index: 0,
            // Sample 0 is a provisional boundary, so that a dead supply still free-runs from the start.
            bounds: [Boundary::default(); 3],
            bound_count: 1,
            half_period: nominal_half,
            min_half,
            max_half,
            next_due: nominal_half,
            offset: None,
            placed: false,
            last_crossing: None,
            last_in_step: None,
            lobe: None,
            lobe_peak: 0,
            acquiring: ACQUIRE_CROSSINGS,
            misfits: 0,
            misfit_sum: 0,
            misfit_longer: false,
            period_ok: true,
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

    /// How far each channel's fundamental lags channel 0's, in hundredths of a degree, in
    /// (−18 000, 18 000]: channel 0 itself reads 0; a balanced ABC supply on channels 0, 1, 2
    /// reads about `[0, 12 000, −12 000]`, an ACB one `[0, −12 000, 12 000]`.
    ///
    /// Taken from each channel's latest rising fundamental zero crossing (band-passed, so
    /// harmonics and noise barely move it; the same band-pass on every channel, so its delay
    /// cancels) against channel 0's, as a fraction of the tracked period. `None` for a channel
    /// with no fresh crossing (dead or missing: none in the last 1.25 tracked cycles), and for
    /// every channel when channel 0 has none. Entries past [`Self::channels`] are `None`.
    ///
    /// Integer arithmetic only, a few operations per channel: cheap enough to call once a
    /// second on a node without FPU.
    pub fn phase_angles(&self) -> [Option<i16>; MAX_CHANNELS] {
        let mut out = [None; MAX_CHANNELS];
        let period = 2 * self.half_period;
        // The position of the last sample taken: crossings are never later than it.
        let now = self.next_index.saturating_sub(1) << 8;
        let fresh = |c: &Channel| {
            c.last_rising
                .filter(|p| now.saturating_sub(*p) * 4 <= period * FRESH_QUARTERS)
        };
        let Some(t0) = self.ch.first().and_then(fresh) else {
            return out;
        };
        for (o, c) in out.iter_mut().zip(self.ch.iter()) {
            if let Some(t) = fresh(c) {
                let lag = (t as i64 - t0 as i64).rem_euclid(period as i64) as u64;
                // Rounded to the nearest hundredth; a full cycle wraps to 0.
                let cdeg = ((lag * CDEG_PER_CYCLE + period / 2) / period) as i32;
                let cdeg = if cdeg > 18_000 { cdeg - 36_000 } else { cdeg };
                *o = Some(cdeg as i16);
            }
        }
        out
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

        // The stretch from the previous sample to this one is `(base, base + 1 sample]`.
        let base = (index - 1) << 8;
        let mut out = None;
        if self.next_due <= base + POS_ONE {
            let frac = self.next_due.saturating_sub(base);
            let at = self.integrals_at(frac, &sq);
            let pos = self.next_due;
            let hp = self.half_period;
            let locked = self.acquiring == 0
                && self.period_ok
                && self
                    .last_in_step
                    .is_some_and(|p| pos.saturating_sub(p) <= hp * 3 / 2);
            self.next_due = pos + hp;
            out = self.close_half(Boundary { pos, real: locked }, &at);
        }

        let r = self.reference;
        let (prev, now) = (self.ch[r].prev_filtered, filtered[r]);
        self.lobe_peak = self.lobe_peak.max(magnitude(prev));
        if (prev < 0) != (now < 0) && prev != now {
            let frac = interpolate(prev, now);
            let at_ref =
                self.ch[r]
                    .integral2
                    .wrapping_add(partial2(self.ch[r].prev_sq, sq[r], frac));
            self.on_crossing(base + frac, at_ref, frac, &sq);
            self.lobe = Some((base + frac, at_ref));
            self.lobe_peak = magnitude(now);
        }

        for (i, c) in self.ch.iter_mut().enumerate() {
            // Every channel's own fundamental crossings, for its phase angle: per sample only a
            // compare and a max; the rest happens at sign changes.
            let (prev, now) = (c.prev_filtered, filtered[i]);
            c.lobe_peak = c.lobe_peak.max(magnitude(prev));
            if (prev < 0) != (now < 0) && prev != now {
                let frac = interpolate(prev, now);
                c.crossing(prev, now, base + frac, frac, sq[i]);
            }
            c.integral2 = c.integral2.wrapping_add(c.prev_sq + sq[i]);
            c.prev_sq = sq[i];
            c.prev_filtered = filtered[i];
        }
        out
    }

    /// Every channel's integral at `frac`/256 of the way from the previous sample to this one.
    #[inline]
    fn integrals_at(&self, frac: u64, sq: &[u64; MAX_CHANNELS]) -> [u64; MAX_CHANNELS] {
        let mut at = [0u64; MAX_CHANNELS];
        for (i, c) in self.ch.iter().enumerate() {
            at[i] = c.integral2.wrapping_add(partial2(c.prev_sq, sq[i], frac));
        }
        at
    }

    /// A sign change of the reference's band-passed signal at `pos` (`frac`/256 of the way from
    /// the previous sample, where the reference's integral is `at_ref`): if it is a real
    /// fundamental crossing, it steers the grid.
    fn on_crossing(&mut self, pos: Pos, at_ref: u64, frac: u64, sq: &[u64; MAX_CHANNELS]) {
        let reference = &self.ch[self.reference];
        if self.lobe_peak < reference.gate {
            return;
        }
        // The band-pass of a phase that has just died rings on for several cycles (at a slightly
        // wrong frequency); only the raw signal tells. A crossing counts only if the raw RMS of
        // the lobe before it reaches the gate too (mean square >= gate² / 2).
        let Some((lobe_pos, lobe_at)) = self.lobe else {
            return;
        };
        let span = pos.saturating_sub(lobe_pos);
        let raw2 = at_ref.wrapping_sub(lobe_at) as u128;
        let gate2 = (reference.gate as u128) * (reference.gate as u128);
        // raw2 / 2 / (span / 256) >= gate² / 2  <=>  raw2 * 256 >= gate² * span
        if span == 0 || raw2 * (POS_ONE as u128) < gate2 * (span as u128) {
            return;
        }
        let hp = self.half_period;
        // Only a strong fundamental tunes the period: a few % of residual voltage at another
        // frequency (a motor's back-EMF during an interruption) must not retune the grid.
        let strong = raw2 * (POS_ONE as u128) >= gate2 * TRACK_GATE_SQ * (span as u128);
        if let Some(last) = self.last_crossing {
            let since = pos.saturating_sub(last);
            if since < self.min_half * 3 / 4 {
                // A second crossing too soon: noise or a harmonic riding on the fundamental.
                return;
            }
            self.track_period(since, strong);
        }
        self.last_crossing = Some(pos);

        if !self.placed || self.acquiring > 0 {
            // Acquisition: the grid restarts on every accepted crossing until the period is
            // known (no window is completed meanwhile, so none that is not one cycle is ever
            // judged). The first crossing also ends a provisional grid run from sample 0 (the
            // supply was dead at the start).
            if self.placed {
                self.acquiring -= 1;
            }
            self.placed = true;
            self.offset = Some(0);
            self.last_in_step = Some(pos);
            let at = self.integrals_at(frac, sq);
            self.bounds[0] = Boundary { pos, real: true };
            for (i, c) in self.ch.iter_mut().enumerate() {
                c.at_bound[0] = at[i];
                c.clipped[0] = false;
            }
            self.bound_count = 1;
            self.next_due = pos + hp;
            return;
        }
        let last_bound = self.bounds[self.bound_count as usize - 1].pos;
        // Off nominal, the band-pass shifts the crossings it finds (3.4° at 1 % off): take that
        // out, so that the grid sits on the signal's own zero crossings.
        let d = (pos as i64 - last_bound as i64 - self.ch[self.reference].filter.delay(hp))
            .rem_euclid(hp as i64);
        let Some(offset) = self.offset else {
            // A new reference: its first crossing says where its crossings sit on the grid.
            self.offset = Some(d as u64);
            self.last_in_step = Some(pos);
            return;
        };
        let half = hp as i64;
        let mut e = d - offset as i64;
        if e >= half / 2 {
            e -= half;
        } else if e < -half / 2 {
            e += half;
        }
        // In step: within 5.6° of the grid (a steady supply stays well inside; a frequency step
        // or a phase jump leaves it until the grid has caught up).
        if e.unsigned_abs() <= hp / 32 {
            self.last_in_step = Some(pos);
        }
        let limit = (hp / MAX_STEP_DIV).max(1) as i64;
        let step = (e / 16).clamp(-limit, limit);
        // The next boundary never moves behind the sample just taken (it would be missed).
        let earliest = (pos - frac + POS_ONE + 1) as i64;
        self.next_due = (self.next_due as i64 + step).max(earliest) as u64;
    }

    /// Updates the tracked half period from the interval `since` between two accepted crossings
    /// (`strong`: the lobe carried at least [`TRACK_GATE_SQ`]'s share of the gate).
    fn track_period(&mut self, since: u64, strong: bool) {
        let hp = self.half_period;
        if !(self.min_half..=self.max_half).contains(&since) {
            return;
        }
        if self.acquiring > 0 {
            // The band-pass is still settling from rest during the first cycle or two (it rings
            // 1.4 % slow): those intervals are left out.
            if self.acquiring <= ACQUIRE_CROSSINGS - 3 {
                self.half_period = (hp + since) / 2;
                // Far off nominal (45.5 Hz) this takes a few more halvings: acquisition ends
                // only once the intervals agree with the tracked period.
                if strong && since.abs_diff(hp) > hp / 128 {
                    self.acquiring = self.acquiring.max(3);
                }
            }
        } else if !strong {
            // A weak lobe says nothing reliable about the supply's period.
        } else if since.abs_diff(hp) <= hp / 128 {
            // Within 0.4 %: the windows are one cycle to within 0.2 % of a value.
            self.period_ok = since.abs_diff(hp) <= hp / 256;
            // Smoothed over several half periods: steady, and DC offset (unequal halves) cancels.
            self.half_period = (hp * 7 + since) / 8;
            self.misfits = 0;
            self.misfit_sum = 0;
        } else {
            // Outside the band: a transient, unless it persists on one side (a real change of
            // frequency, see MISFITS_TO_RETUNE). Until then the records are flagged unlocked.
            let longer = since > hp;
            if self.misfits > 0 && longer != self.misfit_longer {
                self.misfits = 0;
                self.misfit_sum = 0;
            }
            self.misfit_longer = longer;
            self.period_ok = false;
            self.misfits += 1;
            self.misfit_sum += since;
            if self.misfits >= MISFITS_TO_RETUNE {
                self.half_period = self.misfit_sum / MISFITS_TO_RETUNE as u64;
                self.misfits = 0;
                self.misfit_sum = 0;
            }
        }
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
            // The tracked frequency, not the window's span: while the grid slews back onto the
            // crossings (after a frequency step or a phase jump) a window may be up to 0.2 %
            // shorter or longer than the cycle it measures.
            frequency_hz: self.frequency_hz(),
            locked: first.real && self.bounds[1].real && b.real,
            reference: self.reference as u8,
            clipped: 0,
        };
        for (i, c) in self.ch.iter_mut().enumerate() {
            if c.clipped[0] || c.clipped[1] {
                rec.clipped |= 1 << i;
            }
            c.clipped = [c.clipped[1], false];
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

    /// Moves the reference to the strongest live channel when the present one has fallen below
    /// a quarter of its amplitude over the last half cycle. Judged on the raw signal, because the
    /// band-pass of a phase that has just died rings on for several cycles at a slightly wrong
    /// frequency. The grid is not disturbed: the new reference only steers it, once its place
    /// on the grid is known.
    fn choose_reference(&mut self) {
        if self.bound_count < 2 {
            return;
        }
        let n = self.bound_count as usize;
        let half = |c: &Channel| c.at_bound[n - 1].wrapping_sub(c.at_bound[n - 2]);
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
        let span = self.bounds[n - 1].pos - self.bounds[n - 2].pos;
        let gate = self.ch[strongest].gate as u128;
        // Alive: mean square over the half cycle >= gate² / 2 (as for a crossing).
        let alive = (top as u128) * (POS_ONE as u128) >= gate * gate * span as u128;
        // Amplitude below a quarter: mean square below a sixteenth.
        if strongest != self.reference && alive && present.saturating_mul(16) < top {
            self.reference = strongest;
            self.offset = None;
            self.last_crossing = None;
            self.lobe = None;
            self.lobe_peak = 0;
            self.misfits = 0;
            self.misfit_sum = 0;
        }
    }
}

#[inline]
fn magnitude(x: i32) -> i32 {
    x.unsigned_abs().min(i32::MAX as u32) as i32
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
