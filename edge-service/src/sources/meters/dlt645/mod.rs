//! DL/T 645-2007 meters on one RS-485 bus: the poller.
//!
//! One port, many meters, one request at a time (the bus is half duplex and every meter hears
//! every frame). Before each request the line must have been quiet for the inter-frame gap;
//! each request waits for its reply up to the timeout and is sent again up to `retries` times.
//! Meters take turns round-robin: a turn runs the polls that are due on one meter, and a meter
//! that fails is not asked again before its backoff (which doubles, up to `max_backoff`), so a
//! dead meter costs the others at most one request's retries per backoff period. After
//! `offline_after` failed requests in a row a meter is reported offline (with the reason), and
//! online again at its next good answer.
//!
//! Values become [`MeterMessage::Readings`] through the identifier table's quantities;
//! power-down records become [`MeterEvent::PowerDown`] with the meter's own times, each record
//! once; load-profile records become [`MeterMessage::Interval`] readings stamped with their
//! interval time (history, kept apart from the present). Bus counters
//! go out as [`MeterMessage::Stats`] after each cycle. Messages never wait on the service:
//! events queue locally without limit (they are never dropped), readings queue up to a bound
//! (the oldest are dropped first, with a warning), stats keep only the latest.
//!
//! The port is opened with tokio-serial and reopened with backoff when it fails or vanishes;
//! meanwhile every meter is reported offline with the port's error. [`serve`] runs the same
//! poller on any byte stream (a TCP-to-RS-485 gateway, or a test's in-memory pipe).

pub mod codec;
pub mod config;

use crate::sources::meters::dlt645::codec::{
    self as dlt645, broadcast_time, decode_address_reply, decode_follow_up_reply,
    decode_read_reply, function, parse_load_records, read_address, read_data, read_follow_up,
    Address, DataReply, Di, ErrorFlags, Frame, FrameBuffer, Identifier, IdentifierTable,
    LoadProfileRead, Record, Value,
};
use crate::sources::meters::readings::{BusStats, MeterEvent, MeterMessage, MeterReading};
use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Timelike, Utc};
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_serial::SerialPortBuilderExt;
use tokio_util::sync::CancellationToken;

pub use tokio_serial::Parity;

/// Load-profile records asked per read: a 15-minute poll that fetches four records catches up
/// after an outage four times faster than records accrue, in at most a few follow-up frames.
pub const LOAD_PROFILE_BLOCKS: u8 = 4;

/// Follow-up frames accepted for one value before the reply is given up as runaway.
const MAX_FOLLOW_UPS: u8 = 32;

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

/// Runs the bus until `shutdown` is cancelled: opens the port, polls, reopens it with backoff
/// when it fails.
pub async fn run(
    cfg: Dlt645BusConfig,
    tx: mpsc::Sender<MeterMessage>,
    shutdown: CancellationToken,
) {
    let mut bus = Bus::new(cfg, tx);
    let mut backoff = Duration::from_millis(200);
    let mut port_reported = false;
    while !shutdown.is_cancelled() {
        let opened = tokio_serial::new(&bus.cfg.port, bus.cfg.baud)
            .data_bits(tokio_serial::DataBits::Eight)
            .stop_bits(tokio_serial::StopBits::One)
            .parity(bus.cfg.parity)
            .open_native_async();
        match opened {
            Ok(mut port) => {
                tracing::info!(source = %bus.name, port = %bus.cfg.port, "serial port open");
                backoff = Duration::from_millis(200);
                port_reported = false;
                match bus.serve(&mut port, &shutdown).await {
                    Stop::Shutdown => break,
                    Stop::PortLost(why) => {
                        let reason = format!("serial port {} lost: {why}", bus.cfg.port);
                        tracing::warn!(source = %bus.name, "{reason}; reopening");
                        bus.all_offline(&reason);
                    }
                }
            }
            Err(e) => {
                let reason = format!(
                    "cannot open serial port {}: {e}; check the cable or USB adapter",
                    bus.cfg.port
                );
                if !port_reported {
                    tracing::warn!(source = %bus.name, "{reason}; retrying");
                    port_reported = true;
                }
                bus.all_offline(&reason);
            }
        }
        bus.outbox.flush();
        if !bus.idle_until(Instant::now() + backoff, &shutdown).await {
            break;
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
    bus.outbox.drain().await;
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
    bus.outbox.drain().await;
}

/// Why [`Bus::serve`] returned.
enum Stop {
    Shutdown,
    PortLost(String),
}

/// Why a request did not give a value.
enum TxError {
    /// The meter answered with an abnormal reply: it is alive, it refuses this.
    Refused(ErrorFlags),
    /// No usable reply after the retries: the reason, for the offline event.
    Link(String),
    /// The port failed.
    Port(String),
}

struct PollState {
    id: Identifier,
    every: Duration,
    due: Instant,
}

struct DeviceState {
    name: Arc<str>,
    address: Option<Address>,
    /// Why the device is never polled (a configuration that cannot work).
    disabled: Option<String>,
    polls: Vec<PollState>,
    failures: u32,
    offline: bool,
    last_good: DateTime<Utc>,
    retry_at: Instant,
    backoff: Duration,
    min_backoff: Duration,
    /// Identifiers whose refusal was already logged at warn level.
    refused: HashSet<Di>,
    last_power_down: Option<(NaiveDateTime, Option<NaiveDateTime>)>,
    /// Meter time of the next load-profile record wanted.
    profile_from: Option<NaiveDateTime>,
}

impl DeviceState {
    fn next_due(&self) -> Option<Instant> {
        if self.disabled.is_some() {
            return None;
        }
        let due = self.polls.iter().map(|p| p.due).min()?;
        Some(due.max(self.retry_at))
    }
}

struct Bus {
    cfg: Dlt645BusConfig,
    name: Arc<str>,
    devices: Vec<DeviceState>,
    stats: BusStats,
    outbox: Outbox,
    rx: FrameBuffer,
    last_activity: Instant,
    next_time_set: Option<Instant>,
}

impl Bus {
    fn new(cfg: Dlt645BusConfig, tx: mpsc::Sender<MeterMessage>) -> Bus {
        let name: Arc<str> = cfg.name.as_str().into();
        let mut outbox = Outbox::new(tx);
        let now = Instant::now();
        let alone = cfg.devices.len() == 1;
        let mut devices = Vec::new();
        for d in &cfg.devices {
            let dev_name: Arc<str> = d.name.as_str().into();
            let mut polls = Vec::new();
            for p in &d.polls {
                match cfg.table.require(p.di) {
                    Ok(id) => polls.push(PollState {
                        id: id.clone(),
                        every: p.every,
                        due: now,
                    }),
                    Err(e) => tracing::warn!(source = %name, device = %dev_name, "not polled: {e}"),
                }
            }
            let disabled = (d.address.is_none() && !alone).then(|| {
                format!(
                    "no address configured, and discovery (read address 13 to AA AA AA AA AA AA) \
                     needs the meter alone on the bus, which has {} devices: set its address",
                    cfg.devices.len()
                )
            });
            if let Some(reason) = &disabled {
                tracing::error!(source = %name, device = %dev_name, "{reason}");
                outbox.event(MeterEvent::Offline {
                    source: name.clone(),
                    device: dev_name.clone(),
                    since: cfg.clock.now(),
                    reason: reason.clone(),
                });
            }
            let min_backoff = polls
                .iter()
                .map(|p| p.every)
                .min()
                .unwrap_or(Duration::from_secs(1))
                .clamp(
                    Duration::from_millis(100),
                    cfg.max_backoff.max(Duration::from_millis(100)),
                );
            devices.push(DeviceState {
                name: dev_name,
                address: d.address,
                offline: disabled.is_some(),
                disabled,
                polls,
                failures: 0,
                last_good: cfg.clock.now(),
                retry_at: now,
                backoff: min_backoff,
                min_backoff,
                refused: HashSet::new(),
                last_power_down: None,
                profile_from: None,
            });
        }
        let mut seen = HashSet::new();
        for d in &devices {
            if let Some(a) = d.address {
                if !seen.insert(a) {
                    tracing::warn!(source = %name, address = %a, "two devices share one address: both will read the same meter");
                }
            }
        }
        let next_time_set = cfg
            .devices
            .iter()
            .any(|d| d.broadcast_time_set)
            .then_some(now);
        Bus {
            name,
            devices,
            stats: BusStats::default(),
            outbox,
            rx: FrameBuffer::new(),
            last_activity: now,
            next_time_set,
            cfg,
        }
    }

    fn gap(&self) -> Duration {
        Duration::from_millis(self.cfg.inter_frame_ms)
    }

    /// Meter local time to UTC.
    fn to_utc(&self, t: NaiveDateTime) -> DateTime<Utc> {
        match self.cfg.meter_utc_offset.from_local_datetime(&t).single() {
            Some(local) => local.with_timezone(&Utc),
            // A fixed offset always maps one to one; keep the value rather than lose it.
            None => Utc.from_utc_datetime(&t),
        }
    }

    fn meter_now(&self) -> NaiveDateTime {
        self.cfg
            .clock
            .now()
            .with_timezone(&self.cfg.meter_utc_offset)
            .naive_local()
    }

    /// Every reachable device is now unreachable (the port failed).
    fn all_offline(&mut self, reason: &str) {
        for d in &mut self.devices {
            if !d.offline {
                d.offline = true;
                self.outbox.event(MeterEvent::Offline {
                    source: self.name.clone(),
                    device: d.name.clone(),
                    since: d.last_good,
                    reason: reason.to_string(),
                });
            }
        }
    }

    fn succeeded(&mut self, idx: usize) {
        let d = &mut self.devices[idx];
        d.failures = 0;
        d.backoff = d.min_backoff;
        d.retry_at = Instant::now();
        d.last_good = self.cfg.clock.now();
        if d.offline {
            d.offline = false;
            tracing::info!(source = %self.name, device = %d.name, "meter answers again");
            self.outbox.event(MeterEvent::Online {
                source: self.name.clone(),
                device: d.name.clone(),
                at: d.last_good,
            });
        }
    }

    fn failed(&mut self, idx: usize, reason: String) {
        let max = self.cfg.max_backoff.max(Duration::from_millis(100));
        let d = &mut self.devices[idx];
        d.failures += 1;
        d.retry_at = Instant::now() + d.backoff;
        d.backoff = (d.backoff * 2).min(max);
        tracing::debug!(source = %self.name, device = %d.name, failures = d.failures, "{reason}");
        if d.failures >= self.cfg.offline_after.max(1) && !d.offline {
            d.offline = true;
            tracing::warn!(source = %self.name, device = %d.name, "meter offline: {reason}");
            self.outbox.event(MeterEvent::Offline {
                source: self.name.clone(),
                device: d.name.clone(),
                since: d.last_good,
                reason,
            });
        }
    }

    async fn serve<P>(&mut self, port: &mut P, shutdown: &CancellationToken) -> Stop
    where
        P: AsyncRead + AsyncWrite + Unpin,
    {
        self.rx.clear();
        self.last_activity = Instant::now();
        loop {
            if shutdown.is_cancelled() {
                return Stop::Shutdown;
            }
            if let Err(why) = self.maybe_set_time(port).await {
                return Stop::PortLost(why);
            }
            let started = Instant::now();
            let mut worked = false;
            for idx in 0..self.devices.len() {
                if shutdown.is_cancelled() {
                    return Stop::Shutdown;
                }
                let ready = self.devices[idx]
                    .next_due()
                    .is_some_and(|t| t <= Instant::now());
                if !ready {
                    continue;
                }
                worked = true;
                if let Err(why) = self.device_turn(idx, port, shutdown).await {
                    return Stop::PortLost(why);
                }
                self.outbox.flush();
            }
            if worked {
                self.stats.last_cycle_ms = started.elapsed().as_secs_f64() * 1000.0;
                self.outbox
                    .stats(MeterMessage::Stats(self.name.clone(), self.stats.clone()));
            }
            self.outbox.flush();
            let wake = self
                .devices
                .iter()
                .filter_map(DeviceState::next_due)
                .chain(self.next_time_set)
                .min()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            if !self.idle_until(wake, shutdown).await {
                return Stop::Shutdown;
            }
        }
    }

    /// Waits until `wake`, handing queued messages to the service as it makes room. False when
    /// shutdown was asked for.
    async fn idle_until(&mut self, wake: Instant, shutdown: &CancellationToken) -> bool {
        let tx = self.outbox.tx.clone();
        loop {
            if shutdown.is_cancelled() {
                return false;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => return true,
                _ = shutdown.cancelled() => return false,
                permit = tx.reserve(), if self.outbox.pending() => match permit {
                    Ok(permit) => self.outbox.send_one(permit),
                    Err(_) => self.outbox.closed(),
                },
            }
        }
    }

    /// Broadcasts the time when a device asked for it and it is due.
    async fn maybe_set_time<P>(&mut self, port: &mut P) -> Result<(), String>
    where
        P: AsyncRead + AsyncWrite + Unpin,
    {
        let Some(due) = self.next_time_set else {
            return Ok(());
        };
        if Instant::now() < due {
            return Ok(());
        }
        self.next_time_set = Some(due + self.cfg.time_set_every);
        let t = self
            .meter_now()
            .with_nanosecond(0)
            .unwrap_or_else(|| self.meter_now());
        let frame = match broadcast_time(t) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(source = %self.name, "no broadcast time set: {e}");
                return Ok(());
            }
        };
        self.quiet(port).await?;
        self.send(port, &frame).await?;
        tracing::info!(source = %self.name, time = %t, "broadcast time set");
        Ok(())
    }

    /// Waits until the line has been quiet for the inter-frame gap, throwing away anything
    /// that arrives meanwhile (late replies, noise).
    async fn quiet<P>(&mut self, port: &mut P) -> Result<(), String>
    where
        P: AsyncRead + AsyncWrite + Unpin,
    {
        let mut buf = [0u8; 256];
        loop {
            let until = self.last_activity + self.gap();
            if Instant::now() >= until {
                break;
            }
            match tokio::time::timeout_at(until, port.read(&mut buf)).await {
                Err(_) => break,
                Ok(Ok(0)) => return Err("end of file".into()),
                Ok(Err(e)) => return Err(e.to_string()),
                Ok(Ok(n)) => {
                    self.last_activity = Instant::now();
                    tracing::debug!(source = %self.name, bytes = n, "bytes between requests ignored");
                }
            }
        }
        let stale = self.rx.clear();
        if stale > 0 {
            tracing::debug!(source = %self.name, bytes = stale, "unfinished frame dropped");
        }
        Ok(())
    }

    async fn send<P>(&mut self, port: &mut P, frame: &Frame) -> Result<(), String>
    where
        P: AsyncRead + AsyncWrite + Unpin,
    {
        // Frames built here are a few bytes long: encoding cannot fail.
        let bytes = frame.encode_with_wake_up().map_err(|e| e.to_string())?;
        port.write_all(&bytes).await.map_err(|e| e.to_string())?;
        port.flush().await.map_err(|e| e.to_string())?;
        self.last_activity = Instant::now();
        self.stats.requests += 1;
        Ok(())
    }

    /// Sends `request` (again, up to the retries) until `accept` takes a reply. `accept` says
    /// `None` for frames that are not the answer (another meter, an old reply).
    async fn transact<P, T>(
        &mut self,
        port: &mut P,
        request: &Frame,
        accept: &(dyn Fn(&Frame) -> Option<Result<T, dlt645::Error>> + Sync),
    ) -> Result<T, TxError>
    where
        P: AsyncRead + AsyncWrite + Unpin,
    {
        let tries = self.cfg.retries + 1;
        let mut last = String::new();
        for _ in 0..tries {
            self.quiet(port).await.map_err(TxError::Port)?;
            self.send(port, request).await.map_err(TxError::Port)?;
            let deadline = Instant::now() + self.cfg.timeout;
            match self.await_reply(port, deadline, accept).await? {
                Heard::Answer(Ok(t)) => {
                    self.stats.replies += 1;
                    return Ok(t);
                }
                Heard::Answer(Err(dlt645::Error::ErrorReply(flags))) => {
                    self.stats.error_replies += 1;
                    return Err(TxError::Refused(flags));
                }
                Heard::Answer(Err(e)) => {
                    self.stats.bad_frames += 1;
                    last = format!("malformed reply: {e}");
                }
                Heard::Garbled(e) => last = format!("garbled reply: {e}"),
                Heard::Nothing => {
                    self.stats.timeouts += 1;
                    last = format!("no reply within {} ms", self.cfg.timeout.as_millis());
                }
            }
        }
        let tries_word = if tries == 1 { "try" } else { "tries" };
        Err(TxError::Link(format!("{last} ({tries} {tries_word})")))
    }

    /// Reads until `accept` takes a frame or the deadline passes. A bad frame shortens the
    /// wait: the meter has spoken, and a good frame would follow at once.
    async fn await_reply<P, T>(
        &mut self,
        port: &mut P,
        mut deadline: Instant,
        accept: &(dyn Fn(&Frame) -> Option<Result<T, dlt645::Error>> + Sync),
    ) -> Result<Heard<T>, TxError>
    where
        P: AsyncRead + AsyncWrite + Unpin,
    {
        let mut buf = [0u8; 512];
        let mut garbled = None;
        loop {
            while let Some(found) = self.rx.next_frame() {
                match found {
                    Ok(frame) => {
                        if let Some(answer) = accept(&frame) {
                            return Ok(Heard::Answer(answer));
                        }
                        if frame.control.is_reply() {
                            tracing::debug!(
                                source = %self.name,
                                address = %frame.address,
                                control = ?frame.control,
                                "frame that does not answer the request ignored"
                            );
                        }
                    }
                    Err(e) => {
                        self.stats.bad_frames += 1;
                        tracing::debug!(source = %self.name, "bad frame: {e}");
                        garbled = Some(e);
                        let soon = Instant::now() + self.gap().max(Duration::from_millis(50));
                        deadline = deadline.min(soon);
                    }
                }
            }
            match tokio::time::timeout_at(deadline, port.read(&mut buf)).await {
                Err(_) => {
                    return Ok(match garbled {
                        Some(e) => Heard::Garbled(e),
                        None => Heard::Nothing,
                    })
                }
                Ok(Ok(0)) => return Err(TxError::Port("end of file".into())),
                Ok(Err(e)) => return Err(TxError::Port(e.to_string())),
                Ok(Ok(n)) => {
                    self.last_activity = Instant::now();
                    self.rx.push(&buf[..n]);
                }
            }
        }
    }

    /// Reads `di` (and its follow-up frames) from `address`; the value's bytes.
    async fn read_value<P>(
        &mut self,
        port: &mut P,
        address: Address,
        first: &Frame,
        di: Di,
    ) -> Result<Vec<u8>, TxError>
    where
        P: AsyncRead + AsyncWrite + Unpin,
    {
        let accept = move |f: &Frame| -> Option<Result<DataReply, dlt645::Error>> {
            answers(f, address, function::READ_DATA)
                .then(|| decode_read_reply(f, address, di))
                .and_then(not_an_old_reply)
        };
        let reply = self.transact(port, first, &accept).await?;
        let mut value = reply.value;
        let mut more = reply.more;
        let mut seq: u8 = 0;
        while more {
            if seq >= MAX_FOLLOW_UPS {
                return Err(TxError::Link(format!(
                    "{di}: more than {MAX_FOLLOW_UPS} follow-up frames; reply given up"
                )));
            }
            seq += 1;
            let request = read_follow_up(address, di, seq);
            let accept = move |f: &Frame| -> Option<Result<DataReply, dlt645::Error>> {
                answers(f, address, function::READ_FOLLOW_UP)
                    .then(|| decode_follow_up_reply(f, address, di, seq))
                    .and_then(not_an_old_reply)
            };
            let next = self.transact(port, &request, &accept).await?;
            value.extend(next.value);
            more = next.more;
        }
        Ok(value)
    }

    /// One turn of device `idx`: discovery if needed, then every due poll. Returns the port's
    /// error if the port failed.
    async fn device_turn<P>(
        &mut self,
        idx: usize,
        port: &mut P,
        shutdown: &CancellationToken,
    ) -> Result<(), String>
    where
        P: AsyncRead + AsyncWrite + Unpin,
    {
        let address = match self.devices[idx].address {
            Some(a) => a,
            None => {
                let accept = |f: &Frame| -> Option<Result<Address, dlt645::Error>> {
                    (f.control.is_reply() && f.control.function() == function::READ_ADDRESS)
                        .then(|| decode_address_reply(f))
                };
                match self.transact(port, &read_address(), &accept).await {
                    Ok(a) => {
                        let d = &mut self.devices[idx];
                        tracing::info!(source = %self.name, device = %d.name, address = %a, "meter address discovered");
                        d.address = Some(a);
                        a
                    }
                    Err(TxError::Port(e)) => return Err(e),
                    Err(TxError::Refused(flags)) => {
                        self.failed(idx, format!("address discovery refused: {flags}"));
                        return Ok(());
                    }
                    Err(TxError::Link(reason)) => {
                        self.failed(idx, format!("address discovery: {reason}"));
                        return Ok(());
                    }
                }
            }
        };
        let mut readings = Vec::new();
        let mut interval = Vec::new();
        let now = Instant::now();
        for p in 0..self.devices[idx].polls.len() {
            if shutdown.is_cancelled() {
                break;
            }
            let poll = &self.devices[idx].polls[p];
            if poll.due > now {
                continue;
            }
            let id = poll.id.clone();
            let result = match id.record {
                Some(Record::LoadProfile) => {
                    self.poll_load_profile(idx, port, address, &id, &mut interval)
                        .await
                }
                _ => {
                    self.poll_value(idx, port, address, &id, &mut readings)
                        .await
                }
            };
            match result {
                Ok(()) => {}
                Err(TxError::Port(e)) => return Err(e),
                Err(TxError::Refused(flags)) => {
                    // The meter is there and says no: not a link failure.
                    let d = &mut self.devices[idx];
                    if d.refused.insert(id.di) {
                        tracing::warn!(source = %self.name, device = %d.name, di = %id.di, name = %id.name, "meter refuses: {flags}");
                    } else {
                        tracing::debug!(source = %self.name, device = %d.name, di = %id.di, "meter refuses: {flags}");
                    }
                }
                Err(TxError::Link(reason)) => {
                    self.failed(idx, format!("{} ({}): {reason}", id.di, id.name));
                    break;
                }
            }
            // Reached only when the meter answered (refusals included).
            self.succeeded(idx);
            let poll = &mut self.devices[idx].polls[p];
            poll.due += poll.every;
            if poll.due <= now {
                // Missed periods (the bus was slow or the meter away) are not made up.
                poll.due = now + poll.every;
            }
        }
        self.outbox.readings(readings);
        self.outbox.interval(interval);
        Ok(())
    }

    async fn poll_value<P>(
        &mut self,
        idx: usize,
        port: &mut P,
        address: Address,
        id: &Identifier,
        readings: &mut Vec<MeterReading>,
    ) -> Result<(), TxError>
    where
        P: AsyncRead + AsyncWrite + Unpin,
    {
        let value = self
            .read_value(port, address, &read_data(address, id.di), id.di)
            .await?;
        let device = self.devices[idx].name.clone();
        let values = match id.decode(&value) {
            Ok(v) => v,
            Err(e) => {
                // A reply that passed the checksum but does not fit the table: counted as a
                // bad frame; the meter is alive.
                self.stats.bad_frames += 1;
                tracing::warn!(source = %self.name, device = %device, di = %id.di, name = %id.name, "{e}");
                return Ok(());
            }
        };
        if id.record == Some(Record::PowerDown) {
            self.power_down(idx, &values);
        } else if let Some((quantity, value)) = id.reading(&values) {
            readings.push(MeterReading {
                source: self.name.clone(),
                device,
                at: self.cfg.clock.now(),
                quantity,
                value,
            });
        } else {
            tracing::debug!(source = %self.name, device = %device, di = %id.di, name = %id.name, ?values, "value without a quantity");
        }
        Ok(())
    }

    /// A power-down record: reported when it differs from the last one seen (a new power-down,
    /// or the end time of one now filled in).
    fn power_down(&mut self, idx: usize, values: &[Value]) {
        let [Value::Time(Some(start)), Value::Time(end)] = values else {
            return; // All zeros: the meter has recorded no power-down.
        };
        let record = (*start, *end);
        if self.devices[idx].last_power_down == Some(record) {
            return;
        }
        self.devices[idx].last_power_down = Some(record);
        let event = MeterEvent::PowerDown {
            source: self.name.clone(),
            device: self.devices[idx].name.clone(),
            start: self.to_utc(record.0),
            end: record.1.map(|t| self.to_utc(t)),
        };
        tracing::info!(source = %self.name, device = %self.devices[idx].name, start = %record.0, "power-down recorded by the meter");
        self.outbox.event(event);
    }

    async fn poll_load_profile<P>(
        &mut self,
        idx: usize,
        port: &mut P,
        address: Address,
        id: &Identifier,
        readings: &mut Vec<MeterReading>,
    ) -> Result<(), TxError>
    where
        P: AsyncRead + AsyncWrite + Unpin,
    {
        let blocks = LOAD_PROFILE_BLOCKS;
        let read = match id.di {
            dlt645::load_profile::DI_EARLIEST => LoadProfileRead::Earliest { blocks },
            dlt645::load_profile::DI_LATEST => LoadProfileRead::Latest { blocks },
            _ => {
                // First read: the records of the last hour or so.
                let from = self.devices[idx].profile_from.unwrap_or_else(|| {
                    let period = self.devices[idx]
                        .polls
                        .iter()
                        .find(|p| p.id.di == id.di)
                        .map(|p| p.every)
                        .unwrap_or(Duration::from_secs(900));
                    let back = chrono::Duration::from_std(period * u32::from(blocks))
                        .unwrap_or_else(|_| chrono::Duration::hours(1));
                    self.meter_now() - back
                });
                LoadProfileRead::Since {
                    from: from
                        .with_second(0)
                        .unwrap_or(from)
                        .with_nanosecond(0)
                        .unwrap_or(from),
                    blocks,
                }
            }
        };
        let request = match read.request(address) {
            Ok(r) => r,
            Err(e) => return Err(TxError::Link(format!("cannot build the request: {e}"))),
        };
        let value = self.read_value(port, address, &request, id.di).await?;
        let device = self.devices[idx].name.clone();
        let records = match parse_load_records(&value) {
            Ok(r) => r,
            Err(e) => {
                self.stats.bad_frames += 1;
                tracing::warn!(source = %self.name, device = %device, di = %id.di, "{e}");
                return Ok(());
            }
        };
        if records.flagged_bad > 0 {
            tracing::warn!(source = %self.name, device = %device, count = records.flagged_bad, "load-profile records the meter marks as not correct, skipped");
        }
        for r in &records.records {
            let at = self.to_utc(r.time);
            readings.extend(r.values.iter().map(|&(quantity, value)| MeterReading {
                source: self.name.clone(),
                device: device.clone(),
                at,
                quantity,
                value,
            }));
        }
        if let Some(last) = records.records.iter().map(|r| r.time).max() {
            self.devices[idx].profile_from = Some(last + chrono::Duration::minutes(1));
        }
        Ok(())
    }
}

/// What came back for one request.
enum Heard<T> {
    /// A frame `accept` took: the answer or the meter's refusal or a malformed answer.
    Answer(Result<T, dlt645::Error>),
    /// Only bad frames.
    Garbled(dlt645::Error),
    /// Nothing.
    Nothing,
}

/// Whether `f` is a reply to `function` from `address` (normal or abnormal).
fn answers(f: &Frame, address: Address, function: u8) -> bool {
    f.control.is_reply() && f.control.function() == function && f.address == address
}

/// A reply about another identifier is an old reply to an earlier request: not the answer.
fn not_an_old_reply(
    r: Result<DataReply, dlt645::Error>,
) -> Option<Result<DataReply, dlt645::Error>> {
    match r {
        Err(dlt645::Error::IdentifierMismatch { .. }) => None,
        other => Some(other),
    }
}

/// Messages on their way to the service. Events are never dropped: when the channel is full
/// they queue here. Readings queue up to [`Outbox::MAX_QUEUED_READINGS`] messages, the oldest
/// dropped first. Stats keep only the latest.
struct Outbox {
    tx: mpsc::Sender<MeterMessage>,
    queue: VecDeque<MeterMessage>,
    stats: Option<MeterMessage>,
    queued_readings: usize,
    dropped_readings: u64,
    closed: bool,
}

impl Outbox {
    const MAX_QUEUED_READINGS: usize = 1000;

    fn new(tx: mpsc::Sender<MeterMessage>) -> Outbox {
        Outbox {
            tx,
            queue: VecDeque::new(),
            stats: None,
            queued_readings: 0,
            dropped_readings: 0,
            closed: false,
        }
    }

    fn event(&mut self, e: MeterEvent) {
        self.queue.push_back(MeterMessage::Event(e));
        self.flush();
    }

    fn readings(&mut self, r: Vec<MeterReading>) {
        if r.is_empty() {
            return;
        }
        if self.queued_readings >= Self::MAX_QUEUED_READINGS {
            if let Some(i) = self
                .queue
                .iter()
                .position(|m| matches!(m, MeterMessage::Readings(_)))
            {
                self.queue.remove(i);
                self.queued_readings -= 1;
                self.dropped_readings += 1;
                if self.dropped_readings.is_power_of_two() {
                    tracing::warn!(
                        dropped = self.dropped_readings,
                        "service is slow: oldest meter readings dropped"
                    );
                }
            }
        }
        self.queue.push_back(MeterMessage::Readings(r));
        self.queued_readings += 1;
        self.flush();
    }

    /// Interval records: kept like events (few, and not repeated by the meter's next poll).
    fn interval(&mut self, r: Vec<MeterReading>) {
        if r.is_empty() {
            return;
        }
        self.queue.push_back(MeterMessage::Interval(r));
        self.flush();
    }

    fn stats(&mut self, m: MeterMessage) {
        self.stats = Some(m);
    }

    fn pending(&self) -> bool {
        !self.closed && (!self.queue.is_empty() || self.stats.is_some())
    }

    fn pop(&mut self) -> Option<MeterMessage> {
        if self.closed {
            return None;
        }
        let m = self.queue.pop_front().or_else(|| self.stats.take())?;
        if matches!(m, MeterMessage::Readings(_)) {
            self.queued_readings -= 1;
        }
        Some(m)
    }

    fn send_one(&mut self, permit: mpsc::Permit<'_, MeterMessage>) {
        if let Some(m) = self.pop() {
            permit.send(m);
        }
        self.flush();
    }

    /// The service is gone: nothing will be read again.
    fn closed(&mut self) {
        self.closed = true;
        self.queue.clear();
        self.queued_readings = 0;
        self.stats = None;
    }

    fn flush(&mut self) {
        while let Some(m) = self.pop() {
            match self.tx.try_send(m) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(m)) => {
                    self.unpop(m);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.closed();
                    return;
                }
            }
        }
    }

    /// Delivers what is still queued before the poller stops, waiting for the service to make
    /// room, but not for ever: a service that no longer reads must not hold up a shutdown.
    async fn drain(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while let Some(m) = self.pop() {
            match tokio::time::timeout_at(deadline, self.tx.send(m)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return self.closed(),
                Err(_) => {
                    let lost = self.queue.len() + 1;
                    tracing::warn!(lost, "service not reading: messages lost at shutdown");
                    return;
                }
            }
        }
    }

    /// Puts back what [`Outbox::pop`] took.
    fn unpop(&mut self, m: MeterMessage) {
        match m {
            MeterMessage::Stats(..) if self.queue.is_empty() => self.stats = Some(m),
            m => {
                if matches!(m, MeterMessage::Readings(_)) {
                    self.queued_readings += 1;
                }
                self.queue.push_front(m);
            }
        }
    }
}
