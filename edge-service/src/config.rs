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

use crate::actions::rules::RuleSettings;
use crate::actions::site::Site;
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
    /// Modbus RTU buses.
    #[serde(default)]
    pub modbus: Vec<ModbusEntry>,
    /// DL/T 645-2007 buses.
    #[serde(default)]
    pub dlt645: Vec<Dlt645Entry>,
    /// The durable store (events, tickets, delivery outbox).
    pub store: Option<crate::store::StoreConfig>,
    /// Delivery endpoints (webhook, e-mail, SMS) and retry policy.
    pub delivery: Option<crate::actions::delivery::DeliveryConfig>,
    /// Which endpoints get which kind of ticket: `repair = ["desk-webhook", "desk-sms"]`.
    #[serde(default)]
    pub routes: std::collections::BTreeMap<String, Vec<String>>,
    /// The UPS HAT's GPIO inputs (needs a build with `--features rpi`).
    pub ups: Option<UpsEntry>,
    /// The central InfluxDB (readings, events, tickets, health for Grafana), with
    /// store-and-forward while it is out of reach.
    pub influx: Option<crate::sinks::influx::InfluxConfig>,
}

/// `[ups]`: the UPS HAT's "mains lost" and "battery low" outputs on the Pi's GPIO (BCM numbers).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UpsEntry {
    /// BCM pin that signals mains lost.
    pub mains_lost_gpio: u8,
    /// BCM pin that signals battery low.
    pub battery_low_gpio: u8,
    /// `low` (the line is pulled low to signal, as on most HATs) or `high`.
    #[serde(default = "active_low")]
    pub active: String,
}

fn active_low() -> String {
    "low".into()
}

/// One `[[modbus]]` bus.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModbusEntry {
    /// Bus name.
    pub name: String,
    /// Serial port.
    pub port: String,
    /// Baud rate.
    #[serde(default = "d9600")]
    pub baud: u32,
    /// `none`, `even` or `odd`.
    #[serde(default = "parity_none")]
    pub parity: String,
    /// Declared phase-neutral voltage: when set, polled voltages feed the coarse outage detector.
    pub udin: Option<f32>,
    /// The meters.
    #[serde(default)]
    pub device: Vec<ModbusDeviceEntry>,
}

/// One meter on a Modbus bus.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModbusDeviceEntry {
    /// Name in readings and events.
    pub name: String,
    /// Modbus slave id, 1..=247.
    pub slave_id: u8,
    /// A built-in profile name (`eastron-sdm630`, `chint-dtsu666`, `acrel-adl400`) or a file path.
    pub profile: String,
    /// Seconds between polls.
    #[serde(default = "d5")]
    pub poll_every_s: f64,
}

/// One `[[dlt645]]` bus.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Dlt645Entry {
    /// Bus name.
    pub name: String,
    /// Serial port.
    pub port: String,
    /// Baud rate (the standard's default is 2400).
    #[serde(default = "d2400")]
    pub baud: u32,
    /// `even` (the standard's 8E1), `none` or `odd`.
    #[serde(default = "parity_even")]
    pub parity: String,
    /// Declared phase-neutral voltage: when set, polled voltages feed the coarse outage detector.
    pub udin: Option<f32>,
    /// The meters.
    #[serde(default)]
    pub device: Vec<Dlt645DeviceEntry>,
}

/// One meter on a DL/T 645 bus.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Dlt645DeviceEntry {
    /// Name in readings and events.
    pub name: String,
    /// The 12 nameplate digits; absent: discovered (only when it is alone on the bus).
    pub address: Option<String>,
    /// Set the meter clocks from the appliance's (broadcast, daily).
    #[serde(default)]
    pub time_set: bool,
}

fn d9600() -> u32 {
    9600
}
fn d2400() -> u32 {
    2400
}
fn d5() -> f64 {
    5.0
}
fn parity_none() -> String {
    "none".into()
}
fn parity_even() -> String {
    "even".into()
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
    kare_firmware::detector::DEFAULT_DIP_PCT
}
fn d110() -> f32 {
    kare_firmware::detector::DEFAULT_SWELL_PCT
}
fn d10() -> f32 {
    kare_firmware::detector::DEFAULT_INTERRUPTION_PCT
}
fn d2() -> f32 {
    kare_firmware::detector::DEFAULT_HYSTERESIS_PCT
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
            modbus: Vec::new(),
            dlt645: Vec::new(),
            store: None,
            delivery: None,
            routes: Default::default(),
            ups: None,
            influx: None,
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
        for (i, b) in self.modbus.iter().enumerate() {
            for (j, d) in b.device.iter().enumerate() {
                crate::sources::meters::modbus::find_profile(&d.profile)
                    .map_err(|e| bad(format!("modbus[{i}].device[{j}].profile"), &e.to_string()))?;
                if !(1..=247).contains(&d.slave_id) {
                    return Err(bad(
                        format!("modbus[{i}].device[{j}].slave_id"),
                        "must be 1..=247",
                    ));
                }
            }
            parity(&b.parity)
                .ok_or_else(|| bad(format!("modbus[{i}].parity"), "must be none, even or odd"))?;
        }
        for (i, b) in self.dlt645.iter().enumerate() {
            for (j, d) in b.device.iter().enumerate() {
                if let Some(a) = &d.address {
                    a.parse::<crate::sources::meters::dlt645::codec::Address>()
                        .map_err(|e| {
                            bad(format!("dlt645[{i}].device[{j}].address"), &e.to_string())
                        })?;
                }
            }
            parity(&b.parity)
                .ok_or_else(|| bad(format!("dlt645[{i}].parity"), "must be none, even or odd"))?;
        }
        if let Some(u) = &self.ups {
            if !matches!(u.active.as_str(), "low" | "high") {
                return Err(bad("ups.active".into(), "must be low or high"));
            }
            if u.mains_lost_gpio == u.battery_low_gpio {
                return Err(bad(
                    "ups.battery_low_gpio".into(),
                    "must differ from mains_lost_gpio",
                ));
            }
        }
        if let Some(st) = &self.store {
            // `validate` already names the key under `store.`.
            st.validate().map_err(|(k, p)| bad(k, &p))?;
        }
        if let Some(d) = &self.delivery {
            d.validate().map_err(|p| bad(p.key.clone(), &p.problem))?;
        }
        let names: Vec<&str> = self
            .delivery
            .iter()
            .flat_map(|d| d.endpoint.iter().map(|e| e.name()))
            .collect();
        for (kind, endpoints) in &self.routes {
            for e in endpoints {
                if !names.contains(&e.as_str()) {
                    return Err(bad(
                        format!("routes.{kind}"),
                        &format!("no [[delivery.endpoint]] is named `{e}`"),
                    ));
                }
            }
        }
        if let Some(i) = &self.influx {
            // The backlog's place is the service's to choose (beside the store): any will do here.
            let check = i.clone().with_data_dir(".");
            if let Err(crate::sinks::influx::InfluxError::Config { key, message }) =
                check.validate()
            {
                return Err(bad(format!("influx.{key}"), &message));
            }
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

    /// The InfluxDB sink as the service runs it: the backlog beside the store (in `data_dir`)
    /// unless `[influx] backlog_path` says otherwise.
    pub fn influx_for(&self, data_dir: &Path) -> Option<crate::sinks::influx::InfluxConfig> {
        self.influx.clone().map(|i| i.with_data_dir(data_dir))
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

    #[test]
    fn a_bad_store_value_names_its_key_once() {
        let e = Config::parse("[store]\nmax_batch = 0\n", "k.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`store.max_batch`"), "{e}");
    }

    #[test]
    fn an_influx_section_is_checked_at_load_and_names_the_key() {
        let e = Config::parse(
            "[influx]\napi = \"v2\"\nurl = \"http://influx:8086\"\norg = \"utility\"\n",
            "k.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`influx.bucket`"), "{e}");
        let e = Config::parse(
            "[influx]\nurl = \"http://influx:8086\"\ndatabase = \"kare\"\nbatch = 10\n",
            "k.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("batch") && e.contains("line 4"), "{e}");
        let c = Config::parse(
            "[influx]\nurl = \"http://influx:8086\"\ndatabase = \"kare\"\n",
            "k.toml",
        )
        .unwrap();
        let i = c.influx_for(Path::new("/var/lib/kare")).unwrap();
        assert_eq!(
            i.backlog_path.as_deref(),
            Some(Path::new("/var/lib/kare/influx-backlog.sqlite"))
        );
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
        // Every section the README says it shows is there, and valid.
        assert_eq!((c.modbus.len(), c.dlt645.len()), (1, 1));
        assert!(c.store.is_some());
        assert_eq!(c.delivery.as_ref().map(|d| d.endpoint.len()), Some(3));
        assert_eq!(c.routes.len(), 6);
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

/// Serial parity from its name in the file.
pub fn parity(name: &str) -> Option<tokio_serial::Parity> {
    match name.to_ascii_lowercase().as_str() {
        "none" | "n" => Some(tokio_serial::Parity::None),
        "even" | "e" => Some(tokio_serial::Parity::Even),
        "odd" | "o" => Some(tokio_serial::Parity::Odd),
        _ => None,
    }
}

/// Meter bus tasks to start, and the buses (with thresholds) whose voltages feed coarse detection.
pub type MeterBuses = (
    Vec<crate::pipeline::service::MeterBusTask>,
    Vec<(String, Thresholds)>,
);

impl Config {
    /// The meter buses to start, and the buses whose voltages feed the coarse outage detector.
    /// Profiles were checked by `validate`; a file that changed since is reported here.
    pub fn meter_buses(&self) -> anyhow::Result<MeterBuses> {
        use crate::sources::meters::{dlt645, modbus};
        let mut tasks: Vec<crate::pipeline::service::MeterBusTask> = Vec::new();
        let mut coarse = Vec::new();
        for b in &self.modbus {
            let mut cfg = modbus::ModbusBusConfig::new(b.name.clone(), b.port.clone(), b.baud);
            // Checked by `validate`.
            cfg.parity = parity(&b.parity)
                .map(modbus::Parity::from)
                .unwrap_or(modbus::Parity::None);
            for d in &b.device {
                let profile = modbus::find_profile(&d.profile).map_err(|e| {
                    anyhow::anyhow!("modbus bus {}: device {}: {e}", b.name, d.name)
                })?;
                cfg.devices.push(modbus::ModbusDevice {
                    name: d.name.clone(),
                    slave_id: d.slave_id,
                    profile: std::sync::Arc::new(profile),
                    poll_every: Duration::from_secs_f64(d.poll_every_s.max(0.1)),
                });
            }
            if let Some(udin) = b.udin {
                coarse.push((b.name.clone(), Thresholds::typical(udin)));
            }
            tasks.push(Box::new(move |tx, shutdown| {
                Box::pin(async move {
                    let name = cfg.name.clone();
                    if let Err(e) = modbus::run(cfg, tx, shutdown).await {
                        tracing::error!(bus = %name, "Modbus bus not started: {e}");
                    }
                })
            }));
        }
        for b in &self.dlt645 {
            let mut cfg = dlt645::Dlt645BusConfig::new(&b.name, &b.port);
            cfg.baud = b.baud;
            cfg.parity = parity(&b.parity).unwrap_or(tokio_serial::Parity::Even);
            for d in &b.device {
                let address = match &d.address {
                    Some(a) => Some(a.parse().map_err(|e| {
                        anyhow::anyhow!("dl/t 645 bus {}: device {}: address: {e}", b.name, d.name)
                    })?),
                    None => None,
                };
                let mut dev = dlt645::Dlt645Device::new(&d.name, address);
                dev.broadcast_time_set = d.time_set;
                cfg.devices.push(dev);
            }
            if let Some(udin) = b.udin {
                coarse.push((b.name.clone(), Thresholds::typical(udin)));
            }
            tasks.push(Box::new(move |tx, shutdown| {
                Box::pin(dlt645::run(cfg, tx, shutdown))
            }));
        }
        Ok((tasks, coarse))
    }
}

impl Config {
    /// The UPS watch, if configured. On a build without GPIO support a configured `[ups]` is an
    /// error, not silently ignored: an outage is the one event the appliance must not miss.
    pub fn ups_task(&self) -> anyhow::Result<Option<crate::pipeline::service::UpsTask>> {
        let Some(u) = self.ups.clone() else {
            return Ok(None);
        };
        #[cfg(feature = "rpi")]
        {
            use crate::sources::ups::{spawn, Active, UpsMonitor};
            let gpio = rppal::gpio::Gpio::new()
                .map_err(|e| anyhow::anyhow!("[ups]: cannot open the GPIO: {e}; is this a Raspberry Pi, and is the user in the gpio group?"))?;
            let pin = |n: u8| -> anyhow::Result<rppal::gpio::InputPin> {
                Ok(gpio
                    .get(n)
                    .map_err(|e| anyhow::anyhow!("[ups]: GPIO {n}: {e}"))?
                    .into_input_pullup())
            };
            let active = if u.active == "high" {
                Active::High
            } else {
                Active::Low
            };
            let monitor =
                UpsMonitor::new(pin(u.mains_lost_gpio)?, pin(u.battery_low_gpio)?, active, 5);
            Ok(Some(Box::new(move |tx, mut shutdown| {
                Box::pin(async move {
                    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
                    let handle = spawn(monitor, tx, stop.clone());
                    let _ = shutdown.changed().await;
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    let _ = tokio::task::spawn_blocking(move || handle.join()).await;
                })
            })))
        }
        #[cfg(not(feature = "rpi"))]
        {
            let _ = u;
            anyhow::bail!(
                "[ups] is configured but this kare was built without GPIO support: build it with `--features rpi`"
            )
        }
    }
}
