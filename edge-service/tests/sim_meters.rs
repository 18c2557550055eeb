//! The demo's simulated meters (`kare::sim::meters`) polled by the real pollers over
//! pseudo-terminals: each answers with the supply's voltage, and follows it into an outage.

use kare::sim::meters::{self, Supply};
use kare::sources::meters::readings::{MeterMessage, Quantity};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Generous for a loaded machine: both pollers ask at once when they start.
const DEADLINE: Duration = Duration::from_secs(10);

/// Waits for a poll of `source` whose phase-A voltage is within 0.1 V of `volts`.
async fn phase_a(rx: &mut mpsc::Receiver<MeterMessage>, source: &str, volts: f64, until: Instant) {
    loop {
        let msg = tokio::time::timeout_at(until, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no {source} reading of {volts} V within the deadline"))
            .expect("pollers stopped");
        let MeterMessage::Readings(readings) = msg else {
            continue;
        };
        let hit = readings.iter().any(|r| {
            &*r.source == source
                && r.quantity == Quantity::VoltageA
                && (r.value - volts).abs() < 0.1
        });
        if hit {
            return;
        }
    }
}

#[tokio::test]
async fn both_simulated_meters_answer_the_real_pollers_and_follow_the_supply() {
    let supply = Supply::new(230.0, 50.0);
    supply.set_percent(0, 97.0); // 223.1 V: exactly representable in DL/T 645's XXX.X
    let modbus_meter = meters::start_modbus_meter(supply.clone()).unwrap();
    let dlt645_meter = meters::start_dlt645_meter(supply.clone()).unwrap();

    let (modbus_tx, mut modbus_rx) = mpsc::channel(256);
    let (dlt645_tx, mut dlt645_rx) = mpsc::channel(256);
    let stop = CancellationToken::new();
    let shutdown = stop.clone();
    let modbus_cfg = meters::modbus_bus(
        "sim-modbus",
        &modbus_meter.port.to_string_lossy(),
        Duration::from_millis(200),
    )
    .unwrap();
    let mut dlt645_cfg = meters::dlt645_bus("sim-dlt645", &dlt645_meter.port.to_string_lossy());
    // Standard polls ask for voltages every 5 s; the outage step wants them sooner.
    for p in &mut dlt645_cfg.devices[0].polls {
        if p.every == Duration::from_secs(5) {
            p.every = Duration::from_millis(200);
        }
    }
    let modbus = tokio::spawn(kare::sources::meters::modbus::run(
        modbus_cfg,
        modbus_tx,
        shutdown.clone(),
    ));
    let dlt645 = tokio::spawn(kare::sources::meters::dlt645::run(
        dlt645_cfg, dlt645_tx, shutdown,
    ));

    let until = Instant::now() + DEADLINE;
    phase_a(&mut modbus_rx, "sim-modbus", 223.1, until).await;
    phase_a(&mut dlt645_rx, "sim-dlt645", 223.1, until).await;

    // An outage on the supply reads ~0 V on both.
    for phase in 0..3 {
        supply.set_percent(phase, 0.0);
    }
    let until = Instant::now() + DEADLINE;
    phase_a(&mut modbus_rx, "sim-modbus", 0.0, until).await;
    phase_a(&mut dlt645_rx, "sim-dlt645", 0.0, until).await;

    stop.cancel();
    modbus.await.unwrap().unwrap();
    dlt645.await.unwrap();
}
