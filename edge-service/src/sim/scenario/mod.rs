//! Scenario files: what the simulated supply does, as TOML.
//!
//! A scenario describes one sensor node (identity, nominal frequency, sample rate, scale), the
//! steady background (frequency, harmonics, noise), slow frequency drifts, and a list of events
//! (dips, swells, interruptions, a lost phase, frequency steps, phase jumps) at given times.
//! [`Scenario::from_toml`] parses and validates one; every error names the key at fault
//! (`event[2].level_pct must be between 0 and 200, got 250`), and TOML syntax or type errors also
//! give the line and column. `systemd/scenarios/demo.toml` documents every key.
//!
//! Indices in messages count from 0 (`event[0]` is the first `[[event]]`).

mod toml_errors;
mod validate;

use toml_errors::parse_error;

use kare_firmware::pqlink::{CHANNEL_NAME_LEN, MAX_CHANNELS};
use kare_firmware::urms::MAX_SAMPLE;
use serde::Deserialize;
use std::fmt;

/// Default samples per second per channel (the ADS131M04 node's rate).
pub const DEFAULT_SAMPLE_RATE_HZ: u32 = 6400;
/// Default declared voltage, volts RMS phase to neutral.
pub const DEFAULT_UDIN: f64 = 230.0;
/// Default node scale, volts per node unit (0.1 mV: 230 V RMS peaks at about 3.25 M units).
pub const DEFAULT_VOLTS_PER_UNIT: f64 = 1e-4;
/// Default seed of the noise generator.
pub const DEFAULT_SEED: u64 = 0x6b61_7265; // "kare"
/// Highest sample rate accepted: far above any node's ADC rate, and it keeps an unpaced run cheap.
pub const MAX_SAMPLE_RATE_HZ: u32 = 64_000;
/// Frequencies must stay within this many percent of nominal: the Urms meter tracks ±10 %.
pub const FREQUENCY_RANGE_PCT: f64 = 10.0;
/// Smallest Udin peak, in node units, accepted: below it the node's integer arithmetic is coarse.
pub const MIN_PEAK_UNITS: f64 = 1000.0;

/// A whole scenario file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The node's identity, reported in `Hello`.
    pub node_id: u32,
    /// Nominal system frequency: 50 or 60 Hz.
    pub nominal_hz: u8,
    /// Samples per second per channel.
    #[serde(default = "default_sample_rate")]
    pub sample_rate_hz: u32,
    /// Declared input voltage Udin, volts RMS phase to neutral; levels are percentages of it.
    #[serde(default = "default_udin")]
    pub udin: f64,
    /// Channel names, in phase order A, B, C (one to three channels, at most 8 bytes each).
    #[serde(default = "default_channels")]
    pub channels: Vec<String>,
    /// The node's scale: volts per node unit (samples and Urms values are sent in node units).
    #[serde(default = "default_volts_per_unit")]
    pub volts_per_unit: f64,
    /// How long to run, seconds of scenario time; absent: forever.
    pub duration_s: Option<f64>,
    /// Whether the drifts and events repeat every `period_s`.
    #[serde(default)]
    pub repeat: bool,
    /// Length of one pass when `repeat` is set, seconds.
    pub period_s: Option<f64>,
    /// The steady supply the events happen on.
    #[serde(default)]
    pub background: Background,
    /// Slow frequency ramps, in time order, not overlapping.
    #[serde(default)]
    pub drift: Vec<Drift>,
    /// Disturbances. They may overlap: see [`EventKind`] for how they combine.
    #[serde(default)]
    pub event: Vec<Event>,
}

/// The steady supply.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Background {
    /// Fundamental frequency, Hz; absent: `nominal_hz`.
    pub frequency_hz: Option<f64>,
    /// Harmonics as `[order, percent of the fundamental]`, e.g. `[[3, 2.0], [5, 3.0]]`.
    #[serde(default)]
    pub harmonics: Vec<(u32, f64)>,
    /// Additive Gaussian noise, RMS in % of Udin (sensor and ADC noise: present in every state,
    /// including interruptions, unless an interruption sets its own `noise_pct`).
    #[serde(default)]
    pub noise_pct: f64,
    /// Seed of the noise generator; the same seed gives the same samples.
    pub seed: Option<u64>,
}

/// A frequency ramp: from the frequency in force at `at_s` to `to_hz`, linearly over `over_s`,
/// then held.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Drift {
    /// Start of the ramp, seconds from the start of the pass.
    pub at_s: f64,
    /// Frequency at the end of the ramp, Hz.
    pub to_hz: f64,
    /// Length of the ramp, seconds (0: a step).
    pub over_s: f64,
}

/// Which disturbance an [`Event`] is.
///
/// Overlapping events combine: amplitude factors (dip, swell, interruption, phase loss) multiply,
/// phase jumps add, and of several frequency events the one that started last wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The phases in `phases` (default all) drop to `level_pct` (0–100) of their voltage.
    Dip,
    /// The phases in `phases` (default all) rise to `level_pct` (100–200).
    Swell,
    /// Every phase drops to `level_pct` (default 0, at most 10); `noise_pct` replaces the
    /// background noise meanwhile.
    Interruption,
    /// A loose connection: the phases in `phases` (required) read 0 V (plus background noise).
    PhaseLoss,
    /// The fundamental runs at `to_hz` for the duration, with continuous phase.
    Frequency,
    /// The phases in `phases` (default all) are shifted by `degrees` for the duration.
    PhaseJump,
}

impl EventKind {
    /// The name used in scenario files.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Dip => "dip",
            EventKind::Swell => "swell",
            EventKind::Interruption => "interruption",
            EventKind::PhaseLoss => "phase_loss",
            EventKind::Frequency => "frequency",
            EventKind::PhaseJump => "phase_jump",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A phase, by letter: channel 0 is A, 1 is B, 2 is C.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum Phase {
    /// Channel 0.
    A,
    /// Channel 1.
    B,
    /// Channel 2.
    C,
}

impl Phase {
    /// The channel index of this phase.
    pub fn index(self) -> usize {
        match self {
            Phase::A => 0,
            Phase::B => 1,
            Phase::C => 2,
        }
    }
}

/// One disturbance. Which optional fields apply depends on `kind` (see [`EventKind`]); a field
/// that does not apply is refused rather than ignored, so a typo'd intent is never silent.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Start, seconds from the start of the pass. The point on wave where the event starts
    /// follows from it (at 50 Hz, 5.000 s is a zero crossing of phase A, 5.005 s its peak).
    pub at_s: f64,
    /// Length, seconds.
    pub duration_s: f64,
    /// What happens.
    pub kind: EventKind,
    /// Remaining voltage, % of the undisturbed voltage (dip, swell, interruption).
    pub level_pct: Option<f64>,
    /// Affected phases (dip, swell, phase loss, phase jump).
    pub phases: Option<Vec<Phase>>,
    /// Noise during an interruption, RMS % of Udin.
    pub noise_pct: Option<f64>,
    /// Frequency during a frequency event, Hz.
    pub to_hz: Option<f64>,
    /// Phase shift of a phase jump, degrees (−180 to 180).
    pub degrees: Option<f64>,
}

impl Event {
    /// An event of `kind` with no optional field set (fill them in with struct update syntax).
    pub fn new(kind: EventKind, at_s: f64, duration_s: f64) -> Self {
        Event {
            at_s,
            duration_s,
            kind,
            level_pct: None,
            phases: None,
            noise_pct: None,
            to_hz: None,
            degrees: None,
        }
    }

    /// When the event ends, seconds from the start of the pass.
    pub fn end_s(&self) -> f64 {
        self.at_s + self.duration_s
    }

    /// The channel indices the event applies to (all `channels` when `phases` is absent).
    pub fn channel_mask(&self, channels: usize) -> u8 {
        match (&self.phases, self.kind) {
            (Some(phases), k) if k != EventKind::Interruption && k != EventKind::Frequency => {
                phases.iter().fold(0, |m, p| m | 1 << p.index())
            }
            _ => ((1u16 << channels.min(MAX_CHANNELS)) - 1) as u8,
        }
    }
}

/// Why a scenario was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The text is not valid TOML, or a value has the wrong type, or a key is unknown or missing.
    #[error("{location}{message}")]
    Parse {
        /// `line L, column C (key): `, or empty when the parser gave no position.
        location: String,
        /// The parser's message.
        message: String,
    },
    /// A value is out of range or inconsistent with another.
    #[error("{key} {message}")]
    Invalid {
        /// The key at fault, e.g. `event[2].level_pct`.
        key: String,
        /// What is wrong, e.g. `must be between 0 and 200, got 250`.
        message: String,
    },
}

impl ScenarioError {
    fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ScenarioError::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The key named by the error, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ScenarioError::Invalid { key, .. } => Some(key),
            ScenarioError::Parse { .. } => None,
        }
    }
}

fn default_sample_rate() -> u32 {
    DEFAULT_SAMPLE_RATE_HZ
}
fn default_udin() -> f64 {
    DEFAULT_UDIN
}
fn default_channels() -> Vec<String> {
    vec!["VA".into(), "VB".into(), "VC".into()]
}
fn default_volts_per_unit() -> f64 {
    DEFAULT_VOLTS_PER_UNIT
}

impl Scenario {
    /// The built-in demonstration, also shipped (with comments) as `systemd/scenarios/demo.toml`:
    /// a 230 V 50 Hz three-phase supply with 2 % 3rd and 3 % 5th harmonic and 0.3 % noise; a dip
    /// on phase A to 60 % for 120 ms at 5 s, a three-phase swell to 115 % for 300 ms at 12 s, a
    /// 1.5 s interruption at 20 s and a 25 s outage at 30 s; the whole repeats every 70 s.
    pub fn demo() -> Self {
        Scenario {
            node_id: 1,
            nominal_hz: 50,
            sample_rate_hz: DEFAULT_SAMPLE_RATE_HZ,
            udin: DEFAULT_UDIN,
            channels: default_channels(),
            volts_per_unit: DEFAULT_VOLTS_PER_UNIT,
            duration_s: None,
            repeat: true,
            period_s: Some(70.0),
            background: Background {
                frequency_hz: None,
                harmonics: vec![(3, 2.0), (5, 3.0)],
                noise_pct: 0.3,
                seed: None,
            },
            drift: Vec::new(),
            event: vec![
                Event {
                    level_pct: Some(60.0),
                    phases: Some(vec![Phase::A]),
                    ..Event::new(EventKind::Dip, 5.0, 0.12)
                },
                Event {
                    level_pct: Some(115.0),
                    ..Event::new(EventKind::Swell, 12.0, 0.3)
                },
                Event {
                    level_pct: Some(0.0),
                    ..Event::new(EventKind::Interruption, 20.0, 1.5)
                },
                Event {
                    level_pct: Some(0.0),
                    ..Event::new(EventKind::Interruption, 30.0, 25.0)
                },
            ],
        }
    }

    /// Parses and validates a scenario file's text.
    pub fn from_toml(text: &str) -> Result<Self, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| parse_error(text, &e))?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// The background fundamental frequency, Hz.
    pub fn frequency_hz(&self) -> f64 {
        self.background
            .frequency_hz
            .unwrap_or(f64::from(self.nominal_hz))
    }

    /// The noise seed in force.
    pub fn seed(&self) -> u64 {
        self.background.seed.unwrap_or(DEFAULT_SEED)
    }
}

#[cfg(test)]
mod tests {
    use super::toml_errors::key_path;
    use super::*;

    fn err(text: &str) -> String {
        Scenario::from_toml(text).unwrap_err().to_string()
    }

    #[test]
    fn minimal_file_takes_defaults() {
        let s = Scenario::from_toml("node_id = 3\nnominal_hz = 60\n").unwrap();
        assert_eq!(s.sample_rate_hz, 6400);
        assert_eq!(s.udin, 230.0);
        assert_eq!(s.channels, ["VA", "VB", "VC"]);
        assert_eq!(s.volts_per_unit, 1e-4);
        assert_eq!(s.frequency_hz(), 60.0);
        assert!(s.event.is_empty() && s.duration_s.is_none() && !s.repeat);
    }

    #[test]
    fn demo_is_valid() {
        Scenario::demo().validate().unwrap();
    }

    #[test]
    fn type_errors_give_line_column_and_key() {
        let e = err("node_id = 1\nnominal_hz = 50\n\n[[event]]\nat_s = 1\nduration_s = 1\nkind = \"dip\"\nlevel_pct = 50\n\n[[event]]\nat_s = 2\nduration_s = 0.1\nkind = \"dip\"\nlevel_pct = \"sixty\"\n");
        assert!(
            e.starts_with("line 14, column 13 (event[1].level_pct): "),
            "{e}"
        );
        assert!(e.contains("invalid type"), "{e}");
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let e = err("node_id = 1\nnominal_hz = 50\n[background]\nnoise = 0.3\n");
        assert!(
            e.contains("(background.noise)") && e.contains("unknown field `noise`"),
            "{e}"
        );
        let e = err("node_id = 1\nnominal_hz = 50\nudn = 230\n");
        assert!(e.contains("line 3") && e.contains("`udn`"), "{e}");
    }

    #[test]
    fn unknown_kind_and_phase_are_refused() {
        let e = err("node_id = 1\nnominal_hz = 50\n[[event]]\nat_s = 1\nduration_s = 1\nkind = \"sag\"\nlevel_pct = 50\n");
        assert!(e.contains("(event[0].kind)") && e.contains("sag"), "{e}");
        let e = err("node_id = 1\nnominal_hz = 50\n[[event]]\nat_s = 1\nduration_s = 1\nkind = \"dip\"\nlevel_pct = 50\nphases = [\"D\"]\n");
        assert!(e.contains("(event[0].phases)") && e.contains("`D`"), "{e}");
    }

    #[test]
    fn missing_required_key_is_named() {
        let e = err("nominal_hz = 50\n");
        assert!(e.contains("node_id"), "{e}");
    }

    #[test]
    fn header_lines_and_plain_keys_are_located() {
        let text = "a = 1\n[background]\nx = 2\n[[event]]\n[[event]]\ny = 3 # c\n  [3, 2.0],\n";
        assert_eq!(key_path(text, 0).as_deref(), Some("a"));
        assert_eq!(key_path(text, 2).as_deref(), Some("background.x"));
        assert_eq!(key_path(text, 4).as_deref(), Some("event[1]"));
        assert_eq!(key_path(text, 5).as_deref(), Some("event[1].y"));
        assert_eq!(key_path(text, 6), None);
    }
}
