//! DL/T 645-2007 discovery: the "read communication address" request (control code 13) to the
//! wildcard address `AA AA AA AA AA AA`, at each baud rate in turn; a meter answers `93` with
//! its address.
//!
//! Only one meter can answer: every meter on the bus hears the wildcard and would reply at once,
//! and their replies collide. So on a bus with several meters kare reports the one reply that
//! arrives intact (if any: a collision is heard as a garbled reply and logged as "several
//! meters answered"), and the crew reads the other addresses off the nameplates and probes each
//! configured address instead (the poller reports a meter offline when it does not answer).
//! Meters use 8E1 (the standard's framing); 2400 baud is the standard's default, 9600 common on
//! newer meters.

use super::DiscoverError;
use crate::sources::meters::dlt645::client::{Client, TxError};
use crate::sources::meters::dlt645::codec::{
    self as codec, decode_address_reply, function, read_address, Address, Frame,
};
use crate::sources::meters::dlt645::{Dlt645BusConfig, Parity};
use std::time::Duration;
use tokio_serial::SerialPortBuilderExt;

/// The bauds to ask at: the standard's default first, then the common faster setting.
pub const DLT645_BAUDS: [u32; 2] = [2400, 9600];

/// A DL/T 645 meter that answered the address broadcast.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundDlt645 {
    /// The serial port path.
    pub port: String,
    /// The baud rate it answered at.
    pub baud: u32,
    /// Its address as on the nameplate (12 digits, most significant first).
    pub address: String,
}

/// What the broadcast heard, at every baud.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dlt645Discovery {
    /// Meters whose reply came through intact.
    pub found: Vec<FoundDlt645>,
    /// Bauds at which a garbled reply came: several meters answered at once.
    pub collisions: Vec<u32>,
}

/// [`discover_dlt645_detailed`]'s meters only.
pub async fn discover_dlt645(
    port: &str,
    bauds: &[u32],
    timeout: Duration,
) -> Result<Vec<FoundDlt645>, DiscoverError> {
    Ok(discover_dlt645_detailed(port, bauds, timeout).await?.found)
}

/// Asks "which address?" at each of `bauds` (one try each, `timeout` for the reply; a meter
/// answers within 500 ms, and the reply takes 75 ms on the wire at 2400 baud). A meter that
/// answered at an earlier baud is not reported again (a real line carries a meter's reply
/// only at its own baud; a pseudo-terminal or a gateway ignores the baud).
pub async fn discover_dlt645_detailed(
    port: &str,
    bauds: &[u32],
    timeout: Duration,
) -> Result<Dlt645Discovery, DiscoverError> {
    let mut found: Vec<FoundDlt645> = Vec::new();
    let mut collisions = Vec::new();
    for &baud in bauds {
        let mut line = tokio_serial::new(port, baud)
            .data_bits(tokio_serial::DataBits::Eight)
            .stop_bits(tokio_serial::StopBits::One)
            .parity(Parity::Even)
            .open_native_async()
            .map_err(|e| DiscoverError::OpenSerial {
                port: port.to_string(),
                baud,
                source: e.into(),
            })?;
        let mut cfg = Dlt645BusConfig::new("discover", port);
        cfg.baud = baud;
        cfg.timeout = timeout;
        cfg.retries = 0;
        let mut client = Client::new("discover".into(), &cfg);
        let accept = |f: &Frame| -> Option<Result<Address, codec::Error>> {
            (f.control.is_reply() && f.control.function() == function::READ_ADDRESS)
                .then(|| decode_address_reply(f))
        };
        match client.transact(&mut line, &read_address(), &accept).await {
            Ok(a) => {
                let address = a.to_string();
                if !found.iter().any(|f| f.address == address) {
                    found.push(FoundDlt645 {
                        port: port.to_string(),
                        baud,
                        address,
                    });
                }
            }
            Err(TxError::Port(e)) => {
                return Err(DiscoverError::Lost {
                    what: port.to_string(),
                    source: std::io::Error::other(e),
                })
            }
            Err(TxError::Refused(flags)) => {
                tracing::info!(port, baud, "a meter refused the address read: {flags}");
            }
            Err(TxError::Link(reason)) if reason.contains("garbled") => {
                collisions.push(baud);
                tracing::warn!(
                    port,
                    baud,
                    "garbled reply to the address broadcast: several meters answered at once; \
                     probe each nameplate address instead"
                );
            }
            Err(TxError::Link(_)) => {}
        }
    }
    Ok(Dlt645Discovery { found, collisions })
}
