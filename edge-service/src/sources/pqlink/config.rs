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
use crate::config::{check, ConfigProblem};
use kare_firmware::detector::{self, Thresholds};
use serde::Deserialize;
use std::time::Duration;

/// One `[[node]]`.
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq)]
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
    /// A node found on `port` by `kare commission`, with the defaults and the given Udin.
    pub fn found(name: &str, port: &str, udin: f64) -> NodeEntry {
        NodeEntry {
            name: name.into(),
            port: port.into(),
            baud: default_baud(),
            udin: udin as f32,
            dip_pct: default_dip(),
            swell_pct: default_swell(),
            interruption_pct: default_interruption(),
            hysteresis_pct: default_hysteresis(),
            silence_s: default_silence(),
        }
    }

    /// Checks the entry on its own; keys are relative to the entry (`dip_pct`). Ranges
    /// (documented in `systemd/kare.toml`): baud 300 to 4 000 000; udin more than 0, at most
    /// 1 000 000 (the node's scale); dip 1 to 99 %, above the interruption threshold; swell 101
    /// to 200 %; interruption 1 to 50 %; hysteresis 0 to 10 % and at most half the smaller
    /// margin to 100 %; silence 0.1 to 3600 s.
    pub fn validate(&self) -> Result<(), ConfigProblem> {
        check::name("name", &self.name)?;
        if self.port.trim().is_empty() {
            return Err(ConfigProblem::new(
                "port",
                "must be a serial port path, e.g. `port = \"/dev/serial/by-id/usb-FTDI_FT232R-if00-port0\"`",
            ));
        }
        check::text("port", &self.port, false)?;
        check::within("baud", f64::from(self.baud), 300.0, 4e6, "baud", "115200")?;
        check::above(
            "udin",
            f64::from(self.udin),
            0.0,
            1e6,
            "volts (the node's scale)",
            "230.0",
        )?;
        check::within(
            "dip_pct",
            f64::from(self.dip_pct),
            1.0,
            99.0,
            "% of Udin",
            "90.0",
        )?;
        check::within(
            "swell_pct",
            f64::from(self.swell_pct),
            101.0,
            200.0,
            "% of Udin",
            "110.0",
        )?;
        check::within(
            "interruption_pct",
            f64::from(self.interruption_pct),
            1.0,
            50.0,
            "% of Udin",
            "10.0",
        )?;
        if self.interruption_pct >= self.dip_pct {
            return Err(ConfigProblem::new(
                "dip_pct",
                format!(
                    "must be above interruption_pct ({} %): the interruption threshold is below the dip threshold, e.g. `dip_pct = 90.0`",
                    self.interruption_pct
                ),
            ));
        }
        check::within(
            "hysteresis_pct",
            f64::from(self.hysteresis_pct),
            0.0,
            10.0,
            "% of Udin",
            "2.0",
        )?;
        let margin = (100.0 - self.dip_pct).min(self.swell_pct - 100.0);
        if self.hysteresis_pct > margin / 2.0 {
            return Err(ConfigProblem::new(
                "hysteresis_pct",
                format!(
                    "must be at most {} % here: half the smaller margin to 100 % (dip_pct {} %, swell_pct {} %), or a dip or swell may never end; e.g. `hysteresis_pct = 2.0` with 90/110 %",
                    margin / 2.0,
                    self.dip_pct,
                    self.swell_pct
                ),
            ));
        }
        check::within("silence_s", self.silence_s, 0.1, 3600.0, "seconds", "2.0")?;
        // The detector's own check, the same the node and `kare replay` use: a backstop.
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
