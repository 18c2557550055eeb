//! A polyphase monitor: a [`UrmsMeter`] over all channels feeding one [`Detector`].
//!
//! This is the hot loop of both the sensor node and the edge service's replay: samples in,
//! Urms(1/2) values and event transitions out through a callback, with no allocation.

use crate::detector::{Detector, Event, Observation, Thresholds, Transition, MAX_CHANNELS};
use crate::urms::{lock_gate, HalfCycle, UrmsConfig, UrmsMeter};

/// What the monitor reports while it is fed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Output {
    /// A half cycle completed: every channel's Urms(1/2) over the same window.
    Values {
        /// The record in sample units, with its window.
        half: HalfCycle,
        /// The same values in the unit of Udin (`half.channels` entries are used).
        values: [f32; MAX_CHANNELS],
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
            SetupError::ChannelCount => {
                write!(f, "between 1 and {MAX_CHANNELS} channels are needed")
            }
            SetupError::Scale => write!(
                f,
                "every channel needs a positive scale (units per sample step)"
            ),
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
    meter: UrmsMeter,
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
        let mut scales = [1.0; MAX_CHANNELS];
        let mut gates = [0i32; MAX_CHANNELS];
        for (i, s) in scale.iter().enumerate() {
            scales[i] = *s;
            gates[i] = lock_gate(thresholds.udin * core::f32::consts::SQRT_2 / s);
        }
        let config = UrmsConfig {
            sample_rate_hz,
            nominal_hz,
        };
        Ok(Monitor {
            detector: Detector::new(thresholds, scale.len()),
            meter: UrmsMeter::new(config, &gates[..scale.len()]),
            scale: scales,
        })
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.meter.channels()
    }

    /// The detector, for its thresholds and open events.
    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// Feeds one simultaneous sample of every channel (`samples.len()` should equal
    /// [`Self::channels`]).
    #[inline]
    pub fn push(&mut self, samples: &[i32], mut sink: impl FnMut(Output)) {
        if let Some(half) = self.meter.push(samples) {
            let mut values = [0.0; MAX_CHANNELS];
            // Whole sample units, as a sensor node sends them: a recording replayed here and the
            // same waveform streamed from a node give the detector identical numbers.
            for (i, v) in half.values().iter().enumerate() {
                values[i] = libm::roundf(*v) * self.scale[i];
            }
            sink(Output::Values { half, values });
            self.judge(&half, &values, &mut sink);
        }
    }

    /// Judges a record that arrives already measured (from a sensor node's stream), in the unit
    /// of Udin. The detector sees exactly what it sees when the monitor measures it itself.
    pub fn judge(&mut self, half: &HalfCycle, values: &[f32], mut sink: impl FnMut(Output)) {
        for (ch, value) in values.iter().enumerate().take(half.channels as usize) {
            let obs = Observation {
                channel: ch as u8,
                start: half.start,
                end: half.end,
                value: *value,
            };
            for tr in self.detector.observe(&obs) {
                sink(Output::Transition(tr));
            }
        }
    }

    /// How far each channel's fundamental lags channel 0's, in hundredths of a degree (see
    /// [`UrmsMeter::phase_angles`]).
    pub fn phase_angles(&self) -> [Option<i16>; MAX_CHANNELS] {
        self.meter.phase_angles()
    }

    /// Events still in progress.
    pub fn open_events(&self) -> impl Iterator<Item = Event> + '_ {
        self.detector.open_events()
    }
}
