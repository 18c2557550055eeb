//! `[[node]]`: a sensor node on a serial port, as the configuration file gives it; checked and
//! turned into the source's [`PqlinkSourceConfig`] here, beside the source.
//!
//! ```toml
//! [[node]]
//! name = "feeder-1"
//! port = "/dev/serial/by-id/usb-FTDI_FT232R-if00-port0"
//! udin = 230.0              # declared voltage, volts phase-neutral
//! # baud = 115200, dip_pct = 90, swell_pct = 110, interruption_pct = 10,
//! # hysteresis_pct = 2, silence_s = 2
//! ```

use super::PqlinkSourceConfig;
use crate::config::ConfigProblem;
use kare_firmware::detector::{self, Thresholds};
use serde::Deserialize;
use std::time::Duration;

/// One `[[node]]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    /// Name in events and logs.
    pub name: String,
    /// Serial port path.
    pub port: String,
    /// Baud rate.
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// Declared voltage, volts.
    pub udin: f32,
    /// Dip threshold, % of Udin.
    #[serde(default = "default_dip")]
    pub dip_pct: f32,
    /// Swell threshold, % of Udin.
    #[serde(default = "default_swell")]
    pub swell_pct: f32,
    /// Interruption threshold, % of Udin.
    #[serde(default = "default_interruption")]
    pub interruption_pct: f32,
    /// Hysteresis, % of Udin.
    #[serde(default = "default_hysteresis")]
    pub hysteresis_pct: f32,
    /// Seconds without a frame before the node is reported lost.
    #[serde(default = "default_silence")]
    pub silence_s: f64,
}

/// pqlink runs at 115 200 baud 8N1 (`firmware/PROTOCOL.md`).
fn default_baud() -> u32 {
    115_200
}
fn default_dip() -> f32 {
    detector::DEFAULT_DIP_PCT
}
fn default_swell() -> f32 {
    detector::DEFAULT_SWELL_PCT
}
fn default_interruption() -> f32 {
    detector::DEFAULT_INTERRUPTION_PCT
}
fn default_hysteresis() -> f32 {
    detector::DEFAULT_HYSTERESIS_PCT
}
/// A node sends a frame every half cycle: 2 s of nothing is a hundred frames missed.
fn default_silence() -> f64 {
    2.0
}

impl NodeEntry {
    /// Checks the entry on its own; keys are relative to the entry (`dip_pct`).
    pub fn validate(&self) -> Result<(), ConfigProblem> {
        if self.name.trim().is_empty() {
            return Err(ConfigProblem::new("name", "must not be empty"));
        }
        if self.port.trim().is_empty() {
            return Err(ConfigProblem::new("port", "must be a serial port path"));
        }
        if self.baud == 0 {
            return Err(ConfigProblem::new(
                "baud",
                "must be a baud rate such as 115200",
            ));
        }
        if !(self.silence_s.is_finite() && self.silence_s > 0.0) {
            return Err(ConfigProblem::new(
                "silence_s",
                "must be a positive number of seconds",
            ));
        }
        self.thresholds()
            .validate()
            .map_err(|why| ConfigProblem::new("", why))
    }

    /// The node's thresholds.
    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            udin: self.udin,
            dip_pct: self.dip_pct,
            swell_pct: self.swell_pct,
            interruption_pct: self.interruption_pct,
            hysteresis_pct: self.hysteresis_pct,
        }
    }

    /// The source to start for this node.
    pub fn source_config(&self) -> PqlinkSourceConfig {
        PqlinkSourceConfig {
            name: self.name.clone(),
            port: self.port.clone(),
            baud: self.baud,
            thresholds: self.thresholds(),
            silence: Duration::from_secs_f64(self.silence_s),
        }
    }
}
