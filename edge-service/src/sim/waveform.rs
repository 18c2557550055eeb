//! Synthetic three-phase waveforms from a [`Scenario`]: the simulated node's ADC.
//!
//! Sample `k` is taken at `t = k / sample_rate_hz`. Each phase is
//!
//! ```text
//! v_p(k) = a_p(k) · √2·Udin · [ sin φ_p + Σ_h (pct_h / 100) · sin(h·φ_p) ] + noise
//! φ_p(k) = θ(k) − p·120° + jump_p(k),    θ(k + 1) = θ(k) + 2π·f(k) / sample_rate_hz
//! ```
//!
//! where `a_p` is the product of the amplitude factors of the events acting on phase `p`, `f` the
//! frequency in force (background, drift, frequency event) and `jump_p` the sum of active phase
//! jumps. The phase angle `θ` is integrated sample by sample rather than computed as `2π·f·t`: with
//! a changing `f`, `2π·f·t` would jump by `2π·Δf·t` at every change, a discontinuity no real
//! supply has. Harmonics follow the fundamental angle (`h·φ`), so the 3rd is zero-sequence as on
//! a real network. Noise is Gaussian from a seeded generator: the same scenario always gives the
//! same samples.

use super::scenario::{EventKind, Scenario, ScenarioError};
use kare_firmware::detector::Thresholds;
use kare_firmware::node::{NodeConfig, SampleSource};
use kare_firmware::pqlink::{ChannelInfo, FirmwareVersion, MAX_CHANNELS};
use kare_firmware::urms::MAX_SAMPLE;
use std::f64::consts::{PI, SQRT_2, TAU};

/// The node configuration a scenario describes: its id, channels and scale, nominal frequency,
/// sample rate, and the usual thresholds (dip 90 %, swell 110 %, interruption 10 %, hysteresis
/// 2 % of Udin) for the node's capture trigger. The firmware version is the `kare` crate's.
pub fn node_config(scenario: &Scenario) -> Result<NodeConfig, ScenarioError> {
    scenario.validate()?;
    let mut channels = heapless::Vec::new();
    for (i, name) in scenario.channels.iter().enumerate() {
        let info = heapless::String::try_from(name.as_str())
            .ok()
            .map(|name| ChannelInfo {
                name,
                volts_per_unit: scenario.volts_per_unit as f32,
            });
        // Unreachable after `validate` (names ≤ 8 bytes, ≤ 3 channels); kept as errors, not panics.
        let pushed = info.is_some_and(|info| channels.push(info).is_ok());
        if !pushed {
            return Err(ScenarioError::Invalid {
                key: format!("channels[{i}]"),
                message: "does not fit the node's channel map".into(),
            });
        }
    }
    Ok(NodeConfig {
        node_id: scenario.node_id,
        firmware: FirmwareVersion {
            major: env!("CARGO_PKG_VERSION_MAJOR").parse().unwrap_or(0),
            minor: env!("CARGO_PKG_VERSION_MINOR").parse().unwrap_or(0),
            patch: env!("CARGO_PKG_VERSION_PATCH").parse().unwrap_or(0),
        },
        channels,
        nominal_hz: scenario.nominal_hz,
        sample_rate_hz: scenario.sample_rate_hz,
        thresholds: Thresholds::typical(scenario.udin as f32),
    })
}

/// A frequency ramp on the sample clock of one pass.
#[derive(Clone, Debug)]
struct DriftSegment {
    start: u64,
    end: u64,
    from_hz: f64,
    to_hz: f64,
}

/// What an active event does.
#[derive(Clone, Debug)]
enum Effect {
    /// Multiply the phases in `mask` by `factor`; `noise` (RMS volts) replaces the background's.
    Scale {
        mask: u8,
        factor: f64,
        noise: Option<f64>,
    },
    /// Run the fundamental at this frequency.
    Frequency(f64),
    /// Shift the phases in `mask` by this many radians.
    Jump { mask: u8, radians: f64 },
}

/// An event on the sample clock of one pass: active for `start <= k < end`.
#[derive(Clone, Debug)]
struct Timed {
    start: u64,
    end: u64,
    effect: Effect,
}

/// The simulated ADC: yields the scenario's samples one instant at a time, in node units.
#[derive(Clone, Debug)]
pub struct ScenarioSource {
    sample_rate_hz: f64,
    channels: usize,
    volts_per_unit: f64,
    peak: f64,
    /// `(order, amplitude relative to the fundamental)`.
    harmonics: Vec<(f64, f64)>,
    /// Background noise, RMS volts.
    noise: f64,
    base_hz: f64,
    drifts: Vec<DriftSegment>,
    /// Sorted by start (stable: file order among equal starts).
    events: Vec<Timed>,
    /// Samples per pass when the scenario repeats.
    period: Option<u64>,
    /// Index of the next sample.
    k: u64,
    /// Fundamental angle of the next sample, radians in `[0, 2π)`.
    theta: f64,
    rng: Gaussian,
}

impl ScenarioSource {
    /// A source at sample 0 of `scenario` (which is validated first).
    pub fn new(scenario: &Scenario) -> Result<Self, ScenarioError> {
        scenario.validate()?;
        let fs = f64::from(scenario.sample_rate_hz);
        let at = |s: f64| (s * fs).round() as u64;
        let udin = scenario.udin;

        let base_hz = scenario.frequency_hz();
        let mut from_hz = base_hz;
        let drifts = scenario
            .drift
            .iter()
            .map(|d| {
                let start = at(d.at_s);
                let seg = DriftSegment {
                    start,
                    end: at(d.at_s + d.over_s).max(start),
                    from_hz,
                    to_hz: d.to_hz,
                };
                from_hz = d.to_hz;
                seg
            })
            .collect();

        let n = scenario.channels.len();
        let mut events: Vec<Timed> = scenario
            .event
            .iter()
            .map(|e| {
                let mask = e.channel_mask(n);
                let effect = match e.kind {
                    EventKind::Dip | EventKind::Swell => Effect::Scale {
                        mask,
                        factor: e.level_pct.unwrap_or(100.0) / 100.0,
                        noise: None,
                    },
                    EventKind::Interruption => Effect::Scale {
                        mask,
                        factor: e.level_pct.unwrap_or(0.0) / 100.0,
                        noise: e.noise_pct.map(|p| p / 100.0 * udin),
                    },
                    EventKind::PhaseLoss => Effect::Scale {
                        mask,
                        factor: 0.0,
                        noise: None,
                    },
                    EventKind::Frequency => Effect::Frequency(e.to_hz.unwrap_or(base_hz)),
                    EventKind::PhaseJump => Effect::Jump {
                        mask,
                        radians: e.degrees.unwrap_or(0.0) * PI / 180.0,
                    },
                };
                let start = at(e.at_s);
                Timed {
                    start,
                    // Every event lasts at least one sample, however short it was written.
                    end: at(e.end_s()).max(start + 1),
                    effect,
                }
            })
            .collect();
        events.sort_by_key(|e| e.start);

        let period = match (scenario.repeat, scenario.period_s) {
            (true, Some(p)) => Some(at(p).max(1)),
            _ => None,
        };
        Ok(ScenarioSource {
            sample_rate_hz: fs,
            channels: n,
            volts_per_unit: scenario.volts_per_unit,
            peak: udin * SQRT_2,
            harmonics: scenario
                .background
                .harmonics
                .iter()
                .map(|&(order, pct)| (f64::from(order), pct / 100.0))
                .collect(),
            noise: scenario.background.noise_pct / 100.0 * udin,
            base_hz,
            drifts,
            events,
            period,
            k: 0,
            theta: 0.0,
            rng: Gaussian::new(scenario.seed()),
        })
    }

    /// Index of the next sample.
    pub fn sample_index(&self) -> u64 {
        self.k
    }

    /// Scenario time of the next sample, seconds.
    pub fn time_s(&self) -> f64 {
        self.k as f64 / self.sample_rate_hz
    }

    /// Samples per second.
    pub fn sample_rate_hz(&self) -> f64 {
        self.sample_rate_hz
    }

    /// Number of channels produced.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The sample index within the current pass.
    fn pass_index(&self) -> u64 {
        self.period.map_or(self.k, |p| self.k % p)
    }

    /// The fundamental frequency in force for the next sample, Hz.
    pub fn frequency_hz(&self) -> f64 {
        let k = self.pass_index();
        let mut f = self.base_hz;
        for d in &self.drifts {
            if k < d.start {
                break;
            }
            f = if k < d.end {
                let x = (k - d.start) as f64 / (d.end - d.start) as f64;
                d.from_hz + (d.to_hz - d.from_hz) * x
            } else {
                d.to_hz
            };
        }
        // Sorted by start: the frequency event that started last wins.
        for e in self.active(k) {
            if let Effect::Frequency(to) = e.effect {
                f = to;
            }
        }
        f
    }

    fn active(&self, k: u64) -> impl Iterator<Item = &Timed> {
        self.events
            .iter()
            .take_while(move |e| e.start <= k)
            .filter(move |e| k < e.end)
    }

    /// The next instant's voltages, volts (entries past [`channels`](Self::channels) are 0),
    /// and advances by one sample.
    pub fn next_volts(&mut self) -> [f64; MAX_CHANNELS] {
        let k = self.pass_index();
        let mut amp = [1.0f64; MAX_CHANNELS];
        let mut jump = [0.0f64; MAX_CHANNELS];
        let mut noise = self.noise;
        for e in self.active(k) {
            match e.effect {
                Effect::Scale {
                    mask,
                    factor,
                    noise: n,
                } => {
                    for (c, a) in amp.iter_mut().enumerate() {
                        if mask & (1 << c) != 0 {
                            *a *= factor;
                        }
                    }
                    if let Some(n) = n {
                        noise = n;
                    }
                }
                Effect::Jump { mask, radians } => {
                    for (c, j) in jump.iter_mut().enumerate() {
                        if mask & (1 << c) != 0 {
                            *j += radians;
                        }
                    }
                }
                Effect::Frequency(_) => {}
            }
        }

        let mut out = [0.0f64; MAX_CHANNELS];
        for (c, v) in out.iter_mut().enumerate().take(self.channels) {
            let phi = self.theta - c as f64 * TAU / 3.0 + jump[c];
            let mut wave = phi.sin();
            for &(order, rel) in &self.harmonics {
                wave += rel * (order * phi).sin();
            }
            *v = amp[c] * self.peak * wave;
            if noise > 0.0 {
                *v += noise * self.rng.next();
            }
        }

        let f = self.frequency_hz();
        self.theta += TAU * f / self.sample_rate_hz;
        if self.theta >= TAU {
            self.theta -= TAU;
        }
        self.k += 1;
        out
    }
}

impl SampleSource for ScenarioSource {
    type Error = core::convert::Infallible;

    /// Node units (`volts / volts_per_unit`, rounded), held to the 24-bit ADC's range as a real
    /// converter would clip (the node flags it).
    fn next_sample(&mut self, out: &mut [i32; MAX_CHANNELS]) -> Result<(), Self::Error> {
        let volts = self.next_volts();
        for (o, v) in out.iter_mut().zip(volts) {
            let units = (v / self.volts_per_unit).round();
            *o = units.clamp(-f64::from(MAX_SAMPLE) - 1.0, f64::from(MAX_SAMPLE)) as i32;
        }
        Ok(())
    }
}

/// Standard normal deviates from SplitMix64 and the Box–Muller transform: deterministic, cheap,
/// and good enough for measurement noise (no `rand` dependency needed).
#[derive(Clone, Debug)]
struct Gaussian {
    state: u64,
    spare: Option<f64>,
}

impl Gaussian {
    fn new(seed: u64) -> Self {
        Gaussian {
            state: seed,
            spare: None,
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1]: never 0, so the logarithm below is finite.
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    fn next(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let r = (-2.0 * self.uniform().ln()).sqrt();
        let a = TAU * self.uniform();
        self.spare = Some(r * a.sin());
        r * a.cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::scenario::{Drift, Event, Phase};

    fn plain() -> Scenario {
        Scenario {
            event: Vec::new(),
            background: Default::default(),
            repeat: false,
            period_s: None,
            ..Scenario::demo()
        }
    }

    #[test]
    fn gaussian_has_unit_variance_and_is_repeatable() {
        let mut g = Gaussian::new(7);
        let xs: Vec<f64> = (0..100_000).map(|_| g.next()).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.02, "{mean}");
        assert!((var - 1.0).abs() < 0.02, "{var}");
        let mut h = Gaussian::new(7);
        assert_eq!(h.next(), xs[0]);
    }

    #[test]
    fn first_sample_is_a_zero_crossing_of_phase_a_and_phases_are_120_degrees_apart() {
        let mut s = ScenarioSource::new(&plain()).unwrap();
        let v = s.next_volts();
        let peak = 230.0 * SQRT_2;
        assert!(v[0].abs() < 1e-9);
        assert!((v[1] - peak * (-TAU / 3.0).sin()).abs() < 1e-9);
        assert!((v[2] - peak * (-2.0 * TAU / 3.0).sin()).abs() < 1e-9);
        assert_eq!(v[3], 0.0);
    }

    #[test]
    fn node_units_are_volts_over_scale_and_clip_at_full_scale() {
        let sc = Scenario {
            event: vec![Event {
                level_pct: Some(200.0),
                ..Event::new(EventKind::Swell, 0.0, 1.0)
            }],
            volts_per_unit: 6e-5,
            ..plain()
        };
        let mut s = ScenarioSource::new(&sc).unwrap();
        let mut out = [0; MAX_CHANNELS];
        let mut max = 0;
        for _ in 0..128 {
            s.next_sample(&mut out).unwrap();
            max = max.max(out[0]);
        }
        assert_eq!(max, MAX_SAMPLE);
    }

    #[test]
    fn drift_ramps_linearly_and_holds() {
        let sc = Scenario {
            drift: vec![Drift {
                at_s: 1.0,
                to_hz: 50.5,
                over_s: 2.0,
            }],
            ..plain()
        };
        let mut s = ScenarioSource::new(&sc).unwrap();
        let mut at = |t: f64| {
            while s.time_s() < t {
                s.next_volts();
            }
            s.frequency_hz()
        };
        assert_eq!(at(0.5), 50.0);
        assert!((at(2.0) - 50.25).abs() < 1e-6);
        assert_eq!(at(3.5), 50.5);
    }

    #[test]
    fn repeating_scenarios_replay_their_events_each_pass() {
        let sc = Scenario {
            event: vec![Event {
                phases: Some(vec![Phase::B]),
                ..Event::new(EventKind::PhaseLoss, 0.5, 0.1)
            }],
            repeat: true,
            period_s: Some(1.0),
            ..plain()
        };
        let mut s = ScenarioSource::new(&sc).unwrap();
        let mut lost = Vec::new();
        for _ in 0..3 * 6400 {
            let t = s.time_s();
            if s.next_volts()[1] == 0.0 {
                lost.push(t);
            }
        }
        assert_eq!(lost.len(), 3 * 640);
        for pass in 0..3 {
            let f = pass as f64;
            assert!(lost.iter().any(|&t| (t - (f + 0.5)).abs() < 1e-9));
            assert!(lost.iter().all(|&t| !(f + 0.6..f + 1.5).contains(&t)));
        }
    }
}
