//! DL/T 645-2007 meters on one RS-485 bus.
//!
//! Layered as the Modbus side is: [`codec`] (pure bytes ⇄ frames, typed errors), [`client`]
//! (one request at a time on the half-duplex line: quiet gap, timeout, retries, follow-up
//! frames), [`bus`] (which meter is asked what and when, online/offline, back-off, time set)
//! and `reads` (what a reply becomes). This file holds the configuration and the two ways to
//! run a bus: [`run`] on a serial port, opened through a [`Link`] and reopened with back-off
//! when it fails or vanishes (meanwhile every meter is reported offline with the port's
//! error), and [`serve`] on any byte stream (a TCP-to-RS-485 gateway, or a test's pipe).
//!
//! Messages never wait on the service: they go through an [`Outbox`](crate::sources::outbox::Outbox) (events and load-profile
//! records kept, present values dropped oldest first beyond `max_queued_readings`, bus counters
//! latest only).

pub mod bus;
pub mod client;
pub mod codec;
pub mod config;
mod reads;

use crate::sources::link::Link;
use crate::sources::meters::health::all_offline;
use crate::sources::meters::readings::MeterMessage;
use crate::sources::outbox::DRAIN_AT_SHUTDOWN;
use bus::{Bus, Stop};
use chrono::FixedOffset;
use codec::{Address, Di, IdentifierTable};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_serial::SerialPortBuilderExt;
use tokio_util::sync::CancellationToken;

pub use tokio_serial::Parity;

/// Load-profile records asked per read: a 15-minute poll that fetches four records catches up
/// after an outage four times faster than records accrue, in at most a few follow-up frames.
pub const LOAD_PROFILE_BLOCKS: u8 = 4;

/// One bus: a serial port and the meters on it.
#[derive(Clone, Debug)]
pub struct Dlt645BusConfig {
    /// The bus (source) name in readings and events.
    pub name: String,
    /// Serial device path, e.g. `/dev/ttyUSB0`.
    pub port: String,
    /// Baud rate; the standard's default is 2400.
    pub baud: u32,
    /// Parity; the standard says 8E1. (Pseudo-terminals do not implement parity: tests use none.)
    pub parity: Parity,
    /// How long to wait for a reply.
    pub timeout: Duration,
    /// Times a request is sent again after no reply or a garbled one.
    pub retries: u32,
    /// Quiet time on the line before each request, milliseconds.
    pub inter_frame_ms: u64,
    /// Failed requests in a row before a meter is reported offline.
    pub offline_after: u32,
    /// Longest wait before a failing meter is tried again.
    pub max_backoff: Duration,
    /// The meters' clock zone (DL/T 645 meters keep local time; China Standard Time is +08:00):
    /// meter times are converted with it and broadcast time set sends it.
    pub meter_utc_offset: FixedOffset,
    /// How often to broadcast the time when a device asks for it (meters accept one correction
    /// a day).
    pub time_set_every: Duration,
    /// The identifier table (the built-in one, possibly with a site's extra file).
    pub table: Arc<IdentifierTable>,
    /// The meters.
    pub devices: Vec<Dlt645Device>,
    /// What readings and events are stamped with (the wall clock but in a simulation).
    pub clock: crate::sources::SourceClock,
    /// Poll results kept for a slow service before the oldest are dropped (events and
    /// load-profile records never are).
    pub max_queued_readings: usize,
}

impl Dlt645BusConfig {
    /// A bus with the standard's line settings (2400 baud, 8E1) and the built-in table.
    pub fn new(name: &str, port: &str) -> Dlt645BusConfig {
        Dlt645BusConfig {
            name: name.into(),
            port: port.into(),
            baud: 2400,
            parity: Parity::Even,
            // A meter answers within 500 ms in practice; a 40-byte reply takes 170 ms at 2400.
            timeout: Duration::from_millis(1500),
            retries: 2,
            inter_frame_ms: 50,
            offline_after: 3,
            max_backoff: Duration::from_secs(60),
            meter_utc_offset: FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset"),
            time_set_every: Duration::from_secs(24 * 3600),
            table: Arc::new(IdentifierTable::builtin().clone()),
            devices: Vec::new(),
            clock: Default::default(),
            max_queued_readings: crate::sources::outbox::DEFAULT_MAX_QUEUED_READINGS,
        }
    }
}

/// One meter on the bus.
#[derive(Clone, Debug)]
pub struct Dlt645Device {
    /// The device name in readings and events.
    pub name: String,
    /// Its address; `None` finds it with read-address `13` to the wildcard, which only works
    /// when the meter is alone on the bus.
    pub address: Option<Address>,
    /// What to read, and how often.
    pub polls: Vec<Poll>,
    /// Whether this meter's clock is to be set by broadcast. A broadcast reaches every meter on
    /// the bus, so one device asking is enough for all.
    pub broadcast_time_set: bool,
}

/// One identifier read periodically.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Poll {
    /// The identifier.
    pub di: Di,
    /// Its period.
    pub every: Duration,
}

impl Dlt645Device {
    /// A meter with [`Dlt645Device::standard_polls`] and no time setting.
    pub fn new(name: &str, address: Option<Address>) -> Dlt645Device {
        Dlt645Device {
            name: name.into(),
            address,
            polls: Dlt645Device::standard_polls(),
            broadcast_time_set: false,
        }
    }

    /// Instantaneous values every 5 s (voltages, currents, powers, power factor, frequency);
    /// energy, demand and power-down every minute; the load profile every 15 minutes.
    pub fn standard_polls() -> Vec<Poll> {
        let every = |s: u64, dis: &[u32]| {
            dis.iter()
                .map(move |&d| Poll {
                    di: Di(d),
                    every: Duration::from_secs(s),
                })
                .collect::<Vec<_>>()
        };
        let mut polls = every(
            5,
            &[
                0x0201_0100,
                0x0201_0200,
                0x0201_0300,
                0x0202_0100,
                0x0202_0200,
                0x0202_0300,
                0x0203_0000,
                0x0204_0000,
                0x0206_0000,
                0x0280_0002,
            ],
        );
        polls.extend(every(
            60,
            &[
                0x0001_0000,
                0x0002_0000,
                0x0280_0004,
                0x0101_0000,
                0x0311_0000,
                0x0311_0001,
            ],
        ));
        polls.extend(every(900, &[0x0600_0001]));
        polls
    }
}

/// Runs the bus until `shutdown` is cancelled: opens the port, polls, reopens it with back-off
/// when it fails.
pub async fn run(
    cfg: Dlt645BusConfig,
    tx: mpsc::Sender<MeterMessage>,
    shutdown: CancellationToken,
) {
    let (path, baud, parity) = (cfg.port.clone(), cfg.baud, cfg.parity);
    let mut bus = Bus::new(cfg, tx);
    let mut link = Link::new(bus.name.clone(), path.clone(), move || {
        tokio_serial::new(&path, baud)
            .data_bits(tokio_serial::DataBits::Eight)
            .stop_bits(tokio_serial::StopBits::One)
            .parity(parity)
            .open_native_async()
    });
    // While the link waits, every meter is offline with the port's error.
    let offline = |devices: &mut Vec<bus::DeviceState>, why: &str, out: &mut _| {
        all_offline(devices.iter_mut().map(|d| &mut d.health), why, out)
    };
    while let Some(mut port) = link
        .open(&mut bus.outbox, &shutdown, |why, out| {
            offline(&mut bus.devices, why, out)
        })
        .await
    {
        match bus.serve(&mut port, &shutdown).await {
            Stop::Shutdown => break,
            Stop::PortLost(why) => link.lost(&mut bus.outbox, why, |why, out| {
                offline(&mut bus.devices, why, out)
            }),
        }
    }
    bus.outbox.drain(DRAIN_AT_SHUTDOWN).await;
}

/// Runs the poller on an already open byte stream until `shutdown` or until the stream fails
/// (no reconnection: that is [`run`]'s job for serial ports).
pub async fn serve<P>(
    cfg: Dlt645BusConfig,
    mut port: P,
    tx: mpsc::Sender<MeterMessage>,
    shutdown: CancellationToken,
) where
    P: AsyncRead + AsyncWrite + Unpin,
{
    let mut bus = Bus::new(cfg, tx);
    if let Stop::PortLost(why) = bus.serve(&mut port, &shutdown).await {
        let reason = format!("stream lost: {why}");
        tracing::warn!(source = %bus.name, "{reason}");
        bus.all_offline(&reason);
    }
    bus.outbox.drain(DRAIN_AT_SHUTDOWN).await;
}
