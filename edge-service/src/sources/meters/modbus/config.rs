//! `[[modbus]]`: a Modbus RTU bus and its meters as the configuration file gives them; checked
//! and turned into the poller's [`ModbusBusConfig`] here, beside the poller.
//!
//! ```toml
//! [[modbus]]
//! name = "rs485-1"
//! port = "/dev/ttyUSB1"
//! baud = 9600               # parity = "none" | "even" | "odd"
//! udin = 230.0              # optional: polled voltages also feed the coarse outage detector
//! [[modbus.device]]
//! name = "main-incomer"
//! slave_id = 1
//! profile = "eastron-sdm630" # or a file path
//! poll_every_s = 5
//! ```
//!
//! Over the network: `transport = "tcp"` (Modbus TCP) or `"rtu-over-tcp"` (RTU frames through a
//! transparent serial gateway) with `address = "192.168.1.20:502"` instead of `port`; `baud`
//! and `parity` are then the gateway's business and not read.

use super::{find_profile, is_host_port, ModbusBusConfig, ModbusDevice, Parity, Transport};
use crate::config::{check, ConfigProblem};
use crate::sources::meters::{check_line, parity};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// One `[[modbus]]` bus.
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModbusEntry {
    /// Bus name.
    pub name: String,
    /// Serial port (transport `rtu`).
    #[serde(default)]
    pub port: String,
    /// `rtu` (the default: the serial `port`), `tcp` or `rtu-over-tcp` (both to `address`).
    #[serde(default = "default_transport")]
    pub transport: String,
    /// `host:port` of a Modbus TCP meter or gateway (transports `tcp`, `rtu-over-tcp`).
    pub address: Option<String>,
    /// Baud rate.
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// `none`, `even` or `odd`.
    #[serde(default = "default_parity")]
    pub parity: String,
    /// Declared phase-neutral voltage: when set, polled voltages feed the coarse outage detector.
    pub udin: Option<f32>,
    /// The meters.
    #[serde(default)]
    pub device: Vec<ModbusDeviceEntry>,
}

/// One meter on a Modbus bus.
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModbusDeviceEntry {
    /// Name in readings and events.
    pub name: String,
    /// Modbus slave id, 1..=247; over `transport = "tcp"` a unit id, 0..=255 (255 or 0 for a
    /// meter with its own Ethernet port, 1..=247 for a meter behind a gateway).
    pub slave_id: u8,
    /// A built-in profile name (`eastron-sdm630`, `chint-dtsu666`, `acrel-adl400`) or a file path.
    pub profile: String,
    /// Seconds between polls.
    #[serde(default = "default_poll_every")]
    pub poll_every_s: f64,
}

/// Most RS-485 meters ship at 9600 baud.
fn default_baud() -> u32 {
    9600
}
fn default_transport() -> String {
    "rtu".into()
}
fn default_parity() -> String {
    "none".into()
}
fn default_poll_every() -> f64 {
    5.0
}

impl ModbusEntry {
    /// Checks the bus on its own; keys are relative to the entry (`device[0].slave_id`).
    /// Ranges (documented in `systemd/kare.toml`): baud 300 to 115 200; udin more than 0, at
    /// most 1 000 000 V; at least one device; slave ids 1 to 247, unique on the bus; device
    /// names unique; poll_every_s 0.1 to 86 400 s.
    pub fn validate(&self) -> Result<(), ConfigProblem> {
        match self.transport()? {
            Transport::Rtu => {
                if self.address.is_some() {
                    return Err(ConfigProblem::new(
                        "address",
                        "is for transport = \"tcp\" or \"rtu-over-tcp\"; a serial bus names its `port`",
                    ));
                }
                check_line(
                    &self.name,
                    &self.port,
                    self.baud,
                    self.udin,
                    "/dev/ttyUSB1",
                    "9600",
                )?;
            }
            Transport::Tcp(_) | Transport::RtuOverTcp(_) => {
                if !self.port.is_empty() {
                    return Err(ConfigProblem::new(
                        "port",
                        format!(
                            "is for transport = \"rtu\"; transport = \"{}\" connects to `address` (host:port)",
                            self.transport
                        ),
                    ));
                }
                // The line checks without the serial port: name, baud range, udin.
                check_line(
                    &self.name,
                    "-",
                    self.baud,
                    self.udin,
                    "/dev/ttyUSB1",
                    "9600",
                )?;
            }
        }
        parity(&self.parity).ok_or_else(|| {
            ConfigProblem::new(
                "parity",
                "must be none, even or odd, e.g. `parity = \"none\"`",
            )
        })?;
        if self.device.is_empty() {
            return Err(ConfigProblem::new(
                "device",
                "must list at least one [[modbus.device]] (name, slave_id, profile): a bus without one polls nothing",
            ));
        }
        // Modbus TCP's unit id may be any byte (255 or 0 name a meter with its own Ethernet
        // port); on a serial line, directly or through a transparent gateway, 1 to 247.
        let unit_ids = self.transport == "tcp";
        for (j, d) in self.device.iter().enumerate() {
            let key = |k: &str| format!("device[{j}].{k}");
            check::name(&key("name"), &d.name)?;
            check::text(&key("profile"), &d.profile, false)?;
            find_profile(&d.profile)
                .map_err(|e| ConfigProblem::new(key("profile"), e.to_string()))?;
            if !unit_ids && !(1..=247).contains(&d.slave_id) {
                return Err(ConfigProblem::new(
                    key("slave_id"),
                    format!("must be from 1 to 247 (a Modbus device address), e.g. `slave_id = 1`; not {}", d.slave_id),
                ));
            }
            check::within(
                &key("poll_every_s"),
                d.poll_every_s,
                0.1,
                86_400.0,
                "seconds",
                "5.0",
            )?;
            if let Some(o) = self.device[..j].iter().find(|o| o.name == d.name) {
                return Err(ConfigProblem::new(
                    key("name"),
                    format!(
                        "is used by another device on this bus (slave {}): names must be unique",
                        o.slave_id
                    ),
                ));
            }
            if let Some(o) = self.device[..j].iter().find(|o| o.slave_id == d.slave_id) {
                return Err(ConfigProblem::new(
                    key("slave_id"),
                    format!(
                        "is also device `{}`'s: slave ids are unique on a bus",
                        o.name
                    ),
                ));
            }
        }
        self.bus_config().map(|_| ())
    }

    /// The transport, with its address checked.
    pub fn transport(&self) -> Result<Transport, ConfigProblem> {
        let address = || -> Result<String, ConfigProblem> {
            match &self.address {
                Some(a) if is_host_port(a.trim()) => Ok(a.trim().to_string()),
                Some(a) => Err(ConfigProblem::new(
                    "address",
                    format!("must be host:port, e.g. `address = \"192.168.1.20:502\"`; not {a:?}"),
                )),
                None => Err(ConfigProblem::new(
                    "address",
                    format!(
                        "is needed with transport = \"{}\": the meter's or gateway's host:port, e.g. `address = \"192.168.1.20:502\"`",
                        self.transport
                    ),
                )),
            }
        };
        match self.transport.as_str() {
            "rtu" => Ok(Transport::Rtu),
            "tcp" => Ok(Transport::Tcp(address()?)),
            "rtu-over-tcp" => Ok(Transport::RtuOverTcp(address()?)),
            other => Err(ConfigProblem::new(
                "transport",
                format!(
                    "must be rtu, tcp or rtu-over-tcp, e.g. `transport = \"tcp\"`; not {other:?}"
                ),
            )),
        }
    }

    /// The serial port or TCP address the bus uses, for messages and the one-port-one-source
    /// check.
    pub fn endpoint(&self) -> &str {
        match self.transport.as_str() {
            "tcp" | "rtu-over-tcp" => self.address.as_deref().unwrap_or(""),
            _ => &self.port,
        }
    }

    /// The poller's configuration. Profiles were checked by `validate`; a profile file that
    /// changed since is reported here.
    pub fn bus_config(&self) -> Result<ModbusBusConfig, ConfigProblem> {
        let mut cfg = ModbusBusConfig::new(self.name.clone(), self.port.clone(), self.baud);
        cfg.transport = self.transport()?;
        cfg.parity = parity(&self.parity)
            .map(Parity::from)
            .ok_or_else(|| ConfigProblem::new("parity", "must be none, even or odd"))?;
        for (j, d) in self.device.iter().enumerate() {
            let profile = find_profile(&d.profile)
                .map_err(|e| ConfigProblem::new(format!("device[{j}].profile"), e.to_string()))?;
            cfg.devices.push(ModbusDevice {
                name: d.name.clone(),
                slave_id: d.slave_id,
                profile: Arc::new(profile),
                poll_every: Duration::from_secs_f64(d.poll_every_s.max(0.1)),
            });
        }
        // The 1-s default covers a full 125-register reply only from 2400 baud up: at a slower
        // line the longest reply of these devices, twice over plus the meter's own latency,
        // sets the timeout, so that every baud the section accepts can poll.
        let longest = cfg
            .devices
            .iter()
            .flat_map(|d| super::plan_reads(&d.profile))
            .map(|b| super::client::wire_time(cfg.baud, cfg.parity, cfg.stop_bits, b.wire_bytes()))
            .max()
            .unwrap_or_default();
        cfg.timeout = cfg.timeout.max(longest * 2 + Duration::from_millis(200));
        // What the poller itself refuses is refused here, at load, not in a log line at start.
        cfg.validate()
            .map_err(|e| ConfigProblem::new("", e.to_string()))?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(baud: u32) -> ModbusEntry {
        ModbusEntry {
            name: "rs485-1".into(),
            port: "/dev/ttyUSB1".into(),
            transport: "rtu".into(),
            address: None,
            baud,
            parity: "none".into(),
            udin: None,
            device: vec![ModbusDeviceEntry {
                name: "incomer".into(),
                slave_id: 1,
                profile: "eastron-sdm630".into(),
                poll_every_s: 5.0,
            }],
        }
    }

    #[test]
    fn every_baud_the_section_accepts_can_poll_its_longest_reply() {
        // At 1200 baud an SDM630's longest read takes ~1.5 s on the wire: the 1-s default
        // timeout would fail every poll, and the poller would refuse to start.
        for baud in [300, 1200, 2400, 9600, 115_200] {
            let e = entry(baud);
            e.validate().unwrap_or_else(|p| panic!("{baud} baud: {p}"));
            let cfg = e.bus_config().unwrap();
            cfg.validate()
                .unwrap_or_else(|err| panic!("{baud} baud: {err}"));
            assert!(cfg.timeout >= Duration::from_secs(1));
        }
    }

    #[test]
    fn a_tcp_bus_needs_an_address_and_no_serial_port() {
        let mut e = entry(9600);
        e.transport = "tcp".into();
        let p = e.validate().unwrap_err();
        assert_eq!(p.key, "address");
        assert!(p.problem.contains("host:port"), "{p}");
        e.address = Some("meter.local".into());
        assert_eq!(e.validate().unwrap_err().key, "address");
        e.address = Some("192.168.1.20:502".into());
        let p = e.validate().unwrap_err();
        assert_eq!(
            p.key, "port",
            "a serial port on a TCP bus is a mistake worth naming"
        );
        e.port.clear();
        e.validate().unwrap();
        assert_eq!(
            e.bus_config().unwrap().transport,
            Transport::Tcp("192.168.1.20:502".into())
        );
        e.device[0].slave_id = 255;
        e.validate().unwrap();
        e.transport = "rtu-over-tcp".into();
        assert_eq!(e.validate().unwrap_err().key, "device[0].slave_id");
        e.device[0].slave_id = 1;
        assert_eq!(
            e.bus_config().unwrap().transport,
            Transport::RtuOverTcp("192.168.1.20:502".into())
        );
        e.transport = "udp".into();
        let p = e.validate().unwrap_err();
        assert_eq!(p.key, "transport");
        assert!(p.problem.contains("rtu, tcp or rtu-over-tcp"), "{p}");
    }
}
