//! systemd's service protocol (`Type=notify`, `WatchdogSec=`): `READY=1` once the store is open,
//! the sources started and the web server listening; `WATCHDOG=1` every half of `WATCHDOG_USEC`
//! **only while the pipeline is alive** (every [`Heartbeat`] stamped within the watchdog period:
//! the consumer loop and the store writer); `STOPPING=1` when a stop begins.
//!
//! Without `$NOTIFY_SOCKET` (kare started by hand, or under another supervisor) every call is a
//! no-op. It may never ping for a pipeline that has stalled: a stuck consumer or store writer
//! must end in systemd's restart, not in an appliance that answers `/api/v1/status` while
//! nothing is watched.

use crate::pipeline::heartbeat::Heartbeat;
use sd_notify::NotifyState;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The shortest stall that counts: below it a busy 2-core Pi could miss a 250 ms beat.
const MIN_STALL: Duration = Duration::from_secs(1);

/// The watchdog's pinger (none without `WATCHDOG_USEC`).
pub struct Watchdog {
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The watchdog period systemd asked for: `WATCHDOG_USEC`, if `WATCHDOG_PID` (when set) is this
/// process.
fn period() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.trim().parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

fn send(state: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(false, state) {
        tracing::warn!("cannot notify systemd ($NOTIFY_SOCKET): {e}");
    }
}

impl Watchdog {
    /// Says `READY=1` and starts pinging while every heartbeat is fresh.
    pub fn ready(heartbeats: Vec<Arc<Heartbeat>>) -> Watchdog {
        send(&[NotifyState::Ready]);
        let stop = CancellationToken::new();
        let task = period().map(|period| {
            let stop = stop.clone();
            let stall = period.max(MIN_STALL);
            tracing::info!(
                "systemd watchdog: {} ms; pinging while the consumer and the store writer are alive",
                period.as_millis()
            );
            tokio::spawn(async move {
                let mut every = tokio::time::interval(period / 2);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut reported = false;
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = every.tick() => {}
                    }
                    match heartbeats.iter().find(|h| h.age() > stall) {
                        None => {
                            reported = false;
                            send(&[NotifyState::Watchdog]);
                        }
                        Some(h) if !reported => {
                            reported = true;
                            tracing::error!(
                                "the {} has not progressed for {} ms: no watchdog ping (systemd restarts kare)",
                                h.name(),
                                h.age().as_millis()
                            );
                        }
                        Some(_) => {}
                    }
                }
            })
        });
        Watchdog { stop, task }
    }

    /// Says `STOPPING=1` and stops pinging (a stop may take longer than the watchdog period:
    /// systemd then waits for `TimeoutStopSec=`, not the watchdog).
    pub async fn stopping(mut self) {
        send(&[NotifyState::Stopping]);
        self.stop.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Watchdog {
    /// An error return stops the pings too.
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
