//! The service's configuration: one TOML file, typed, validated at start with messages that
//! name the key (and, for syntax and type errors, the line).
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//!
//! [[node]]                  # a sensor node on a serial port
//! name = "feeder-1"
//! port = "/dev/serial/by-id/usb-FTDI_FT232R-if00-port0"
//! udin = 230.0              # declared voltage, volts phase-neutral
//! # baud = 115200, dip_pct = 90, swell_pct = 110, interruption_pct = 10,
//! # hysteresis_pct = 2, silence_s = 2
//! ```

use crate::rules::RuleSettings;
use crate::site::Site;
use crate::sources::pqlink::PqlinkSourceConfig;
use kare_firmware::detector::Thresholds;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use thiserror::Error;

/// Why a configuration was refused.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML, or a value of the wrong type, or an unknown key.
    #[error("configuration {path}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value that makes no sense.
    #[error("configuration {path}: `{key}`: {problem}")]
    Value {
        /// The file.
        path: String,
        /// The key, e.g. `node[1].dip_pct`.
        key: String,
        /// What is wrong and what would be right.
        problem: String,
    },
}

/// The whole file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address of the JSON API.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Sensor nodes on serial ports.
    #[serde(default)]
    pub node: Vec<NodeEntry>,
    /// Settings for `kare demo`.
    #[serde(default)]
    pub demo: DemoEntry,
    /// The key account this appliance watches (required by `kare run`).
    pub site: Option<Site>,
    /// Ticket rules (defaults: IEEE 1366 five-minute momentary limit, ten-minute flap window…).
    #[serde(default)]
    pub rules: RuleSettings,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

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
    #[serde(default = "d90")]
    pub dip_pct: f32,
    /// Swell threshold, % of Udin.
    #[serde(default = "d110")]
    pub swell_pct: f32,
    /// Interruption threshold, % of Udin.
    #[serde(default = "d10")]
    pub interruption_pct: f32,
    /// Hysteresis, % of Udin.
    #[serde(default = "d2")]
    pub hysteresis_pct: f32,
    /// Seconds without a frame before the node is reported lost.
    #[serde(default = "d2f64")]
    pub silence_s: f64,
}

/// `[demo]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DemoEntry {
    /// Scenario file for the simulated node (default: the built-in demo scenario).
    pub scenario: Option<String>,
    /// Speed factor (1 = real time).
    pub speed: Option<f64>,
}

fn default_baud() -> u32 {
    115_200
}
fn d90() -> f32 {
    90.0
}
fn d110() -> f32 {
    110.0
}
fn d10() -> f32 {
    10.0
}
fn d2() -> f32 {
    2.0
}
fn d2f64() -> f64 {
    2.0
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: default_listen(),
            node: Vec::new(),
            demo: DemoEntry::default(),
            site: None,
            rules: RuleSettings::default(),
        }
    }
}

impl Config {
    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: p.clone(),
            source,
        })?;
        Config::parse(&text, &p)
    }

    /// Parses and validates text; `path` is only for messages.
    pub fn parse(text: &str, path: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.into(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let bad = |key: String, problem: &str| ConfigError::Value {
            path: path.into(),
            key,
            problem: problem.into(),
        };
        let mut names = std::collections::HashSet::new();
        for (i, n) in self.node.iter().enumerate() {
            if n.name.trim().is_empty() {
                return Err(bad(format!("node[{i}].name"), "must not be empty"));
            }
            if !names.insert(n.name.as_str()) {
                return Err(bad(
                    format!("node[{i}].name"),
                    "is used by another node: names must be unique",
                ));
            }
            if n.port.trim().is_empty() {
                return Err(bad(format!("node[{i}].port"), "must be a serial port path"));
            }
            if n.baud == 0 {
                return Err(bad(
                    format!("node[{i}].baud"),
                    "must be a baud rate such as 115200",
                ));
            }
            if !(n.silence_s.is_finite() && n.silence_s > 0.0) {
                return Err(bad(
                    format!("node[{i}].silence_s"),
                    "must be a positive number of seconds",
                ));
            }
            n.thresholds()
                .validate()
                .map_err(|why| bad(format!("node[{i}]"), why))?;
        }
        if let Some(site) = &self.site {
            site.validate()
                .map_err(|(key, problem)| ConfigError::Value {
                    path: path.into(),
                    key,
                    problem,
                })?;
        }
        let r = &self.rules;
        for (key, v) in [
            ("rules.momentary_max_s", r.momentary_max_s),
            ("rules.flap_window_s", r.flap_window_s),
            ("rules.deep_dip_window_h", r.deep_dip_window_h),
            ("rules.lost_after_s", r.lost_after_s),
            ("rules.demand_window_h", r.demand_window_h),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(bad(key.into(), "must be zero or a positive number"));
            }
        }
        if !(r.power_factor > 0.0 && r.power_factor <= 1.0) {
            return Err(bad("rules.power_factor".into(), "must be in (0, 1]"));
        }
        if let Some(s) = self.demo.speed {
            if !(s.is_finite() && s >= 0.0) {
                return Err(bad(
                    "demo.speed".into(),
                    "must be 0 (as fast as possible) or a positive factor",
                ));
            }
        }
        Ok(())
    }

    /// The serial sources to start.
    pub fn sources(&self) -> Vec<PqlinkSourceConfig> {
        self.node
            .iter()
            .map(|n| PqlinkSourceConfig {
                name: n.name.clone(),
                port: n.port.clone(),
                baud: n.baud,
                thresholds: n.thresholds(),
                silence: Duration::from_secs_f64(n.silence_s),
            })
            .collect()
    }
}

impl NodeEntry {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_node_takes_the_defaults() {
        let c = Config::parse(
            "[[node]]\nname = \"a\"\nport = \"/dev/ttyUSB0\"\nudin = 230\n",
            "k.toml",
        )
        .unwrap();
        assert_eq!(c.listen, default_listen());
        assert_eq!(c.node[0].baud, 115_200);
        assert_eq!(c.node[0].thresholds(), Thresholds::typical(230.0));
    }

    #[test]
    fn a_wrong_type_names_the_line() {
        let e = Config::parse(
            "listen = \"127.0.0.1:1\"\n[[node]]\nname = \"a\"\nport = \"p\"\nudin = \"high\"\n",
            "k.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("k.toml") && e.contains("line 5"), "{e}");
    }

    #[test]
    fn an_unknown_key_is_refused() {
        let e = Config::parse(
            "[[node]]\nname = \"a\"\nport = \"p\"\nudin = 230\ndip = 80\n",
            "k.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("dip"), "{e}");
    }

    #[test]
    fn a_bad_threshold_names_the_node() {
        let e = Config::parse(
            "[[node]]\nname = \"a\"\nport = \"p\"\nudin = 230\n[[node]]\nname = \"b\"\nport = \"q\"\nudin = 230\ndip_pct = 5\n",
            "k.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("`node[1]`") && e.contains("interruption threshold"),
            "{e}"
        );
    }

    #[test]
    fn duplicate_names_are_refused() {
        let e = Config::parse(
            "[[node]]\nname = \"a\"\nport = \"p\"\nudin = 230\n[[node]]\nname = \"a\"\nport = \"q\"\nudin = 230\n",
            "k.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("node[1].name"), "{e}");
    }
}

#[cfg(test)]
mod sample {
    #[test]
    fn the_shipped_sample_configuration_is_valid() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../systemd/kare.toml");
        let c = super::Config::load(std::path::Path::new(path)).unwrap();
        assert_eq!(c.node.len(), 1);
        assert!(c.site.is_some());
    }
}

#[cfg(test)]
mod site_tests {
    #[test]
    fn a_site_without_a_customer_is_refused_by_key() {
        let e = super::Config::parse(
            "[site]\nid = \"S1\"\ncustomer_id = \"\"\ncustomer_name = \"H\"\n",
            "k.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`site.customer_id`"), "{e}");
    }

    #[test]
    fn an_eligible_site_needs_its_generator_rating() {
        let e = super::Config::parse(
            "[site]\nid = \"S1\"\ncustomer_id = \"C\"\ncustomer_name = \"H\"\n[site.generator]\neligible = true\n",
            "k.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("site.generator.connection_kva"), "{e}");
    }
}
