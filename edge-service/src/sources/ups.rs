//! The appliance's own supply: a UPS HAT (or supercap board) tells, on GPIO inputs, that mains is
//! lost and that its battery is low. Without this an outage is the one event the appliance could
//! never report: the sensor stream dies with the supply it watches.
//!
//! [`UpsMonitor`] is generic over embedded-hal 1.0 `InputPin`s: rppal's pins on the Pi (feature
//! `rpi`), mocks in tests. Inputs are debounced (a contact bouncing or a brown-out glitch must not
//! raise a ticket) and reported as edges.

pub mod config;

use embedded_hal::digital::InputPin;

/// What the UPS says, on a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpsSignal {
    /// Mains has failed: the appliance runs on battery.
    MainsLost,
    /// Mains is back.
    MainsRestored,
    /// The battery is nearly empty: shut down cleanly now.
    BatteryLow,
}

/// Pin polarity: many UPS HATs pull the line low to signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Active {
    /// The signal is asserted when the pin reads high.
    High,
    /// The signal is asserted when the pin reads low.
    Low,
}

#[derive(Debug, Default)]
struct Debounced {
    state: bool,
    count: u8,
}

impl Debounced {
    /// Takes one raw reading; returns the new state when it has held for `n` polls.
    fn update(&mut self, raw: bool, n: u8) -> Option<bool> {
        if raw == self.state {
            self.count = 0;
            return None;
        }
        self.count += 1;
        if self.count >= n {
            self.state = raw;
            self.count = 0;
            Some(raw)
        } else {
            None
        }
    }
}

/// Watches the UPS's "mains lost" and "battery low" inputs.
pub struct UpsMonitor<M, B> {
    mains_lost: M,
    battery_low: B,
    active: Active,
    polls: u8,
    mains: Debounced,
    battery: Debounced,
}

impl<M: InputPin, B: InputPin<Error = M::Error>> UpsMonitor<M, B> {
    /// A monitor that reports a change once it has held for `polls` consecutive polls (poll
    /// every 10 ms: 5 polls = 50 ms debounce).
    pub fn new(mains_lost: M, battery_low: B, active: Active, polls: u8) -> Self {
        UpsMonitor {
            mains_lost,
            battery_low,
            active,
            polls: polls.max(1),
            mains: Debounced::default(),
            battery: Debounced::default(),
        }
    }

    fn asserted(active: Active, high: bool) -> bool {
        match active {
            Active::High => high,
            Active::Low => !high,
        }
    }

    /// Reads both inputs once; returns the signals that changed (mains first).
    pub fn poll(&mut self) -> Result<heapless::Vec<UpsSignal, 2>, M::Error> {
        let mut out = heapless::Vec::new();
        let lost = Self::asserted(self.active, self.mains_lost.is_high()?);
        if let Some(now_lost) = self.mains.update(lost, self.polls) {
            let _ = out.push(if now_lost {
                UpsSignal::MainsLost
            } else {
                UpsSignal::MainsRestored
            });
        }
        let low = Self::asserted(self.active, self.battery_low.is_high()?);
        if let Some(true) = self.battery.update(low, self.polls) {
            let _ = out.push(UpsSignal::BatteryLow);
        }
        Ok(out)
    }
}

/// Polls the UPS inputs every 10 ms on a thread of its own (the pins are blocking
/// embedded-hal pins) and sends each change with its time, until `stop` is set or the receiver
/// is gone. A pin that cannot be read is reported once and retried.
pub fn spawn<M, B>(
    mut monitor: UpsMonitor<M, B>,
    tx: tokio::sync::mpsc::Sender<(UpsSignal, chrono::DateTime<chrono::Utc>)>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()>
where
    M: InputPin + Send + 'static,
    B: InputPin<Error = M::Error> + Send + 'static,
    M::Error: core::fmt::Debug,
{
    std::thread::spawn(move || {
        let mut failing = false;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            match monitor.poll() {
                Ok(signals) => {
                    failing = false;
                    for s in signals {
                        if tx.blocking_send((s, chrono::Utc::now())).is_err() {
                            return;
                        }
                    }
                }
                Err(e) if !failing => {
                    failing = true;
                    tracing::error!(
                        "cannot read the UPS inputs: {e:?}; check the UPS HAT and its GPIO wiring"
                    );
                }
                Err(_) => {}
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal_mock::eh1::digital::{Mock, State, Transaction};

    fn pin(states: &[State]) -> Mock {
        Mock::new(
            &states
                .iter()
                .map(|s| Transaction::get(*s))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn mains_lost_is_reported_once_after_the_debounce_and_restored_likewise() {
        use State::{High, Low};
        // Active low: Low = mains lost. A one-poll glitch, then a real loss, then restoration.
        let mains = [High, Low, High, Low, Low, Low, Low, High, High, High];
        let battery = [High; 10];
        let mut m = UpsMonitor::new(pin(&mains), pin(&battery), Active::Low, 3);
        let mut seen = Vec::new();
        for _ in 0..10 {
            seen.extend(m.poll().unwrap());
        }
        assert_eq!(seen, [UpsSignal::MainsLost, UpsSignal::MainsRestored]);
        m.mains_lost.done();
        m.battery_low.done();
    }

    #[test]
    fn battery_low_asks_for_shutdown() {
        use State::{High, Low};
        let mains = [Low; 4];
        let battery = [High, Low, Low, Low];
        let mut m = UpsMonitor::new(pin(&mains), pin(&battery), Active::Low, 2);
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.extend(m.poll().unwrap());
        }
        assert_eq!(seen, [UpsSignal::MainsLost, UpsSignal::BatteryLow]);
        m.mains_lost.done();
        m.battery_low.done();
    }
}
