//! Meter discovery for `kare commission`: which meters answer on a bus, at which address and
//! line settings, and which profile each one fits.
//!
//! - [`modbus`]: a Modbus RTU scan of a serial port over bauds, parities and addresses
//!   ([`scan_rtu`], bounded in time by [`scan_bound`]), and a scan of the unit ids behind a
//!   Modbus TCP or RTU-over-TCP gateway ([`scan_tcp`]); each device that answers is matched
//!   against the register profiles (`profiles/modbus/`) by reading its voltages and frequency.
//! - [`dlt645`]: the DL/T 645-2007 "read communication address" broadcast ([`discover_dlt645`]).
//!
//! Discovery is a library: it prints nothing and reports progress through a callback, so the
//! command draws its own progress bar and output. It uses the pollers' own clients
//! (`sources::meters::{modbus, dlt645}`), so a meter found here is read the same way by
//! `kare run`.

pub mod dlt645;
pub mod modbus;

pub use crate::sources::meters::modbus::{Framing, Parity, Transport};
pub use dlt645::{
    discover_dlt645, discover_dlt645_detailed, Dlt645Discovery, FoundDlt645, DLT645_BAUDS,
};
pub use modbus::{
    scan_bound, scan_rtu, scan_tcp, FoundModbus, RtuScan, ScanProgress, DEFAULT_BAUDS,
};

use std::io;
use thiserror::Error;

/// Why a discovery could not run (a meter that does not answer is not an error: it is simply
/// not found).
#[derive(Debug, Error)]
pub enum DiscoverError {
    /// The serial port could not be opened.
    #[error(
        "cannot open serial port {port} at {baud} baud: {source}; check the path (ls /dev/ttyUSB* \
         /dev/ttyAMA*) and that nothing else holds it (stop kare first: systemctl stop kare)"
    )]
    OpenSerial {
        /// The port path.
        port: String,
        /// The baud rate being tried.
        baud: u32,
        /// What the system said.
        source: io::Error,
    },
    /// The TCP gateway could not be reached.
    #[error(
        "cannot connect to {address}: {source}; check the gateway's address and port (502 for \
         Modbus TCP) and that it is on this network"
    )]
    Connect {
        /// host:port.
        address: String,
        /// What the system said.
        source: io::Error,
    },
    /// The port or connection failed during the scan.
    #[error(
        "{what} failed during the scan: {source}; check the cable or connection and scan again"
    )]
    Lost {
        /// The port or address.
        what: String,
        /// What the system said.
        source: io::Error,
    },
    /// The scan's settings cannot work.
    #[error("{0}")]
    Settings(String),
}
