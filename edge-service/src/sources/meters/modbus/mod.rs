//! Modbus RTU meters on the customer's RS-485 bus (domain.md §6): multifunction and
//! power-quality meters polled for voltages, currents, power, THD and energy.
//!
//! - [`profile`]: a meter model's register map as a TOML file (`profiles/modbus/`), loaded and
//!   validated; the shipped ones are built in and chosen by name.
//! - [`plan`]: which reads a poll makes (contiguous registers merged, at most 125 per read).
//! - [`poller`]: the I/O edge: one task per bus (one port, one protocol), every device polled at
//!   its period through `tokio-modbus` over `tokio-serial`, with timeouts, retries,
//!   offline/online events and bus counters.
//!
//! The Modbus framing and CRC are tokio-modbus's; this module adds what a bus of meters needs
//! around it: the 3.5-character silence between frames (tokio-modbus does not keep it), a
//! timeout per request (tokio-modbus has none), and recovery from a garbled reply.

pub mod config;
pub mod plan;
pub mod poller;
pub mod profile;

pub use plan::{plan_reads, Batch};
pub use poller::{inter_frame_gap, run, ModbusBusConfig, ModbusDevice, ModbusError, StopBits};
pub use profile::{
    builtin_profile, builtin_profile_names, find_profile, load_profile, parse_profile, Parity,
    Profile, ProfileError, Register, RegisterKind, ValueType, WordOrder,
};
