//! One RS-485 bus of Modbus RTU meters: the task that polls them.
//!
//! One port, one protocol, many devices. Each device is polled at its own period; when several
//! are due the order rotates (round robin) so none is always last. A request that times out or
//! comes back garbled is retried; a device that fails `offline_after` polls in a row is reported
//! [`MeterEvent::Offline`] (with the reason), then polled once per back-off period (doubling up
//! to `max_backoff`) with no retries, so a dead meter costs at most one timeout per back-off and
//! never starves the others; its first good answer reports [`MeterEvent::Online`]. A port that
//! cannot be opened or disappears is retried with back-off and said so (tracing `warn`).
//!
//! The service is never waited on: readings, events and counters go to a bounded channel with
//! `try_send`; when it is full, events queue here (never dropped), readings queue up to a limit
//! and are then dropped (counted and logged), and only the newest counters are kept.

use super::plan::{plan_reads, Batch};
use super::profile::{Parity, Profile, RegisterKind};
use crate::sources::meters::readings::{BusStats, MeterEvent, MeterMessage, MeterReading};
use chrono::{DateTime, Utc};
use futures::FutureExt;
use std::collections::VecDeque;
use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_modbus::client::{Context, Reader};
use tokio_modbus::prelude::{Slave, SlaveContext};
use tokio_serial::{SerialPort, SerialPortBuilderExt, SerialStream};
use tokio_util::sync::CancellationToken;

/// First wait before reopening a port that failed; doubles up to [`PORT_BACKOFF_MAX`].
const PORT_BACKOFF_MIN: Duration = Duration::from_millis(200);
/// Longest wait between attempts to reopen a port.
const PORT_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Readings waiting for a slow service beyond this many are dropped (events never are).
const MAX_QUEUED: usize = 1000;

/// Stop bits per character.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopBits {
    /// One: 8N1, 8E1, 8O1.
    One,
    /// Two: 8N2 (the Modbus spec's choice when there is no parity).
    Two,
}

/// A meter on the bus.
#[derive(Clone, Debug)]
pub struct ModbusDevice {
    /// Name in readings, events and logs.
    pub name: String,
    /// Modbus address, 1..=247.
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
    /// Serial port path, e.g. `/dev/ttyUSB0`.
    pub port: String,
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
}

impl ModbusBusConfig {
    /// A bus with the usual settings: 8N1, 1 s timeout, 2 retries, the 3.5-character gap for
    /// the baud rate, offline after 3 failed polls, offline devices retried at most every 60 s.
    pub fn new(name: impl Into<String>, port: impl Into<String>, baud: u32) -> ModbusBusConfig {
        ModbusBusConfig {
            name: name.into(),
            port: port.into(),
            baud,
            parity: Parity::None,
            stop_bits: StopBits::One,
            timeout: Duration::from_secs(1),
            retries: 2,
            offline_after: 3,
            max_backoff: Duration::from_secs(60),
            devices: Vec::new(),
            clock: Default::default(),
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
        if self.port.trim().is_empty() {
            return Err(bad("port: must not be empty".into()));
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
            if !(1..=247).contains(&d.slave_id) {
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
            // A timeout shorter than the largest reply's time on the wire fails every poll.
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

/// Modbus RTU's inter-frame silence: 3.5 character times at `baud`, or the fixed 1.75 ms the
/// spec prescribes above 19200 baud (Modbus over serial line V1.02, §2.5.1.1).
pub fn inter_frame_gap(baud: u32, parity: Parity, stop_bits: StopBits) -> Duration {
    if baud > 19_200 {
        return Duration::from_micros(1750);
    }
    Duration::from_secs_f64(3.5 * f64::from(bits_per_char(parity, stop_bits)) / f64::from(baud))
}

/// Start bit, 8 data bits, parity bit if any, stop bits.
fn bits_per_char(parity: Parity, stop_bits: StopBits) -> u32 {
    let parity = u32::from(parity != Parity::None);
    let stop = match stop_bits {
        StopBits::One => 1,
        StopBits::Two => 2,
    };
    1 + 8 + parity + stop
}

fn wire_time(baud: u32, parity: Parity, stop_bits: StopBits, bytes: usize) -> Duration {
    Duration::from_secs_f64(
        bytes as f64 * f64::from(bits_per_char(parity, stop_bits)) / f64::from(baud.max(1)),
    )
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

/// Why one request failed.
#[derive(Debug, Error)]
enum RequestError {
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    #[error("exception {code:#04x} ({text})")]
    Exception { code: u8, text: String },
    #[error("bad reply: {0}")]
    BadFrame(String),
    #[error("{0}")]
    Port(io::Error),
}

/// Polls every device of the bus until `shutdown` is cancelled (or the
/// receiver of `tx` goes away). Refuses only an invalid configuration; a missing port, dead
/// meters and bad replies are handled and reported, never returned.
pub async fn run(
    cfg: ModbusBusConfig,
    tx: mpsc::Sender<MeterMessage>,
    shutdown: CancellationToken,
) -> Result<(), ModbusError> {
    cfg.validate()?;
    let bus: Arc<str> = cfg.name.as_str().into();
    let started = cfg.clock.now();
    let now = Instant::now();
    let mut devices: Vec<DeviceState> = cfg
        .devices
        .iter()
        .map(|d| {
            let plan = plan_reads(&d.profile);
            DeviceState {
                name: d.name.as_str().into(),
                warned_exception: vec![false; plan.len()],
                plan,
                next_due: now,
                online: None,
                failures: 0,
                last_good: started,
                backoff: d.poll_every,
            }
        })
        .collect();
    let mut out = Outbox::new(tx);
    let mut stats = BusStats::default();
    let mut port_backoff = PORT_BACKOFF_MIN;
    let mut port_trouble = false;
    let mut rr = 0usize;
    while !shutdown.is_cancelled() && !out.closed {
        let port = match open_port(&cfg) {
            Ok(p) => p,
            Err(e) => {
                let reason = format!("cannot open serial port {}: {e}", cfg.port);
                if !port_trouble {
                    tracing::warn!(bus = %bus, "{reason}; retrying with back-off");
                    port_trouble = true;
                } else {
                    tracing::debug!(bus = %bus, "{reason}");
                }
                for st in devices.iter_mut() {
                    st.port_gone(&bus, &reason, &mut out);
                }
                if idle_until(Instant::now() + port_backoff, &mut out, &shutdown).await {
                    break;
                }
                port_backoff = (port_backoff * 2).min(PORT_BACKOFF_MAX);
                continue;
            }
        };
        tracing::info!(bus = %bus, port = %cfg.port, baud = cfg.baud, "serial port open");
        port_backoff = PORT_BACKOFF_MIN;
        // Devices that were only offline because the port was gone are asked again at once.
        let now = Instant::now();
        for (st, d) in devices.iter_mut().zip(&cfg.devices) {
            if st.online == Some(false) {
                st.next_due = now;
                st.backoff = d.poll_every;
            }
        }
        let mut link = Link::new(port, &cfg);
        let end = poll_until_port_lost(
            &cfg,
            &bus,
            &mut link,
            &mut devices,
            &mut stats,
            &mut out,
            &shutdown,
            &mut rr,
        )
        .await;
        match end {
            LoopEnd::Shutdown => break,
            LoopEnd::PortLost(e) => {
                let reason = format!("serial port {} lost: {e}", cfg.port);
                tracing::warn!(bus = %bus, "{reason}; reopening");
                port_trouble = true;
                for st in devices.iter_mut() {
                    st.port_gone(&bus, &reason, &mut out);
                }
                drop(link);
                if idle_until(Instant::now() + port_backoff, &mut out, &shutdown).await {
                    break;
                }
            }
        }
    }
    out.drain(Duration::from_secs(1)).await;
    Ok(())
}

enum LoopEnd {
    Shutdown,
    PortLost(io::Error),
}

#[allow(clippy::too_many_arguments)] // the run loop's state, split out only to keep `run` short
async fn poll_until_port_lost(
    cfg: &ModbusBusConfig,
    bus: &Arc<str>,
    link: &mut Link,
    devices: &mut [DeviceState],
    stats: &mut BusStats,
    out: &mut Outbox,
    shutdown: &CancellationToken,
    rr: &mut usize,
) -> LoopEnd {
    let n = devices.len();
    loop {
        if shutdown.is_cancelled() || out.closed {
            return LoopEnd::Shutdown;
        }
        let now = Instant::now();
        let due: Vec<usize> = (0..n)
            .map(|k| (*rr + k) % n)
            .filter(|&i| devices[i].next_due <= now)
            .collect();
        if due.is_empty() {
            let next = devices
                .iter()
                .map(|d| d.next_due)
                .min()
                .unwrap_or(now + Duration::from_secs(1));
            if idle_until(next, out, shutdown).await {
                return LoopEnd::Shutdown;
            }
            continue;
        }
        *rr = (*rr + 1) % n;
        let cycle = Instant::now();
        for i in due {
            let (dev, st) = (&cfg.devices[i], &mut devices[i]);
            let result = tokio::select! {
                r = poll_device(link, dev, st, stats, cfg.retries, bus, &cfg.clock) => r,
                _ = shutdown.cancelled() => return LoopEnd::Shutdown,
            };
            let now = Instant::now();
            match result {
                PollResult::PortLost(e) => return LoopEnd::PortLost(e),
                PollResult::Done { readings, failure } => {
                    if !readings.is_empty() {
                        out.readings(readings);
                    }
                    match failure {
                        None => st.answered(bus, cfg.clock.now(), out),
                        Some(reason) => st.failed(bus, reason, cfg.offline_after, out),
                    }
                    st.schedule(dev.poll_every, cfg.max_backoff, now);
                }
            }
            out.flush();
        }
        stats.last_cycle_ms = cycle.elapsed().as_secs_f64() * 1000.0;
        out.stats(MeterMessage::Stats(bus.clone(), stats.clone()));
    }
}

/// What the poller knows of one device.
struct DeviceState {
    name: Arc<str>,
    plan: Vec<Batch>,
    next_due: Instant,
    /// `None` until it first answers or is first declared offline.
    online: Option<bool>,
    failures: u32,
    last_good: DateTime<Utc>,
    /// Wait before the next poll while offline.
    backoff: Duration,
    /// One warning per read that gets an exception reply, not one per poll.
    warned_exception: Vec<bool>,
}

impl DeviceState {
    fn answered(&mut self, bus: &Arc<str>, at: DateTime<Utc>, out: &mut Outbox) {
        self.failures = 0;
        self.last_good = at;
        if self.online != Some(true) {
            tracing::info!(bus = %bus, device = %self.name, "meter online");
            self.online = Some(true);
            out.event(MeterEvent::Online {
                source: bus.clone(),
                device: self.name.clone(),
                at: self.last_good,
            });
        }
    }

    fn failed(&mut self, bus: &Arc<str>, reason: String, offline_after: u32, out: &mut Outbox) {
        self.failures = self.failures.saturating_add(1);
        if self.failures >= offline_after {
            self.go_offline(bus, reason, out);
        } else {
            tracing::debug!(bus = %bus, device = %self.name, failures = self.failures, "{reason}");
        }
    }

    fn port_gone(&mut self, bus: &Arc<str>, reason: &str, out: &mut Outbox) {
        self.failures = self.failures.max(1);
        self.go_offline(bus, reason.to_string(), out);
    }

    fn go_offline(&mut self, bus: &Arc<str>, reason: String, out: &mut Outbox) {
        if self.online == Some(false) {
            return;
        }
        tracing::warn!(bus = %bus, device = %self.name, "meter offline: {reason}");
        self.online = Some(false);
        out.event(MeterEvent::Offline {
            source: bus.clone(),
            device: self.name.clone(),
            since: self.last_good,
            reason,
        });
    }

    /// Next poll: on the period's grid while online (skipping missed slots rather than
    /// bursting), after a doubling back-off while offline.
    fn schedule(&mut self, period: Duration, max_backoff: Duration, now: Instant) {
        if self.online == Some(false) {
            self.next_due = now + self.backoff;
            self.backoff = (self.backoff * 2).min(max_backoff.max(period));
        } else {
            self.backoff = period;
            self.next_due += period;
            if self.next_due <= now {
                self.next_due = now + period;
            }
        }
    }
}

enum PollResult {
    /// What was read; `failure` is why the poll stopped early.
    Done {
        readings: Vec<MeterReading>,
        failure: Option<String>,
    },
    PortLost(io::Error),
}

/// Reads every batch of one device. Stops at the first read that fails after its retries, so
/// a silent device costs at most `timeout × (retries + 1)` (one timeout while offline).
async fn poll_device(
    link: &mut Link,
    dev: &ModbusDevice,
    st: &mut DeviceState,
    stats: &mut BusStats,
    retries: u32,
    bus: &Arc<str>,
    clock: &crate::sources::SourceClock,
) -> PollResult {
    let attempts = if st.online == Some(false) {
        1
    } else {
        retries.saturating_add(1)
    };
    let mut readings = Vec::new();
    for (bi, batch) in st.plan.iter().enumerate() {
        let mut last_error = None;
        for _ in 0..attempts {
            stats.requests += 1;
            match link.read(dev.slave_id, batch).await {
                Ok(words) => {
                    stats.replies += 1;
                    let at = clock.now();
                    readings.extend(batch.decode(&dev.profile, &words).into_iter().map(
                        |(quantity, value)| MeterReading {
                            source: bus.clone(),
                            device: st.name.clone(),
                            at,
                            quantity,
                            value,
                        },
                    ));
                    last_error = None;
                    break;
                }
                Err(e @ RequestError::Exception { .. }) => {
                    // The meter is there and says no: a profile that asks for a register this
                    // meter does not have. Retrying would get the same answer.
                    stats.error_replies += 1;
                    if !st.warned_exception[bi] {
                        st.warned_exception[bi] = true;
                        tracing::warn!(
                            bus = %bus, device = %st.name, profile = %dev.profile.name,
                            "{e} reading {}; the values in that read are skipped",
                            describe(batch)
                        );
                    }
                    last_error = None;
                    break;
                }
                Err(RequestError::Port(e)) => return PollResult::PortLost(e),
                Err(e) => {
                    match e {
                        RequestError::Timeout(_) => stats.timeouts += 1,
                        _ => stats.bad_frames += 1,
                    }
                    last_error = Some(e);
                }
            }
        }
        if let Some(e) = last_error {
            return PollResult::Done {
                readings,
                failure: Some(format!(
                    "{e} (slave {}, {}, {attempts} attempt{})",
                    dev.slave_id,
                    describe(batch),
                    if attempts == 1 { "" } else { "s" }
                )),
            };
        }
    }
    PollResult::Done {
        readings,
        failure: None,
    }
}

fn describe(b: &Batch) -> String {
    format!(
        "{} registers {}..{}",
        b.kind.as_str(),
        b.start,
        u32::from(b.start) + u32::from(b.count) - 1
    )
}

fn open_port(cfg: &ModbusBusConfig) -> tokio_serial::Result<SerialStream> {
    tokio_serial::new(&cfg.port, cfg.baud)
        .data_bits(tokio_serial::DataBits::Eight)
        .parity(match cfg.parity {
            Parity::None => tokio_serial::Parity::None,
            Parity::Even => tokio_serial::Parity::Even,
            Parity::Odd => tokio_serial::Parity::Odd,
        })
        .stop_bits(match cfg.stop_bits {
            StopBits::One => tokio_serial::StopBits::One,
            StopBits::Two => tokio_serial::StopBits::Two,
        })
        .flow_control(tokio_serial::FlowControl::None)
        .open_native_async()
}

/// The open port and the tokio-modbus client on it.
struct Link {
    port: SharedPort,
    /// Rebuilt after any failure other than an exception reply: a request abandoned at its
    /// timeout may leave the client's framed reader mid-frame, and tokio-modbus ends its frame
    /// stream after a decoding error.
    client: Option<Context>,
    /// No request before this instant: the bus must be silent 3.5 characters between frames.
    quiet_until: Instant,
    inter_frame: Duration,
    timeout: Duration,
}

impl Link {
    fn new(port: SerialStream, cfg: &ModbusBusConfig) -> Link {
        Link {
            port: SharedPort {
                stream: Arc::new(Mutex::new(port)),
                received: Arc::new(AtomicU64::new(0)),
            },
            client: None,
            quiet_until: Instant::now(),
            // Modbus RTU's 3.5 character times, from the line's own settings: tokio-modbus
            // sends a request as soon as it is asked, so the poller keeps this silence after
            // each reply (or timeout) before the next request.
            inter_frame: inter_frame_gap(cfg.baud, cfg.parity, cfg.stop_bits),
            timeout: cfg.timeout,
        }
    }

    async fn read(&mut self, slave: u8, batch: &Batch) -> Result<Vec<u16>, RequestError> {
        tokio::time::sleep_until(self.quiet_until).await;
        // Whatever is waiting in the input queue answers no request of ours (a reply that came
        // after its timeout, line noise): drop it so it is not taken for this reply's start.
        self.port.discard_input();
        let received_before = self.port.received();
        let port = self.port.clone();
        let client = self
            .client
            .get_or_insert_with(|| tokio_modbus::client::rtu::attach(port));
        client.set_slave(Slave(slave));
        let (start, count) = (batch.start, batch.count);
        let call = async {
            match batch.kind {
                RegisterKind::Input => client.read_input_registers(start, count).await,
                RegisterKind::Holding => client.read_holding_registers(start, count).await,
            }
        };
        // tokio-modbus has `debug_assert`s on the reply's register count: a stray reply that
        // matches slave and function but not the count must not take the bus task down in a
        // debug build, so a panic in the client is caught and treated as a bad reply.
        let result =
            tokio::time::timeout(self.timeout, AssertUnwindSafe(call).catch_unwind()).await;
        self.quiet_until = Instant::now() + self.inter_frame;
        let (outcome, reset) = match result {
            Err(_) if self.port.received() > received_before => (
                Err(RequestError::BadFrame(
                    "garbled or incomplete reply (CRC or length wrong)".into(),
                )),
                true,
            ),
            Err(_) => (Err(RequestError::Timeout(self.timeout)), true),
            Ok(Err(_panic)) => (
                Err(RequestError::BadFrame(
                    "reply does not match the request".into(),
                )),
                true,
            ),
            Ok(Ok(Ok(Ok(words)))) if words.len() == usize::from(count) => (Ok(words), false),
            Ok(Ok(Ok(Ok(words)))) => (
                Err(RequestError::BadFrame(format!(
                    "{} registers in a reply to a read of {count}",
                    words.len()
                ))),
                true,
            ),
            Ok(Ok(Ok(Err(code)))) => (
                Err(RequestError::Exception {
                    code: u8::from(code),
                    text: code.to_string(),
                }),
                false,
            ),
            Ok(Ok(Err(tokio_modbus::Error::Protocol(e)))) => {
                (Err(RequestError::BadFrame(e.to_string())), true)
            }
            // tokio-modbus's decoder gives up on a reply after dropping bytes it cannot frame.
            Ok(Ok(Err(tokio_modbus::Error::Transport(e))))
                if e.kind() == io::ErrorKind::InvalidData =>
            {
                (
                    Err(RequestError::BadFrame(format!("garbled reply ({e})"))),
                    true,
                )
            }
            Ok(Ok(Err(tokio_modbus::Error::Transport(e)))) => (Err(RequestError::Port(e)), true),
        };
        if reset {
            self.client = None;
        }
        outcome
    }
}

/// The serial port, shared so that a new tokio-modbus client can be attached to it after a
/// failure without reopening the port, and counting received bytes so that a timeout with
/// bytes on the line is told apart from silence (tokio-modbus waits on through a reply whose
/// CRC is wrong, so a garbled reply surfaces as a timeout).
#[derive(Clone)]
struct SharedPort {
    stream: Arc<Mutex<SerialStream>>,
    received: Arc<AtomicU64>,
}

impl SharedPort {
    fn lock(&self) -> MutexGuard<'_, SerialStream> {
        self.stream.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn discard_input(&self) {
        if let Err(e) = self.lock().clear(tokio_serial::ClearBuffer::Input) {
            tracing::debug!("cannot flush serial input: {e}");
        }
    }

    fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

impl AsyncRead for SharedPort {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut *self.lock()).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            let n = buf.filled().len() - before;
            self.received.fetch_add(n as u64, Ordering::Relaxed);
        }
        result
    }
}

impl AsyncWrite for SharedPort {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.lock()).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.lock()).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.lock()).poll_shutdown(cx)
    }
}

/// Waits until `deadline`, handing queued messages to the service as it makes room.
/// Returns true when the task should stop.
async fn idle_until(deadline: Instant, out: &mut Outbox, shutdown: &CancellationToken) -> bool {
    loop {
        if shutdown.is_cancelled() || out.closed {
            return true;
        }
        let tx = out.tx.clone();
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return false,
            _ = shutdown.cancelled() => return true,
            permit = tx.reserve(), if out.pending() => match permit {
                Ok(permit) => out.send_next(permit),
                Err(_) => {
                    out.closed = true;
                    return true;
                }
            },
        }
    }
}

/// Messages for the service, never waited on.
struct Outbox {
    tx: mpsc::Sender<MeterMessage>,
    queue: VecDeque<MeterMessage>,
    /// Only the newest counters matter.
    stats: Option<MeterMessage>,
    dropped_readings: u64,
    closed: bool,
}

impl Outbox {
    fn new(tx: mpsc::Sender<MeterMessage>) -> Outbox {
        Outbox {
            tx,
            queue: VecDeque::new(),
            stats: None,
            dropped_readings: 0,
            closed: false,
        }
    }

    fn event(&mut self, e: MeterEvent) {
        self.queue.push_back(MeterMessage::Event(e));
        self.flush();
    }

    fn readings(&mut self, r: Vec<MeterReading>) {
        self.flush();
        if self.queue.len() >= MAX_QUEUED {
            self.dropped_readings += 1;
            if self.dropped_readings.is_power_of_two() {
                tracing::warn!(
                    dropped = self.dropped_readings,
                    "service is slow: meter readings dropped"
                );
            }
            return;
        }
        self.queue.push_back(MeterMessage::Readings(r));
        self.flush();
    }

    fn stats(&mut self, m: MeterMessage) {
        self.stats = Some(m);
        self.flush();
    }

    fn pending(&self) -> bool {
        !self.queue.is_empty() || self.stats.is_some()
    }

    fn next(&mut self) -> Option<MeterMessage> {
        self.queue.pop_front().or_else(|| self.stats.take())
    }

    fn send_next(&mut self, permit: mpsc::Permit<'_, MeterMessage>) {
        if let Some(m) = self.next() {
            permit.send(m);
        }
    }

    fn flush(&mut self) {
        while let Some(m) = self.next() {
            match self.tx.try_send(m) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(m)) => {
                    // Back where it came from, keeping the order.
                    if matches!(m, MeterMessage::Stats(..)) {
                        self.stats = Some(m);
                    } else {
                        self.queue.push_front(m);
                    }
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.closed = true;
                    self.queue.clear();
                    self.stats = None;
                    return;
                }
            }
        }
    }

    /// At shutdown: what is queued (events above all) gets a little time to go.
    async fn drain(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        while self.pending() && !self.closed {
            match tokio::time::timeout_at(deadline, self.tx.reserve()).await {
                Ok(Ok(permit)) => {
                    if let Some(m) = self.queue.pop_front().or_else(|| self.stats.take()) {
                        permit.send(m);
                    }
                }
                _ => {
                    let events = self
                        .queue
                        .iter()
                        .filter(|m| matches!(m, MeterMessage::Event(_)))
                        .count();
                    if events > 0 {
                        tracing::warn!(
                            events,
                            "stopping with meter events the service did not take"
                        );
                    }
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::meters::modbus::profile::builtin_profile;

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
    fn inter_frame_gap_is_three_and_a_half_characters() {
        let g = inter_frame_gap(9600, Parity::None, StopBits::One);
        assert!(
            (g.as_secs_f64() - 3.5 * 10.0 / 9600.0).abs() < 1e-9,
            "{g:?}"
        );
        let g = inter_frame_gap(9600, Parity::Even, StopBits::One);
        assert!(
            (g.as_secs_f64() - 3.5 * 11.0 / 9600.0).abs() < 1e-9,
            "{g:?}"
        );
        assert_eq!(
            inter_frame_gap(38400, Parity::Even, StopBits::One),
            Duration::from_micros(1750)
        );
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

    #[test]
    fn offline_devices_back_off_and_online_ones_keep_their_grid() {
        let now = Instant::now();
        let mut st = DeviceState {
            name: "m".into(),
            plan: vec![],
            next_due: now,
            online: Some(true),
            failures: 0,
            last_good: Utc::now(),
            backoff: Duration::from_secs(1),
            warned_exception: vec![],
        };
        let period = Duration::from_secs(1);
        st.schedule(period, Duration::from_secs(8), now);
        assert_eq!(st.next_due, now + period);
        st.online = Some(false);
        let mut waits = vec![];
        for _ in 0..6 {
            st.schedule(period, Duration::from_secs(8), now);
            waits.push((st.next_due - now).as_secs());
        }
        assert_eq!(waits, vec![1, 2, 4, 8, 8, 8]);
    }

    #[tokio::test]
    async fn events_queue_when_the_service_is_slow_and_are_never_dropped() {
        let (tx, mut rx) = mpsc::channel(2);
        let mut out = Outbox::new(tx);
        let bus: Arc<str> = "b".into();
        for i in 0..5 {
            out.event(MeterEvent::Online {
                source: bus.clone(),
                device: format!("d{i}").into(),
                at: Utc::now(),
            });
        }
        for _ in 0..(MAX_QUEUED + 10) {
            out.readings(vec![]);
        }
        assert!(out.dropped_readings >= 10);
        let mut events = 0;
        while out.pending() || !rx.is_empty() {
            while let Ok(m) = rx.try_recv() {
                events += usize::from(matches!(m, MeterMessage::Event(_)));
            }
            out.flush();
        }
        assert_eq!(events, 5);
    }
}
