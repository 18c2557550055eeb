//! The appliance's health report (uptime, supply, sources heard, buffers, clock, UPS, the
//! store: writable, why not, what waits in memory), written to every sink at a fixed interval.

use crate::actions::tickets::TicketBook;
use crate::pipeline::status::{MeterBusStatus, SourceStatus};
use crate::sinks::Sink;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The appliance's own health, as the service knows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Health {
    /// When.
    pub at: DateTime<Utc>,
    /// Seconds since the service started.
    pub uptime_s: f64,
    /// Whether the supply is there now (`None`: no source can tell).
    pub supply_ok: Option<bool>,
    /// Whether a repair ticket (outage) is open.
    pub outage_open: bool,
    /// Sources configured.
    pub sources: u32,
    /// Sources heard now.
    pub sources_connected: u32,
    /// Readings or events queued inside the service (its buffers' depth).
    pub buffer_depth: u64,
    /// Serial errors since start (CRC, framing, timeouts), all ports.
    pub serial_errors: u64,
    /// Whether the clock is synchronised (NTP/GPS); `None` when unknown.
    pub clock_synced: Option<bool>,
    /// Clock offset to the reference, milliseconds, when known.
    pub clock_offset_ms: Option<f64>,
    /// Whether the appliance runs on its UPS.
    pub on_battery: Option<bool>,
    /// kare's version.
    pub version: String,
    /// The store: writable or not, the last error and since when, free space (`None`: no
    /// store).
    pub store: Option<crate::store::StoreHealth>,
    /// Events and ticket changes waiting in memory for the store.
    pub pending: crate::pipeline::pending::PendingStats,
}

/// What the health report is made of.
pub(crate) struct HealthSources {
    pub(crate) started: DateTime<Utc>,
    pub(crate) status: Arc<Mutex<BTreeMap<String, SourceStatus>>>,
    pub(crate) meters: Arc<Mutex<BTreeMap<String, MeterBusStatus>>>,
    pub(crate) tickets: Arc<TicketBook>,
    pub(crate) sinks: crate::sinks::Sinks,
    pub(crate) on_battery: Arc<Mutex<Option<bool>>>,
    pub(crate) store: Option<crate::store::StoreHandle>,
    pub(crate) pending: Arc<Mutex<crate::pipeline::pending::PendingStats>>,
}

impl HealthSources {
    fn health(&self, at: DateTime<Utc>) -> Health {
        let (sources, connected, stream_errors) = {
            let st = self.status.lock().unwrap_or_else(|p| p.into_inner());
            (
                st.len() as u32,
                st.values().filter(|s| s.connected).count() as u32,
                st.values()
                    .map(|s| s.stats.crc_errors + s.stats.seq_gaps)
                    .sum::<u64>(),
            )
        };
        let (devices, online, bus_errors) = {
            let m = self.meters.lock().unwrap_or_else(|p| p.into_inner());
            (
                m.values().map(|b| b.devices.len() as u32).sum::<u32>(),
                m.values()
                    .flat_map(|b| b.devices.values())
                    .filter(|d| d.online)
                    .count() as u32,
                m.values()
                    .map(|b| b.stats.timeouts + b.stats.bad_frames)
                    .sum::<u64>(),
            )
        };
        let outage_open = self.tickets.all().iter().any(|t| {
            t.op.kind == crate::actions::rules::TicketKind::Repair
                && t.op.state == crate::actions::rules::TicketState::Open
        });
        let heard = connected + online;
        let buffer_depth = self.sinks.buffered();
        let clock = crate::pipeline::clock::kernel_sync();
        Health {
            at,
            uptime_s: (at - self.started).num_milliseconds() as f64 / 1000.0,
            // Only a source that is heard can tell whether the supply is there.
            supply_ok: (heard > 0).then_some(!outage_open),
            outage_open,
            sources: sources + devices,
            sources_connected: heard,
            buffer_depth,
            serial_errors: stream_errors + bus_errors,
            clock_synced: clock.map(|c| c.synced),
            clock_offset_ms: clock.and_then(|c| c.offset_ms),
            on_battery: *self.on_battery.lock().unwrap_or_else(|p| p.into_inner()),
            version: env!("CARGO_PKG_VERSION").to_string(),
            store: self.store.as_ref().map(|s| s.health()),
            pending: self
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}

/// Writes the appliance's health every `every`, from the start, and once more on the way out.
pub(crate) async fn report_health(
    from: HealthSources,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !shutdown.is_cancelled() {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => from.sinks.health(&from.health(Utc::now())),
        }
    }
    from.sinks.health(&from.health(Utc::now()));
}
