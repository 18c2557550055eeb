//! Modbus RTU meters on the customer's RS-485 bus (domain.md §6): multifunction and
//! power-quality meters polled for voltages, currents, power, THD and energy.
//!
//! Layered as tokio-modbus is:
//!
//! - [`profile`] and [`register`]: a meter model's register map as a TOML file
//!   (`profiles/modbus/`), loaded and validated, and how a register's words become a value;
//! - [`plan`]: which reads a poll makes (contiguous registers merged, at most 125 per read);
//! - [`client`]: one request at a time on the line, through tokio-modbus: the 3.5-character
//!   silence between frames (tokio-modbus does not keep it), a timeout per request (it has
//!   none), and typed errors, a garbled reply told apart from silence;
//! - [`bus`]: the task of one bus: every device polled at its period, retries,
//!   offline/online, back-off, the port reopened when it goes.
//!
//! A bus is a serial port (RTU), or a TCP connection: to a Modbus TCP meter or gateway, or to a
//! serial gateway that passes RTU frames through ([`Transport`]).
//!
//! This file holds the bus's configuration, checked before anything runs.

pub mod bus;
pub mod client;
pub mod config;
pub mod plan;
pub mod profile;
pub mod register;

pub use bus::run;
pub use client::{inter_frame_gap, Framing, Line};
pub use plan::{plan_reads, Batch};
pub use profile::{
    builtin_profile, builtin_profile_names, find_profile, load_profile, parse_profile, Parity,
    Profile, ProfileError, Register, RegisterKind, ValueType, WordOrder,
};

use client::wire_time;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// Stop bits per character.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopBits {
    /// One: 8N1, 8E1, 8O1.
    One,
    /// Two: 8N2 (the Modbus spec's choice when there is no parity).
    Two,
}

/// How the poller reaches the bus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Modbus RTU on the serial port `port` (RS-485 through a USB adapter or a UART).
    Rtu,
    /// Modbus TCP to `host:port` (a meter with Ethernet, or a Modbus TCP-to-RTU gateway).
    Tcp(String),
    /// RTU frames, CRC and all, over a TCP stream to `host:port`: a transparent serial server
    /// ("RTU over TCP" gateways).
    RtuOverTcp(String),
}

impl Transport {
    /// How requests are framed.
    pub fn framing(&self) -> Framing {
        match self {
            Transport::Rtu | Transport::RtuOverTcp(_) => Framing::Rtu,
            Transport::Tcp(_) => Framing::Tcp,
        }
    }

    /// Whether the poller drives the serial line itself (and so keeps its timing).
    pub fn is_serial(&self) -> bool {
        matches!(self, Transport::Rtu)
    }

    /// The name in `transport = "…"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Transport::Rtu => "rtu",
            Transport::Tcp(_) => "tcp",
            Transport::RtuOverTcp(_) => "rtu-over-tcp",
        }
    }
}

/// A meter on the bus.
#[derive(Clone, Debug)]
pub struct ModbusDevice {
    /// Name in readings, events and logs.
    pub name: String,
    /// Modbus address, 1..=247 (a unit id, 0..=255, over Modbus TCP: 255 or 0 addresses a
    /// meter with its own Ethernet port).
    pub slave_id: u8,
    /// Its register map.
    pub profile: Arc<Profile>,
    /// How often to read it.
    pub poll_every: Duration,
}

/// One RS-485 bus: a serial port, its settings, and the meters on it.
#[derive(Clone, Debug)]
pub struct ModbusBusConfig {
    /// Source name in readings, events and logs.
    pub name: String,
    /// Serial port path, e.g. `/dev/ttyUSB0` (with [`Transport::Rtu`]).
    pub port: String,
    /// Serial port, or a TCP connection.
    pub transport: Transport,
    /// Baud rate (every device on the bus must use it).
    pub baud: u32,
    /// Parity.
    pub parity: Parity,
    /// Stop bits.
    pub stop_bits: StopBits,
    /// Longest wait from sending a request to the end of its reply. Must cover the reply's time
    /// on the wire (a 125-register reply is 255 bytes: 266 ms at 9600 baud) plus the meter's
    /// own latency.
    pub timeout: Duration,
    /// Further attempts after a request times out or is garbled (not after an exception reply:
    /// the meter would say the same again).
    pub retries: u32,
    /// Consecutive failed polls after which a device is reported offline.
    pub offline_after: u32,
    /// Longest interval between polls of an offline device.
    pub max_backoff: Duration,
    /// The meters.
    pub devices: Vec<ModbusDevice>,
    /// What readings and events are stamped with (the wall clock but in a simulation).
    pub clock: crate::sources::SourceClock,
    /// Poll results kept for a slow service before the oldest are dropped (events never are).
    pub max_queued_readings: usize,
}

impl ModbusBusConfig {
    /// A bus with the usual settings: 8N1, 1 s timeout, 2 retries, the 3.5-character gap for
    /// the baud rate, offline after 3 failed polls, offline devices retried at most every 60 s.
    pub fn new(name: impl Into<String>, port: impl Into<String>, baud: u32) -> ModbusBusConfig {
        ModbusBusConfig {
            name: name.into(),
            port: port.into(),
            transport: Transport::Rtu,
            baud,
            parity: Parity::None,
            stop_bits: StopBits::One,
            timeout: Duration::from_secs(1),
            retries: 2,
            offline_after: 3,
            max_backoff: Duration::from_secs(60),
            devices: Vec::new(),
            clock: Default::default(),
            max_queued_readings: crate::sources::outbox::DEFAULT_MAX_QUEUED_READINGS,
        }
    }

    /// Checks what [`run`] relies on; the message names the bus, the device and the setting.
    pub fn validate(&self) -> Result<(), ModbusError> {
        let bad = |problem: String| ModbusError::Config {
            bus: self.name.clone(),
            problem,
        };
        if self.name.trim().is_empty() {
            return Err(bad("name: must not be empty".into()));
        }
        match &self.transport {
            Transport::Rtu if self.port.trim().is_empty() => {
                return Err(bad("port: must not be empty".into()));
            }
            Transport::Tcp(a) | Transport::RtuOverTcp(a) if !is_host_port(a) => {
                return Err(bad(format!(
                    "address: {a:?} is not host:port, e.g. \"192.168.1.20:502\""
                )));
            }
            _ => {}
        }
        if self.baud == 0 {
            return Err(bad("baud: must be a baud rate, not 0".into()));
        }
        if self.offline_after == 0 {
            return Err(bad("offline_after: must be at least 1".into()));
        }
        if self.devices.is_empty() {
            return Err(bad("no devices on the bus".into()));
        }
        for (i, d) in self.devices.iter().enumerate() {
            let dev = |problem: String| bad(format!("device \"{}\": {problem}", d.name));
            if d.name.trim().is_empty() {
                return Err(bad(format!("device {}: name must not be empty", i + 1)));
            }
            if !matches!(self.transport, Transport::Tcp(_)) && !(1..=247).contains(&d.slave_id) {
                return Err(dev(format!(
                    "slave_id {} is not a Modbus device address (1 to 247)",
                    d.slave_id
                )));
            }
            if d.poll_every.is_zero() {
                return Err(dev("poll_every: must be longer than 0".into()));
            }
            if let Some(o) = self.devices[..i].iter().find(|o| o.name == d.name) {
                return Err(dev(format!("name already used by slave {}", o.slave_id)));
            }
            if let Some(o) = self.devices[..i].iter().find(|o| o.slave_id == d.slave_id) {
                return Err(dev(format!(
                    "slave_id {} is also device \"{}\"'s: ids are unique on a bus",
                    d.slave_id, o.name
                )));
            }
            // A timeout shorter than the largest reply's time on the wire fails every poll (on
            // the poller's own serial line; a gateway's line is the gateway's).
            if !self.transport.is_serial() {
                continue;
            }
            if let Some(b) = plan_reads(&d.profile).iter().max_by_key(|b| b.count) {
                let wire = wire_time(self.baud, self.parity, self.stop_bits, b.wire_bytes());
                if self.timeout <= wire {
                    return Err(bad(format!(
                        "timeout {:?} is shorter than the {:?} a {}-register read of device \"{}\" \
                         takes on the wire at {} baud",
                        self.timeout, wire, b.count, d.name, self.baud
                    )));
                }
            }
        }
        Ok(())
    }
}

/// `host:port` with a port number (the host is resolved when connecting).
pub fn is_host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => {
            !host.trim().is_empty()
                && !host.contains(char::is_whitespace)
                && port.parse::<u16>().is_ok_and(|p| p > 0)
        }
        None => false,
    }
}

/// A bus configuration [`run`] refuses.
#[derive(Debug, Error)]
pub enum ModbusError {
    /// A setting makes no sense.
    #[error("Modbus bus \"{bus}\": {problem}")]
    Config {
        /// The bus name.
        bus: String,
        /// What is wrong.
        problem: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bus() -> ModbusBusConfig {
        let mut cfg = ModbusBusConfig::new("rs485", "/dev/ttyUSB0", 9600);
        cfg.devices.push(ModbusDevice {
            name: "main".into(),
            slave_id: 1,
            profile: Arc::new(builtin_profile("eastron-sdm630").unwrap()),
            poll_every: Duration::from_secs(1),
        });
        cfg
    }

    #[test]
    fn validate_names_bus_device_and_setting() {
        bus().validate().unwrap();
        let mut c = bus();
        c.devices[0].slave_id = 0;
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "Modbus bus \"rs485\": device \"main\": slave_id 0 is not a Modbus device address (1 to 247)"
        );
        let mut c = bus();
        let mut other = c.devices[0].clone();
        other.name = "second".into();
        c.devices.push(other);
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("ids are unique"));
        let mut c = bus();
        c.timeout = Duration::from_millis(50);
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("takes on the wire at 9600 baud"), "{e}");
        let mut c = bus();
        c.devices.clear();
        assert!(c.validate().is_err());
    }
}
