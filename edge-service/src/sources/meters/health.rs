//! Whether a meter on a bus answers: the online/offline bookkeeping both meter buses share.
//!
//! A meter is declared offline after `offline_after` failed polls in a row (a single lost reply
//! on RS-485 is normal), or at once when the bus's port is gone, and online again at its first
//! good answer; each change is one [`MeterEvent`], with the reason and the last good answer.

use crate::sources::meters::readings::{MeterEvent, MeterMessage};
use crate::sources::outbox::Outbox;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// One meter's standing.
#[derive(Debug)]
pub struct Health {
    source: Arc<str>,
    device: Arc<str>,
    /// `None` until the meter first answers or is first declared offline.
    online: Option<bool>,
    failures: u32,
    last_good: DateTime<Utc>,
}

impl Health {
    /// A meter of bus `source` not heard from yet. `last_good` is what an offline event
    /// names as "since" until the meter answers (the time polling started).
    pub fn new(source: Arc<str>, device: Arc<str>, last_good: DateTime<Utc>) -> Health {
        Health {
            source,
            device,
            online: None,
            failures: 0,
            last_good,
        }
    }

    /// Takes the meter as answering until told otherwise: its first answer is then no news.
    pub fn presumed_online(mut self) -> Health {
        self.online = Some(true);
        self
    }

    /// The device's name.
    pub fn device(&self) -> &Arc<str> {
        &self.device
    }

    /// Whether the meter was declared offline (and has not answered since).
    pub fn is_offline(&self) -> bool {
        self.online == Some(false)
    }

    /// Failed polls in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The meter answered at `at`.
    pub fn answered(&mut self, at: DateTime<Utc>, out: &mut Outbox<MeterMessage>) {
        self.failures = 0;
        self.last_good = at;
        if self.online != Some(true) {
            tracing::info!(source = %self.source, device = %self.device, "meter online");
            self.online = Some(true);
            out.send(MeterMessage::Event(MeterEvent::Online {
                source: self.source.clone(),
                device: self.device.clone(),
                at,
            }));
        }
    }

    /// A poll failed (`reason`); offline once `offline_after` have in a row.
    pub fn failed(&mut self, reason: String, offline_after: u32, out: &mut Outbox<MeterMessage>) {
        self.failures = self.failures.saturating_add(1);
        if self.failures >= offline_after.max(1) {
            self.offline(reason, out);
        } else {
            tracing::debug!(source = %self.source, device = %self.device,
                failures = self.failures, "{reason}");
        }
    }

    /// The meter cannot be reached at all (the port is gone, or its configuration cannot work):
    /// offline at once.
    pub fn offline(&mut self, reason: String, out: &mut Outbox<MeterMessage>) {
        self.failures = self.failures.max(1);
        if self.online == Some(false) {
            return;
        }
        tracing::warn!(source = %self.source, device = %self.device, "meter offline: {reason}");
        self.online = Some(false);
        out.send(MeterMessage::Event(MeterEvent::Offline {
            source: self.source.clone(),
            device: self.device.clone(),
            since: self.last_good,
            reason,
        }));
    }
}

/// Every meter of a bus is unreachable while its port is (`reason` says why).
pub fn all_offline<'a>(
    meters: impl IntoIterator<Item = &'a mut Health>,
    reason: &str,
    out: &mut Outbox<MeterMessage>,
) {
    for m in meters {
        m.offline(reason.to_string(), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    fn events(rx: &mut mpsc::Receiver<MeterMessage>) -> Vec<String> {
        std::iter::from_fn(|| rx.try_recv().ok())
            .map(|m| match m {
                MeterMessage::Event(MeterEvent::Offline { reason, .. }) => format!("off: {reason}"),
                MeterMessage::Event(MeterEvent::Online { .. }) => "on".into(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn offline_after_so_many_failures_in_a_row_and_online_at_the_next_answer() {
        let (tx, mut rx) = mpsc::channel(16);
        let mut out = Outbox::new("bus", tx);
        let mut h = Health::new("bus".into(), "m".into(), Utc::now());
        h.answered(Utc::now(), &mut out);
        h.failed("timeout".into(), 3, &mut out);
        h.failed("timeout".into(), 3, &mut out);
        assert!(!h.is_offline());
        h.failed("timeout".into(), 3, &mut out);
        h.failed("timeout".into(), 3, &mut out);
        assert!(h.is_offline());
        h.answered(Utc::now(), &mut out);
        assert_eq!(events(&mut rx), ["on", "off: timeout", "on"]);
    }

    #[test]
    fn a_meter_presumed_online_says_nothing_until_it_fails() {
        let (tx, mut rx) = mpsc::channel(16);
        let mut out = Outbox::new("bus", tx);
        let mut h = Health::new("bus".into(), "m".into(), Utc::now()).presumed_online();
        h.answered(Utc::now(), &mut out);
        h.offline("port gone".into(), &mut out);
        h.offline("port gone".into(), &mut out);
        assert_eq!(events(&mut rx), ["off: port gone"]);
    }
}
