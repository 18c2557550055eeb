//! `[[dlt645]]`: a DL/T 645-2007 bus and its meters as the configuration file gives them;
//! checked and turned into the poller's [`Dlt645BusConfig`] here, beside the poller.
//!
//! ```toml
//! [[dlt645]]
//! name = "rs485-2"
//! port = "/dev/ttyUSB2"
//! baud = 2400               # the standard's 8E1; parity = "even" | "none" | "odd"
//! [[dlt645.device]]
//! name = "tariff-meter"
//! address = "123456789012"  # the nameplate's 12 digits; absent: discovered if alone on the bus
//! time_set = false
//! ```

use super::codec::Address;
use super::{Dlt645BusConfig, Dlt645Device};
use crate::config::{check, ConfigProblem};
use crate::sources::meters::{check_line, parity};
use serde::Deserialize;

/// One `[[dlt645]]` bus.
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Dlt645Entry {
    /// Bus name.
    pub name: String,
    /// Serial port.
    pub port: String,
    /// Baud rate (the standard's default is 2400).
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// `even` (the standard's 8E1), `none` or `odd`.
    #[serde(default = "default_parity")]
    pub parity: String,
    /// Declared phase-neutral voltage: when set, polled voltages feed the coarse outage detector.
    pub udin: Option<f32>,
    /// The meters.
    #[serde(default)]
    pub device: Vec<Dlt645DeviceEntry>,
}

/// One meter on a DL/T 645 bus.
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq)]
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

/// DL/T 645-2007's default line: 2400 baud, 8E1.
fn default_baud() -> u32 {
    2400
}
fn default_parity() -> String {
    "even".into()
}

impl Dlt645Entry {
    /// Checks the bus on its own; keys are relative to the entry (`device[0].address`).
    /// Ranges (documented in `systemd/kare.toml`): baud 300 to 115 200; udin more than 0, at most
    /// 1 000 000 V; at least one device; names and addresses unique on the bus; a device
    /// without an address only when it is alone (it is found by broadcast).
    pub fn validate(&self) -> Result<(), ConfigProblem> {
        check_line(
            &self.name,
            &self.port,
            self.baud,
            self.udin,
            "/dev/ttyUSB2",
            "2400",
        )?;
        if self.device.is_empty() {
            return Err(ConfigProblem::new(
                "device",
                "must list at least one [[dlt645.device]] (name, and address unless it is alone): a bus without one reads nothing",
            ));
        }
        for (j, d) in self.device.iter().enumerate() {
            let key = |k: &str| format!("device[{j}].{k}");
            check::name(&key("name"), &d.name)?;
            if self.device[..j].iter().any(|o| o.name == d.name) {
                return Err(ConfigProblem::new(
                    key("name"),
                    "is used by another device on this bus: names must be unique",
                ));
            }
            if d.address.is_none() && self.device.len() > 1 {
                return Err(ConfigProblem::new(
                    key("address"),
                    "must be set (the nameplate's 12 digits, e.g. `address = \"000000000001\"`): discovery by broadcast needs the meter alone on the bus",
                ));
            }
            if let Some(a) = &d.address {
                check::text(&key("address"), a, false)?;
                if self.device[..j]
                    .iter()
                    .any(|o| o.address.as_deref() == Some(a))
                {
                    return Err(ConfigProblem::new(
                        key("address"),
                        "is another device's on this bus: both would read the same meter",
                    ));
                }
            }
        }
        self.bus_config().map(|_| ())
    }

    /// The poller's configuration.
    pub fn bus_config(&self) -> Result<Dlt645BusConfig, ConfigProblem> {
        let mut cfg = Dlt645BusConfig::new(&self.name, &self.port);
        cfg.baud = self.baud;
        cfg.parity = parity(&self.parity)
            .ok_or_else(|| ConfigProblem::new("parity", "must be none, even or odd"))?;
        for (j, d) in self.device.iter().enumerate() {
            let address = match &d.address {
                Some(a) => Some(a.parse::<Address>().map_err(|e| {
                    ConfigProblem::new(format!("device[{j}].address"), e.to_string())
                })?),
                None => None,
            };
            let mut dev = Dlt645Device::new(&d.name, address);
            dev.broadcast_time_set = d.time_set;
            cfg.devices.push(dev);
        }
        Ok(cfg)
    }
}
