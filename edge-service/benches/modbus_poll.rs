//! Modbus polling cycle time: N Eastron SDM630 profiles (1, 4, 8 devices) on one bus at 9600
//! baud against the pymodbus peer, compared with the wire-time limit.
//!
//! The wire-time limit of one poll is what the bytes need on a real line: for each read, the
//! request (8 bytes) and the reply (5 + 2 per register) at 10 bits per byte (8N1), plus the two
//! 3.5-character silences Modbus RTU requires around the reply. Nothing can poll faster.
//!
//! Two runs: "paced", where the relay between the poller's and the peer's pseudo-terminals
//! delivers bytes no faster than 9600 baud would (a real line's timing, so the ratio says what
//! the poller and the meter add to the wire), and "pty", unpaced (a pty moves bytes at once, so
//! the time is all software: the poller's gaps and tokio-modbus, and pymodbus's turnaround).
//!
//! `cargo bench -p kare --bench modbus_poll` (runs `scripts/peers-venv` first if needed).

#[path = "../tests/modbus_support/mod.rs"]
mod modbus_support;

use kare::sources::meters::modbus::{builtin_profile, plan_reads};
use modbus_support::*;
use std::time::Duration;

const BAUD: u32 = 9600;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let profile = builtin_profile("eastron-sdm630").expect("built-in profile");
    let plan = plan_reads(&profile);
    let char_s = 10.0 / f64::from(BAUD);
    let wire_poll_s: f64 = plan
        .iter()
        .map(|b| b.wire_bytes() as f64 * char_s + 2.0 * 3.5 * char_s)
        .sum();
    let bytes_per_poll: usize = plan.iter().map(|b| b.wire_bytes()).sum();
    println!(
        "modbus_poll: profile eastron-sdm630, {} registers in {} reads ({} bytes per poll), {BAUD} baud 8N1",
        profile.registers.len(),
        plan.len(),
        bytes_per_poll
    );
    println!(
        "{:>6} {:>8} {:>14} {:>16} {:>8} {:>16}",
        "line", "devices", "cycle ms", "wire limit ms", "ratio", "per request ms"
    );
    for (line, pace) in [("paced", Some(BAUD)), ("pty", None)] {
        for n in [1u8, 4, 8] {
            let cycle = rt.block_on(measure(n, pace));
            let limit = wire_poll_s * f64::from(n);
            println!(
                "{line:>6} {n:>8} {:>14.1} {:>16.1} {:>8.2} {:>16.2}",
                cycle * 1e3,
                limit * 1e3,
                cycle / limit,
                cycle * 1e3 / (f64::from(n) * plan.len() as f64)
            );
        }
    }
}

/// Mean time for one poll of every device (seconds), with every device always due.
async fn measure(n: u8, pace: Option<u32>) -> f64 {
    let bus = Bus::new(pace);
    let profile = builtin_profile("eastron-sdm630").expect("built-in profile");
    let peers: Vec<PeerDevice> = (1..=n)
        .map(|id| {
            let mut d = PeerDevice::new(id);
            for (k, r) in profile.registers.iter().enumerate() {
                d.value(r, 100.0 + k as f64 + f64::from(id));
            }
            d
        })
        .collect();
    let peer = Peer::start(&bus, &peers);
    let devices = (1..=n)
        .map(|id| {
            // A 1 ms period: every device is due whenever the bus is free, so the time between
            // successive polls is the time one poll takes.
            device(
                &format!("m{id}"),
                id,
                profile.clone(),
                Duration::from_millis(1),
            )
        })
        .collect();
    let mut cfg = bus_config(&bus.port, devices);
    cfg.baud = BAUD;
    cfg.timeout = Duration::from_secs(2);
    let mut run = Running::start(cfg);
    // Warm up one round (pymodbus's first replies are slow), then time enough polls to cover
    // several rounds.
    let warm = usize::from(n);
    let measured = 8usize.max(3 * usize::from(n));
    run.inbox
        .until(Duration::from_secs(120), "the polls to time", |ib| {
            ib.polls.len() > warm + measured
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\npeer:\n{}", peer.log()));
    let s = &run.inbox.stats;
    assert_eq!(
        (s.timeouts, s.bad_frames, s.error_replies),
        (0, 0, 0),
        "a clean bus: {s:?}"
    );
    let times: Vec<_> = run.inbox.polls[warm..].iter().map(|(_, t)| *t).collect();
    let span = (*times.last().unwrap() - times[0]).to_std().unwrap();
    let per_poll = span.as_secs_f64() / (times.len() - 1) as f64;
    run.stop().await;
    per_poll * f64::from(n)
}
