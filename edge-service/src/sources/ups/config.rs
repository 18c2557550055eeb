//! `[ups]`: the UPS HAT's "mains lost" and "battery low" outputs on the Pi's GPIO (BCM numbers),
//! checked and started here, beside the monitor.
//!
//! ```toml
//! [ups]
//! mains_lost_gpio = 5
//! battery_low_gpio = 6
//! active = "low"            # the line is pulled low to signal, as on most HATs
//! ```

use crate::config::{check, ConfigProblem};
use crate::pipeline::service::UpsTask;
use serde::Deserialize;

/// `[ups]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UpsEntry {
    /// BCM pin that signals mains lost.
    pub mains_lost_gpio: u8,
    /// BCM pin that signals battery low.
    pub battery_low_gpio: u8,
    /// `low` (the line is pulled low to signal, as on most HATs) or `high`.
    #[serde(default = "active_low")]
    pub active: String,
}

fn active_low() -> String {
    "low".into()
}

impl UpsEntry {
    /// Checks the section on its own; keys are relative to it.
    /// Ranges (documented in `systemd/kare.toml`): GPIOs 0 to 27 (the BCM numbers on the Pi's
    /// 40-pin header), different from each other.
    pub fn validate(&self) -> Result<(), ConfigProblem> {
        if !matches!(self.active.as_str(), "low" | "high") {
            return Err(ConfigProblem::new(
                "active",
                "must be low or high, e.g. `active = \"low\"`",
            ));
        }
        check::within(
            "mains_lost_gpio",
            f64::from(self.mains_lost_gpio),
            0.0,
            27.0,
            "(BCM GPIO number)",
            "17",
        )?;
        check::within(
            "battery_low_gpio",
            f64::from(self.battery_low_gpio),
            0.0,
            27.0,
            "(BCM GPIO number)",
            "27",
        )?;
        if self.mains_lost_gpio == self.battery_low_gpio {
            return Err(ConfigProblem::new(
                "battery_low_gpio",
                "must differ from mains_lost_gpio",
            ));
        }
        Ok(())
    }

    /// The inputs as they read now, `(mains_lost, battery_low)` after polarity, for
    /// `kare commission`: proves the pins are readable and shows the crew the present state.
    pub fn read_now(&self) -> anyhow::Result<(bool, bool)> {
        #[cfg(feature = "rpi")]
        {
            let gpio = rppal::gpio::Gpio::new().map_err(|e| {
                anyhow::anyhow!("cannot open the GPIO: {e}; is this a Raspberry Pi, and is the user in the gpio group?")
            })?;
            let read = |n: u8| -> anyhow::Result<bool> {
                let pin = gpio
                    .get(n)
                    .map_err(|e| anyhow::anyhow!("GPIO {n}: {e}"))?
                    .into_input_pullup();
                Ok(pin.is_high())
            };
            let asserted = |high: bool| if self.active == "high" { high } else { !high };
            Ok((
                asserted(read(self.mains_lost_gpio)?),
                asserted(read(self.battery_low_gpio)?),
            ))
        }
        #[cfg(not(feature = "rpi"))]
        {
            anyhow::bail!(
                "this kare was built without GPIO support: build it with `--features rpi`"
            )
        }
    }

    /// The UPS watch. On a build without GPIO support a configured `[ups]` is an error, not
    /// silently ignored: an outage is the one event the appliance must not miss.
    pub fn task(&self) -> anyhow::Result<UpsTask> {
        #[cfg(feature = "rpi")]
        {
            use super::{spawn, Active, UpsMonitor};
            let gpio = rppal::gpio::Gpio::new().map_err(|e| {
                anyhow::anyhow!("[ups]: cannot open the GPIO: {e}; is this a Raspberry Pi, and is the user in the gpio group?")
            })?;
            let pin = |n: u8| -> anyhow::Result<rppal::gpio::InputPin> {
                Ok(gpio
                    .get(n)
                    .map_err(|e| anyhow::anyhow!("[ups]: GPIO {n}: {e}"))?
                    .into_input_pullup())
            };
            let active = if self.active == "high" {
                Active::High
            } else {
                Active::Low
            };
            let monitor = UpsMonitor::new(
                pin(self.mains_lost_gpio)?,
                pin(self.battery_low_gpio)?,
                active,
                5,
            );
            Ok(Box::new(move |tx, shutdown| {
                Box::pin(async move {
                    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
                    let handle = spawn(monitor, tx, stop.clone());
                    shutdown.cancelled().await;
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    let _ = tokio::task::spawn_blocking(move || handle.join()).await;
                })
            }))
        }
        #[cfg(not(feature = "rpi"))]
        {
            anyhow::bail!(
                "[ups] is configured but this kare was built without GPIO support: build it with `--features rpi`"
            )
        }
    }
}
