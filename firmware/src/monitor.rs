//! A polyphase monitor: one [`UrmsMeter`] per channel feeding one [`Detector`].
//!
//! This is the hot loop of both the sensor node and the edge service's replay: samples in,
//! Urms(1/2) values and event transitions out through a callback, with no allocation.

use crate::detector::{Detector, Event, Observation, Thresholds, Transition, MAX_CHANNELS};
use crate::urms::{HalfCycle, UrmsConfig, UrmsMeter};

/// What the monitor reports while it is fed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Output {
    /// A channel completed a half cycle.
    Value {
        /// Channel index.
        channel: u8,
        /// The Urms(1/2) value in sample units, with its window.
        half: HalfCycle,
        /// The same value in the unit of Udin.
        value: f32,
    },
    /// An event began or ended.
    Transition(Transition),
}

/// Why a monitor could not be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupError {
    /// No channels, or more than [`MAX_CHANNELS`].
    ChannelCount,
    /// A channel's scale is not a positive finite number.
    Scale,
    /// The sample rate is too low for the nominal frequency (fewer than 8 samples per cycle).
    SampleRate,
    /// The thresholds are inconsistent; the text says how.
    Thresholds(&'static str),
}

impl core::fmt::Display for SetupError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SetupError::ChannelCount => write!(f, "between 1 and {MAX_CHANNELS} channels are needed"),
            SetupError::Scale => write!(f, "every channel needs a positive scale (units per sample step)"),
            SetupError::SampleRate => write!(
                f,
                "the sample rate must be at least 8 samples per cycle of the nominal frequency"
            ),
            SetupError::Thresholds(why) => f.write_str(why),
        }
    }
}

/// Meters and detector for up to [`MAX_CHANNELS`] channels sampled together.
#[derive(Clone, Debug)]
pub struct Monitor {
    meters: heapless::Vec<UrmsMeter, MAX_CHANNELS>,
    scale: [f32; MAX_CHANNELS],
    detector: Detector,
}

impl Monitor {
    /// A monitor for channels sampled at `sample_rate_hz` on a `nominal_hz` system.
    ///
    /// `scale[i]` is the value (in the unit of `thresholds.udin`) of one sample step of channel `i`.
    pub fn new(
        sample_rate_hz: f32,
        nominal_hz: f32,
        scale: &[f32],
        thresholds: Thresholds,
    ) -> Result<Self, SetupError> {
        if scale.is_empty() || scale.len() > MAX_CHANNELS {
            return Err(SetupError::ChannelCount);
        }
        if scale.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(SetupError::Scale);
        }
        if !(sample_rate_hz.is_finite() && nominal_hz > 0.0 && sample_rate_hz >= 8.0 * nominal_hz) {
            return Err(SetupError::SampleRate);
        }
        thresholds.validate().map_err(SetupError::Thresholds)?;
        let mut meters = heapless::Vec::new();
        let mut scales = [1.0; MAX_CHANNELS];
        for (i, s) in scale.iter().enumerate() {
            let udin_peak_units = thresholds.udin * core::f32::consts::SQRT_2 / s;
            let cfg = UrmsConfig::new(sample_rate_hz, nominal_hz, udin_peak_units);
            // Cannot fail: the length was checked above.
            let _ = meters.push(UrmsMeter::new(cfg));
            scales[i] = *s;
        }
        Ok(Monitor {
            detector: Detector::new(thresholds, scale.len()),
            meters,
            scale: scales,
        })
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.meters.len()
    }

    /// The detector, for its thresholds and open events.
    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// Feeds one simultaneous sample of every channel (`samples.len()` must equal
    /// [`Self::channels`]; extra values are ignored, missing channels are not advanced).
    #[inline]
    pub fn push(&mut self, samples: &[i32], mut sink: impl FnMut(Output)) {
        for (ch, (meter, x)) in self.meters.iter_mut().zip(samples).enumerate() {
            if let Some(half) = meter.push(*x) {
                let value = half.urms * self.scale[ch];
                sink(Output::Value {
                    channel: ch as u8,
                    half,
                    value,
                });
                let obs = Observation {
                    channel: ch as u8,
                    start: half.start,
                    end: half.end,
                    value,
                };
                for tr in self.detector.observe(&obs) {
                    sink(Output::Transition(tr));
                }
            }
        }
    }

    /// Events still in progress.
    pub fn open_events(&self) -> impl Iterator<Item = Event> + '_ {
        self.detector.open_events()
    }
}
