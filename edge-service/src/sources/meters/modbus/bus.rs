//! One RS-485 bus of Modbus RTU meters: the task that polls them.
//!
//! One port, one protocol, many devices. Each device is polled at its own period; when several
//! are due the order rotates (round robin) so none is always last. A request that times out or
//! comes back garbled is retried; a device that fails `offline_after` polls in a row is reported
//! [`MeterEvent::Offline`] (with the reason), then polled once per back-off period (doubling up
//! to `max_backoff`) with no retries, so a dead meter costs at most one timeout per back-off and
//! never starves the others; its first good answer reports [`MeterEvent::Online`]. The port is
//! opened through a [`Link`]: reopened with back-off when it cannot be opened or disappears.
//!
//! The service is never waited on: messages go through an [`Outbox`] (events kept, readings
//! dropped oldest first beyond `max_queued_readings`, counters latest only).
//!
//! [`MeterEvent::Offline`]: crate::sources::meters::readings::MeterEvent::Offline
//! [`MeterEvent::Online`]: crate::sources::meters::readings::MeterEvent::Online

use super::client::{open_port, Client, Line, RequestError};
use super::plan::{plan_reads, Batch};
use super::{ModbusBusConfig, ModbusDevice, ModbusError, Transport};
use crate::sources::link::{Connect, Link, Medium};
use crate::sources::meters::health::{all_offline, Health};
use crate::sources::meters::readings::{BusStats, MeterMessage, MeterReading};
use crate::sources::outbox::{Outbox, DRAIN_AT_SHUTDOWN};
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Polls every device of the bus until `shutdown` is cancelled (or the
/// receiver of `tx` goes away). Refuses only an invalid configuration; a missing port, dead
/// meters and bad replies are handled and reported, never returned.
pub async fn run(
    cfg: ModbusBusConfig,
    tx: mpsc::Sender<MeterMessage>,
    shutdown: CancellationToken,
) -> Result<(), ModbusError> {
    cfg.validate()?;
    let mut bus = Bus::new(&cfg, tx);
    let line = cfg.clone();
    let (endpoint, medium) = match &cfg.transport {
        Transport::Rtu => (cfg.port.clone(), Medium::SERIAL),
        Transport::Tcp(a) | Transport::RtuOverTcp(a) => (a.clone(), Medium::TCP),
    };
    let mut link = Link::new(
        bus.name.clone(),
        endpoint,
        Connect(move || open_line(line.clone())),
    )
    .over(medium);
    while let Some(port) = link
        .open(&mut bus.out, &shutdown, |why, out| {
            all_offline(bus.devices.iter_mut().map(|d| &mut d.health), why, out)
        })
        .await
    {
        bus.port_opened(&cfg);
        let mut client = Client::new(port, &cfg);
        match bus.poll_until_port_lost(&cfg, &mut client, &shutdown).await {
            LoopEnd::Shutdown => break,
            LoopEnd::PortLost(e) => link.lost(&mut bus.out, e, |why, out| {
                all_offline(bus.devices.iter_mut().map(|d| &mut d.health), why, out)
            }),
        }
    }
    bus.out.drain(DRAIN_AT_SHUTDOWN).await;
    Ok(())
}

/// A connection attempt that has not succeeded in this long has failed (the kernel would keep
/// trying for minutes).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the bus's line: its serial port, or a TCP connection.
pub(crate) async fn open_line(cfg: ModbusBusConfig) -> io::Result<Box<dyn Line>> {
    match &cfg.transport {
        Transport::Rtu => Ok(Box::new(open_port(&cfg).map_err(io::Error::from)?)),
        Transport::Tcp(a) | Transport::RtuOverTcp(a) => {
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(a))
                .await
                .map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no answer within {CONNECT_TIMEOUT:?}"),
                    )
                })??;
            // Requests are a few bytes each: send them at once, not after Nagle's delay.
            stream.set_nodelay(true)?;
            Ok(Box::new(stream))
        }
    }
}

enum LoopEnd {
    Shutdown,
    PortLost(io::Error),
}

/// The bus task's state between port openings.
struct Bus {
    name: Arc<str>,
    devices: Vec<DeviceState>,
    stats: BusStats,
    out: Outbox<MeterMessage>,
    /// Where the next round-robin cycle starts.
    rr: usize,
}

impl Bus {
    fn new(cfg: &ModbusBusConfig, tx: mpsc::Sender<MeterMessage>) -> Bus {
        let name: Arc<str> = cfg.name.as_str().into();
        let started = cfg.clock.now();
        let now = Instant::now();
        let devices = cfg
            .devices
            .iter()
            .map(|d| {
                let plan = plan_reads(&d.profile);
                DeviceState {
                    health: Health::new(name.clone(), d.name.as_str().into(), started),
                    warned_exception: vec![false; plan.len()],
                    plan,
                    next_due: now,
                    backoff: d.poll_every,
                }
            })
            .collect();
        Bus {
            out: Outbox::with_reading_bound(name.clone(), tx, cfg.max_queued_readings),
            name,
            devices,
            stats: BusStats::default(),
            rr: 0,
        }
    }

    /// Devices that were only offline because the port was gone are asked again at once.
    fn port_opened(&mut self, cfg: &ModbusBusConfig) {
        let now = Instant::now();
        for (st, d) in self.devices.iter_mut().zip(&cfg.devices) {
            if st.health.is_offline() {
                st.next_due = now;
                st.backoff = d.poll_every;
            }
        }
    }

    async fn poll_until_port_lost(
        &mut self,
        cfg: &ModbusBusConfig,
        client: &mut Client,
        shutdown: &CancellationToken,
    ) -> LoopEnd {
        let n = self.devices.len();
        loop {
            if shutdown.is_cancelled() || self.out.is_closed() {
                return LoopEnd::Shutdown;
            }
            let now = Instant::now();
            let due: Vec<usize> = (0..n)
                .map(|k| (self.rr + k) % n)
                .filter(|&i| self.devices[i].next_due <= now)
                .collect();
            if due.is_empty() {
                let next = self
                    .devices
                    .iter()
                    .map(|d| d.next_due)
                    .min()
                    .unwrap_or(now + Duration::from_secs(1));
                if self.out.idle_until(next, shutdown).await.stops() {
                    return LoopEnd::Shutdown;
                }
                continue;
            }
            self.rr = (self.rr + 1) % n;
            let cycle = Instant::now();
            for i in due {
                let (dev, st) = (&cfg.devices[i], &mut self.devices[i]);
                let result = tokio::select! {
                    r = poll_device(client, dev, st, &mut self.stats, cfg.retries, &self.name, &cfg.clock) => r,
                    _ = shutdown.cancelled() => return LoopEnd::Shutdown,
                };
                let now = Instant::now();
                match result {
                    PollResult::PortLost(e) => return LoopEnd::PortLost(e),
                    PollResult::Done { readings, failure } => {
                        if !readings.is_empty() {
                            self.out.send(MeterMessage::Readings(readings));
                        }
                        match failure {
                            None => st.health.answered(cfg.clock.now(), &mut self.out),
                            Some(reason) => {
                                st.health.failed(reason, cfg.offline_after, &mut self.out)
                            }
                        }
                        st.schedule(dev.poll_every, cfg.max_backoff, now);
                    }
                }
            }
            self.stats.last_cycle_ms = cycle.elapsed().as_secs_f64() * 1000.0;
            self.stats.readings_dropped = self.out.dropped_readings();
            self.out
                .send(MeterMessage::Stats(self.name.clone(), self.stats.clone()));
        }
    }
}

/// What the poller knows of one device.
struct DeviceState {
    health: Health,
    plan: Vec<Batch>,
    next_due: Instant,
    /// Wait before the next poll while offline.
    backoff: Duration,
    /// One warning per read that gets an exception reply, not one per poll.
    warned_exception: Vec<bool>,
}

impl DeviceState {
    /// Next poll: on the period's grid while online (skipping missed slots rather than
    /// bursting), after a doubling back-off while offline.
    fn schedule(&mut self, period: Duration, max_backoff: Duration, now: Instant) {
        if self.health.is_offline() {
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
    client: &mut Client,
    dev: &ModbusDevice,
    st: &mut DeviceState,
    stats: &mut BusStats,
    retries: u32,
    bus: &Arc<str>,
    clock: &crate::sources::SourceClock,
) -> PollResult {
    let attempts = if st.health.is_offline() {
        1
    } else {
        retries.saturating_add(1)
    };
    let mut readings = Vec::new();
    for (bi, batch) in st.plan.iter().enumerate() {
        let mut last_error = None;
        for _ in 0..attempts {
            stats.requests += 1;
            match client.read(dev.slave_id, batch).await {
                Ok(words) => {
                    stats.replies += 1;
                    let at = clock.now();
                    readings.extend(batch.decode(&dev.profile, &words).into_iter().map(
                        |(quantity, value)| MeterReading {
                            source: bus.clone(),
                            device: st.health.device().clone(),
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
                            source = %bus, device = %st.health.device(), profile = %dev.profile.name,
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn offline_devices_back_off_and_online_ones_keep_their_grid() {
        let now = Instant::now();
        let (tx, _rx) = mpsc::channel(8);
        let mut out = Outbox::new("b", tx);
        let mut st = DeviceState {
            health: Health::new("b".into(), "m".into(), Utc::now()),
            plan: vec![],
            next_due: now,
            backoff: Duration::from_secs(1),
            warned_exception: vec![],
        };
        st.health.answered(Utc::now(), &mut out);
        let period = Duration::from_secs(1);
        st.schedule(period, Duration::from_secs(8), now);
        assert_eq!(st.next_due, now + period);
        st.health.offline("gone".into(), &mut out);
        let mut waits = vec![];
        for _ in 0..6 {
            st.schedule(period, Duration::from_secs(8), now);
            waits.push((st.next_due - now).as_secs());
        }
        assert_eq!(waits, vec![1, 2, 4, 8, 8, 8]);
    }
}
