//! Simulated RS-485 meters for `kare demo` and tests: an Eastron SDM630 answering Modbus RTU and a
//! DL/T 645-2007 meter, each behind a pseudo-terminal that the real pollers open as a serial port.
//!
//! Both read one [`Supply`]: the per-phase level (percent of Udin) that the demo copies from its
//! simulated sensor node, so the meters see the same dips and outages as the node (coarsely, at
//! their poll period). The load is a constant impedance: currents and powers follow the voltage,
//! so an outage reads ~0 V, 0 A, 0 kW, and energy stops counting.
//!
//! The supply also carries the time it describes ([`Supply::set_time`]): in the demo, the time
//! of the node's half cycle its levels were copied from, i.e. the simulation's data clock. The
//! meters keep their time, integrate their energy and (through [`Supply::clock`]) their
//! pollers stamp readings on that clock, so at `kare demo --speed 10` a meter reports an outage
//! at the times the node does, not on the wall clock. Unset, it is the wall clock.
//!
//! Wiring:
//!
//! ```text
//!  DL/T 645 poller ── tokio-serial ── /dev/pts/A ═ master A ── meter task (FrameBuffer, replies)
//!  Modbus poller   ── tokio-serial ── /dev/pts/A ═ master A ─┐ relay ┌─ master B ═ /dev/pts/B ── tokio-serial ── tokio-modbus RTU server
//! ```
//!
//! tokio-modbus's RTU server only takes a `tokio_serial::SerialStream`, which is opened by path,
//! hence the second pair and the relay for the Modbus meter. Pseudo-terminals carry no parity:
//! buses on them run 8N1.

use crate::sim::pty::Pty;
use crate::sources::meters::dlt645::codec::{
    self as dlt645, function, Address, Control, Di, ErrorFlags, Field, Frame, FrameBuffer,
    Identifier, IdentifierTable, Record,
};
use crate::sources::meters::dlt645::{Dlt645BusConfig, Dlt645Device};
use crate::sources::meters::modbus::{
    self as modbus, ModbusBusConfig, ModbusDevice, Profile, RegisterKind,
};
use crate::sources::meters::readings::Quantity;
use crate::sources::SourceClock;
use chrono::{DateTime, FixedOffset, Utc};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::task::JoinHandle;
use tokio_modbus::{ExceptionCode, Request, Response, SlaveRequest};

/// The simulated Modbus meter's slave id.
pub const MODBUS_SLAVE_ID: u8 = 1;
/// The simulated DL/T 645 meter's address, as printed on its name plate.
pub const DLT645_ADDRESS: &str = "000000000001";
/// The Modbus meter's register map (a built-in profile).
pub const MODBUS_PROFILE: &str = "eastron-sdm630";

/// The supply the simulated meters measure: the level of each phase in percent of `udin`,
/// shared between whoever sets it (the demo, from its node's readings) and the meters.
#[derive(Clone, Debug)]
pub struct Supply {
    udin: f64,
    nominal_hz: f64,
    /// f32 bits of each phase's percent: atomics so the reading follower never waits.
    percent: Arc<[AtomicU32; 3]>,
    /// The time the levels describe, µs since the Unix epoch; [`WALL`]: the wall clock.
    time_us: Arc<AtomicI64>,
}

/// `time_us` before anyone set a time: read the wall clock.
const WALL: i64 = i64::MIN;

impl Supply {
    /// A healthy supply (100 % on every phase) of `udin` volts phase-neutral at `nominal_hz`.
    pub fn new(udin: f64, nominal_hz: f64) -> Supply {
        let full = 100f32.to_bits();
        Supply {
            udin,
            nominal_hz,
            percent: Arc::new([
                AtomicU32::new(full),
                AtomicU32::new(full),
                AtomicU32::new(full),
            ]),
            time_us: Arc::new(AtomicI64::new(WALL)),
        }
    }

    /// Says what time the levels now set describe (the data clock of whoever sets them). Call
    /// after setting the levels: a meter stamped `t` then reports levels of `t` or later. A
    /// time earlier than the one held is ignored (the clock never goes back).
    pub fn set_time(&self, t: DateTime<Utc>) {
        self.time_us
            .fetch_max(t.timestamp_micros().max(WALL + 1), Ordering::Relaxed);
    }

    /// The supply's time: the last [`Supply::set_time`], or the wall clock if never set.
    pub fn now(&self) -> DateTime<Utc> {
        match self.time_us.load(Ordering::Relaxed) {
            WALL => Utc::now(),
            us => DateTime::<Utc>::from_timestamp_micros(us).unwrap_or_else(Utc::now),
        }
    }

    /// The supply's time as a source clock, for the pollers of the meters measuring it.
    pub fn clock(&self) -> SourceClock {
        let supply = self.clone();
        SourceClock::from_fn(move || supply.now())
    }

    /// Sets one phase's level (0 = A), in percent of Udin; other phases are ignored.
    pub fn set_percent(&self, phase: usize, percent: f32) {
        if let Some(p) = self.percent.get(phase) {
            p.store(percent.max(0.0).to_bits(), Ordering::Relaxed);
        }
    }

    /// Phase-neutral voltages now, V.
    pub fn volts(&self) -> [f64; 3] {
        let v = |i: usize| {
            self.udin * f64::from(f32::from_bits(self.percent[i].load(Ordering::Relaxed))) / 100.0
        };
        [v(0), v(1), v(2)]
    }
}

/// Currents at Udin, A (a slightly unbalanced commercial load).
const AMPS_AT_UDIN: [f64; 3] = [12.4, 11.7, 13.1];
/// Displacement power factor of the load.
const POWER_FACTOR: f64 = 0.95;
/// Energy registers at start, kWh.
const ENERGY_START_KWH: f64 = 12_345.67;

/// What both meters report, computed from the supply at each request.
#[derive(Debug)]
struct Model {
    supply: Supply,
    /// Last integration time (the supply's) and imported energy (kWh), so energy grows with the
    /// power drawn over the supply's time, however fast that runs.
    energy: Mutex<(DateTime<Utc>, f64)>,
    /// Largest total power seen, kW (the maximum demand register).
    max_demand: Mutex<f64>,
}

impl Model {
    fn new(supply: Supply) -> Model {
        Model {
            energy: Mutex::new((supply.now(), ENERGY_START_KWH)),
            max_demand: Mutex::new(0.0),
            supply,
        }
    }

    /// Every quantity the meters know, now.
    fn snapshot(&self) -> HashMap<Quantity, f64> {
        use Quantity::*;
        let udin = self.supply.udin;
        let v = self.supply.volts();
        // Constant impedance: current in proportion to the voltage.
        let i: [f64; 3] = std::array::from_fn(|k| AMPS_AT_UDIN[k] * v[k] / udin);
        let p: [f64; 3] = std::array::from_fn(|k| v[k] * i[k] * POWER_FACTOR / 1000.0);
        let s: [f64; 3] = std::array::from_fn(|k| v[k] * i[k] / 1000.0);
        let p_total: f64 = p.iter().sum();
        let s_total: f64 = s.iter().sum();
        let q_total = (s_total * s_total - p_total * p_total).max(0.0).sqrt();
        let live = v.iter().any(|&x| x > 0.1 * udin);
        let energy = {
            let mut e = self.energy.lock().unwrap_or_else(|p| p.into_inner());
            let now = self.supply.now();
            let hours = (now - e.0).num_microseconds().unwrap_or(0).max(0) as f64 / 3.6e9;
            e.1 += p_total * hours;
            e.0 = e.0.max(now);
            e.1
        };
        let max_demand = {
            let mut m = self.max_demand.lock().unwrap_or_else(|p| p.into_inner());
            *m = m.max(p_total);
            *m
        };
        let pf = |k: usize| if i[k] > 0.01 { POWER_FACTOR } else { 0.0 };
        let line = |a: f64, b: f64| (a * a + b * b + a * b).sqrt();
        let thd_u = |k: usize, t: f64| if v[k] > 0.1 * udin { t } else { 0.0 };
        let thd_i = |k: usize, t: f64| if i[k] > 0.01 { t } else { 0.0 };
        HashMap::from([
            (VoltageA, v[0]),
            (VoltageB, v[1]),
            (VoltageC, v[2]),
            (VoltageAb, line(v[0], v[1])),
            (VoltageBc, line(v[1], v[2])),
            (VoltageCa, line(v[2], v[0])),
            (CurrentA, i[0]),
            (CurrentB, i[1]),
            (CurrentC, i[2]),
            // The phasor sum of three currents 120° apart (equal power factors): the imbalance.
            (
                CurrentN,
                (i[0] * i[0] + i[1] * i[1] + i[2] * i[2] - i[0] * i[1] - i[1] * i[2] - i[2] * i[0])
                    .max(0.0)
                    .sqrt(),
            ),
            (Frequency, if live { self.supply.nominal_hz } else { 0.0 }),
            (ActivePowerA, p[0]),
            (ActivePowerB, p[1]),
            (ActivePowerC, p[2]),
            (ActivePowerTotal, p_total),
            (ReactivePowerTotal, q_total),
            (ApparentPowerTotal, s_total),
            (PowerFactorA, pf(0)),
            (PowerFactorB, pf(1)),
            (PowerFactorC, pf(2)),
            (
                PowerFactorTotal,
                if s_total > 0.0 {
                    p_total / s_total
                } else {
                    0.0
                },
            ),
            (ThdUA, thd_u(0, 2.1)),
            (ThdUB, thd_u(1, 2.4)),
            (ThdUC, thd_u(2, 1.9)),
            (ThdIA, thd_i(0, 8.5)),
            (ThdIB, thd_i(1, 9.2)),
            (ThdIC, thd_i(2, 7.8)),
            (EnergyImportKwh, energy),
            (EnergyExportKwh, 0.0),
            // Reactive energy in the load's ratio to active (tan φ of the power factor).
            (
                EnergyReactiveImportKvarh,
                energy * (1.0 / (POWER_FACTOR * POWER_FACTOR) - 1.0).sqrt(),
            ),
            (EnergyReactiveExportKvarh, 0.0),
            (DemandKw, p_total),
            (MaxDemandKw, max_demand),
            (PowerDownCount, 0.0),
        ])
    }
}

/// A pseudo-terminal master as a tokio stream: non-blocking, woken by the reactor.
#[derive(Debug)]
struct PtyStream(AsyncFd<File>);

impl PtyStream {
    fn new(master: File) -> io::Result<PtyStream> {
        crate::sim::pty::set_nonblocking(&master)?;
        // SAFETY: the File owns its descriptor, which stays open until the AsyncFd (its owner
        // now) is dropped, and `File::as_raw_fd` always returns that same descriptor.
        let fd = unsafe { AsyncFd::register(master) }?;
        Ok(PtyStream(fd))
    }
}

impl AsyncRead for PtyStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|fd| fd.get_ref().read(unfilled)) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for PtyStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.0.poll_write_ready(cx))?;
            match guard.try_io(|fd| fd.get_ref().write(data)) {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A running simulated meter. Dropping it stops the meter (the port then stays silent, as a
/// dead meter's line does, until the pseudo-terminal closes with it).
#[derive(Debug)]
pub struct SimMeter {
    /// The port to poll it on (open it like a serial port, 8N1).
    pub port: PathBuf,
    tasks: Vec<JoinHandle<()>>,
    /// Port-side descriptors kept open so the masters never see a hang-up while the poller
    /// (re)opens its port.
    _slaves: Vec<OwnedFd>,
}

impl Drop for SimMeter {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts a simulated Eastron SDM630 (slave [`MODBUS_SLAVE_ID`]) measuring `supply`. Must be
/// called inside a tokio runtime.
pub fn start_modbus_meter(supply: Supply) -> io::Result<SimMeter> {
    let profile = modbus::builtin_profile(MODBUS_PROFILE)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    let (poller_master, port, poller_slave) = Pty::open()?.into_parts();
    let (server_master, server_path, server_slave) = Pty::open()?.into_parts();
    let mut poller_side = PtyStream::new(poller_master)?;
    let mut server_side = PtyStream::new(server_master)?;
    let relay = tokio::spawn(async move {
        if let Err(e) = tokio::io::copy_bidirectional(&mut poller_side, &mut server_side).await {
            tracing::debug!("simulated Modbus meter: relay stopped: {e}");
        }
    });
    let service = Arc::new(Sdm630 {
        model: Model::new(supply),
        profile,
    });
    let server = tokio::spawn(async move {
        // The server returns on a port error; a real meter would keep listening, so reopen.
        loop {
            let serial = tokio_serial::SerialStream::open(&tokio_serial::new(
                server_path.to_string_lossy(),
                9600,
            ));
            match serial {
                Ok(serial) => {
                    let server = tokio_modbus::server::rtu::Server::new(serial);
                    if let Err(e) = server.serve_forever(service.clone()).await {
                        tracing::debug!("simulated Modbus meter: server stopped: {e}");
                    }
                }
                Err(e) => tracing::debug!("simulated Modbus meter: cannot open its port: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    Ok(SimMeter {
        port,
        tasks: vec![relay, server],
        _slaves: vec![poller_slave, server_slave],
    })
}

/// The Modbus side: input (and holding) registers filled from the model at each request.
struct Sdm630 {
    model: Model,
    profile: Profile,
}

impl Sdm630 {
    /// `count` registers of `kind` from `start`; addresses the profile does not map read 0, as
    /// the real meter's reserved addresses do.
    fn registers(&self, kind: RegisterKind, start: u16, count: u16) -> Vec<u16> {
        let values = self.model.snapshot();
        let mut words = vec![0u16; usize::from(count)];
        for r in self.profile.registers.iter().filter(|r| r.kind == kind) {
            let Some(&value) = values.get(&r.quantity) else {
                continue;
            };
            for (k, w) in r.encode(value).into_iter().enumerate() {
                let at = u32::from(r.address) + k as u32;
                if let Some(i) = at.checked_sub(u32::from(start)) {
                    if let Some(slot) = words.get_mut(i as usize) {
                        *slot = w;
                    }
                }
            }
        }
        words
    }
}

impl tokio_modbus::server::Service for Sdm630 {
    type Request = SlaveRequest<'static>;
    type Response = Option<Response>;
    type Exception = ExceptionCode;
    type Future = std::future::Ready<Result<Option<Response>, ExceptionCode>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        // Requests to other slaves are not ours: silence, as on a shared bus.
        if req.slave != MODBUS_SLAVE_ID {
            return std::future::ready(Ok(None));
        }
        let answer = match req.request {
            Request::ReadInputRegisters(start, n)
                if u32::from(start) + u32::from(n) <= 0x1_0000 =>
            {
                Ok(Some(Response::ReadInputRegisters(self.registers(
                    RegisterKind::Input,
                    start,
                    n,
                ))))
            }
            Request::ReadHoldingRegisters(start, n)
                if u32::from(start) + u32::from(n) <= 0x1_0000 =>
            {
                Ok(Some(Response::ReadHoldingRegisters(self.registers(
                    RegisterKind::Holding,
                    start,
                    n,
                ))))
            }
            Request::ReadInputRegisters(..) | Request::ReadHoldingRegisters(..) => {
                Err(ExceptionCode::IllegalDataAddress)
            }
            _ => Err(ExceptionCode::IllegalFunction),
        };
        std::future::ready(answer)
    }
}

/// Starts a simulated DL/T 645-2007 meter at [`DLT645_ADDRESS`] measuring `supply`. Must be
/// called inside a tokio runtime.
pub fn start_dlt645_meter(supply: Supply) -> io::Result<SimMeter> {
    let address: Address = DLT645_ADDRESS
        .parse()
        .map_err(|e: dlt645::AddressParseError| io::Error::other(e.0))?;
    let (master, port, slave) = Pty::open()?.into_parts();
    let mut stream = PtyStream::new(master)?;
    let model = Model::new(supply);
    let task = tokio::spawn(async move {
        let mut rx = FrameBuffer::new();
        let mut buf = [0u8; 512];
        loop {
            let n = match stream.read(&mut buf).await {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) => {
                    tracing::debug!("simulated DL/T 645 meter stopped: {e}");
                    return;
                }
            };
            rx.push(&buf[..n]);
            while let Some(found) = rx.next_frame() {
                // A garbled request gets no answer, as from a real meter.
                let Ok(request) = found else { continue };
                let Some(reply) = answer_dlt645(&request, address, &model) else {
                    continue;
                };
                let Ok(bytes) = reply.encode_with_wake_up() else {
                    continue;
                };
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
            }
        }
    });
    Ok(SimMeter {
        port,
        tasks: vec![task],
        _slaves: vec![slave],
    })
}

/// The reply to one request, or `None` when a meter stays silent (not addressed to it, a
/// broadcast, a reply heard on the bus, a function it does not serve).
fn answer_dlt645(request: &Frame, address: Address, model: &Model) -> Option<Frame> {
    if request.control.is_reply() {
        return None;
    }
    let for_us = request.address == address || request.address == Address::WILDCARD;
    if !for_us {
        return None;
    }
    match request.control.function() {
        function::READ_ADDRESS => Some(Frame {
            address,
            control: Control::reply(function::READ_ADDRESS, false),
            data: address.wire().to_vec(),
        }),
        function::READ_DATA => {
            let di = Di::from_wire(request.data.get(..4)?.try_into().ok()?);
            let value = IdentifierTable::builtin()
                .get(di)
                .and_then(|id| dlt645_value(id, &model.snapshot(), model.supply.now()));
            Some(match value {
                Some(value) => {
                    let mut data = di.to_wire().to_vec();
                    data.extend(value);
                    Frame {
                        address,
                        control: Control::reply(function::READ_DATA, false),
                        data,
                    }
                }
                None => Frame {
                    address,
                    control: Control::error_reply(function::READ_DATA),
                    data: vec![ErrorFlags::NO_DATA_REQUESTED],
                },
            })
        }
        _ => None,
    }
}

/// An identifier's value bytes (offset not yet added), or `None` for "no data" (`D1`).
fn dlt645_value(
    id: &Identifier,
    values: &HashMap<Quantity, f64>,
    now: DateTime<Utc>,
) -> Option<Vec<u8>> {
    match id.record {
        // This meter keeps no load profile.
        Some(Record::LoadProfile) => return None,
        // All zeros: no power-down recorded (the simulated supply's outages are the node's).
        Some(Record::PowerDown) => return Some(vec![0; id.bytes]),
        None => {}
    }
    let quantity = match id.quantity {
        Some(q) => q,
        // Combined active energy (no kare quantity) equals import on a meter that never exports.
        None if id.di == Di(0x0000_0000) => Quantity::EnergyImportKwh,
        None => return None,
    };
    let value = *values.get(&quantity)?;
    // DL/T 645 meters keep local time; the bus default is China Standard Time.
    let cst = FixedOffset::east_opt(8 * 3600)?;
    let now = now.with_timezone(&cst).naive_local();
    let mut out = Vec::with_capacity(id.bytes);
    let mut first_number = true;
    for field in &id.fields {
        match *field {
            Field::Number { format, signed } => {
                let v = if first_number { value } else { 0.0 };
                first_number = false;
                out.extend(dlt645::encode_number(v, format, signed).ok()?);
            }
            Field::DateTime => out.extend(dlt645::encode_datetime(now, true).ok()?),
            Field::DateTimeMinutes => out.extend(dlt645::encode_datetime(now, false).ok()?),
        }
    }
    (out.len() == id.bytes).then_some(out)
}

/// A Modbus bus polling the simulated SDM630 on `port` every `poll_every` (9600 8N1).
pub fn modbus_bus(
    name: &str,
    port: &str,
    poll_every: Duration,
) -> Result<ModbusBusConfig, modbus::ProfileError> {
    let mut cfg = ModbusBusConfig::new(name, port, 9600);
    cfg.devices.push(ModbusDevice {
        name: "sdm630".into(),
        slave_id: MODBUS_SLAVE_ID,
        profile: Arc::new(modbus::builtin_profile(MODBUS_PROFILE)?),
        poll_every,
    });
    Ok(cfg)
}

/// A DL/T 645 bus polling the simulated meter on `port` with the standard polls, 2400 baud 8N1:
/// the standard's 8E1 cannot be set on a pseudo-terminal (no parity there).
pub fn dlt645_bus(name: &str, port: &str) -> Dlt645BusConfig {
    let mut cfg = Dlt645BusConfig::new(name, port);
    cfg.parity = tokio_serial::Parity::None;
    let mut meter = Dlt645Device::new("dlt645-meter", DLT645_ADDRESS.parse().ok());
    // The simulated meter keeps no load profile (it would refuse, and the poller would rightly
    // warn about a real meter that does): the demo does not ask for it.
    meter
        .polls
        .retain(|p| p.di != crate::sources::meters::dlt645::codec::load_profile::DI_SINCE);
    cfg.devices.push(meter);
    cfg
}
