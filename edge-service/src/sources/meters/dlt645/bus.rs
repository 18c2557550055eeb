//! One DL/T 645 bus: which meter is asked what and when, and whether each answers.
//!
//! Meters take turns round-robin: a turn runs the polls that are due on one meter, and a meter
//! that fails is not asked again before its back-off (which doubles, up to `max_backoff`), so a
//! dead meter costs the others at most one request's retries per back-off period. After
//! `offline_after` failed requests in a row a meter is reported offline (with the reason), and
//! online again at its next good answer ([`Health`]). A meter refusing one identifier is alive:
//! the refusal is logged once, not counted as a failure. The time is broadcast when a device
//! asks for it. What each reply becomes is `reads.rs`'s; the line is `client.rs`'s.

use super::client::{Client, TxError};
use super::codec::{
    self as dlt645, broadcast_time, decode_address_reply, function, read_address, Address, Di,
    Frame, Identifier, Record,
};
use super::Dlt645BusConfig;
use crate::sources::meters::health::{self, Health};
use crate::sources::meters::readings::MeterMessage;
use crate::sources::outbox::Outbox;
use chrono::{DateTime, NaiveDateTime, TimeZone, Timelike, Utc};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Why [`Bus::serve`] returned.
pub(super) enum Stop {
    Shutdown,
    PortLost(String),
}

pub(super) struct PollState {
    pub(super) id: Identifier,
    pub(super) every: Duration,
    pub(super) due: Instant,
}

pub(super) struct DeviceState {
    pub(super) health: Health,
    address: Option<Address>,
    /// Why the device is never polled (a configuration that cannot work).
    disabled: Option<String>,
    pub(super) polls: Vec<PollState>,
    retry_at: Instant,
    backoff: Duration,
    min_backoff: Duration,
    /// Identifiers whose refusal was already logged at warn level.
    refused: HashSet<Di>,
    pub(super) last_power_down: Option<(NaiveDateTime, Option<NaiveDateTime>)>,
    /// Meter time of the next load-profile record wanted.
    pub(super) profile_from: Option<NaiveDateTime>,
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

pub(super) struct Bus {
    pub(super) cfg: Dlt645BusConfig,
    pub(super) name: Arc<str>,
    pub(super) devices: Vec<DeviceState>,
    pub(super) outbox: Outbox<MeterMessage>,
    pub(super) client: Client,
    next_time_set: Option<Instant>,
}

impl Bus {
    /// Every meter is unreachable while the port is.
    pub(super) fn all_offline(&mut self, reason: &str) {
        let meters = self.devices.iter_mut().map(|d| &mut d.health);
        health::all_offline(meters, reason, &mut self.outbox);
    }

    pub(super) fn new(cfg: Dlt645BusConfig, tx: mpsc::Sender<MeterMessage>) -> Bus {
        let name: Arc<str> = cfg.name.as_str().into();
        let mut outbox = Outbox::with_reading_bound(name.clone(), tx, cfg.max_queued_readings);
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
            // Presumed online: a meter that answers from the start is no news.
            let mut health = Health::new(name.clone(), dev_name, cfg.clock.now()).presumed_online();
            if let Some(reason) = &disabled {
                health.offline(reason.clone(), &mut outbox);
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
                health,
                address: d.address,
                disabled,
                polls,
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
            client: Client::new(name.clone(), &cfg),
            name,
            devices,
            outbox,
            next_time_set,
            cfg,
        }
    }

    /// Meter local time to UTC.
    pub(super) fn to_utc(&self, t: NaiveDateTime) -> DateTime<Utc> {
        match self.cfg.meter_utc_offset.from_local_datetime(&t).single() {
            Some(local) => local.with_timezone(&Utc),
            // A fixed offset always maps one to one; keep the value rather than lose it.
            None => Utc.from_utc_datetime(&t),
        }
    }

    pub(super) fn meter_now(&self) -> NaiveDateTime {
        self.cfg
            .clock
            .now()
            .with_timezone(&self.cfg.meter_utc_offset)
            .naive_local()
    }

    fn succeeded(&mut self, idx: usize) {
        let d = &mut self.devices[idx];
        d.backoff = d.min_backoff;
        d.retry_at = Instant::now();
        d.health.answered(self.cfg.clock.now(), &mut self.outbox);
    }

    pub(super) fn failed(&mut self, idx: usize, reason: String) {
        let max = self.cfg.max_backoff.max(Duration::from_millis(100));
        let d = &mut self.devices[idx];
        d.retry_at = Instant::now() + d.backoff;
        d.backoff = (d.backoff * 2).min(max);
        d.health
            .failed(reason, self.cfg.offline_after, &mut self.outbox);
    }

    pub(super) async fn serve<P>(&mut self, port: &mut P, shutdown: &CancellationToken) -> Stop
    where
        P: AsyncRead + AsyncWrite + Unpin,
    {
        self.client.reset();
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
                self.client.stats.last_cycle_ms = started.elapsed().as_secs_f64() * 1000.0;
                self.client.stats.readings_dropped = self.outbox.dropped_readings();
                let stats = self.client.stats.clone();
                self.outbox
                    .send(MeterMessage::Stats(self.name.clone(), stats));
            }
            self.outbox.flush();
            let wake = self
                .devices
                .iter()
                .filter_map(DeviceState::next_due)
                .chain(self.next_time_set)
                .min()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            if self.outbox.idle_until(wake, shutdown).await.stops() {
                return Stop::Shutdown;
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
        self.client.broadcast(port, &frame).await?;
        tracing::info!(source = %self.name, time = %t, "broadcast time set");
        Ok(())
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
                match self.client.transact(port, &read_address(), &accept).await {
                    Ok(a) => {
                        let d = &mut self.devices[idx];
                        tracing::info!(source = %self.name, device = %d.health.device(), address = %a, "meter address discovered");
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
                        tracing::warn!(source = %self.name, device = %d.health.device(), di = %id.di, name = %id.name, "meter refuses: {flags}");
                    } else {
                        tracing::debug!(source = %self.name, device = %d.health.device(), di = %id.di, "meter refuses: {flags}");
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
        if !readings.is_empty() {
            self.outbox.send(MeterMessage::Readings(readings));
        }
        if !interval.is_empty() {
            self.outbox.send(MeterMessage::Interval(interval));
        }
        Ok(())
    }
}
