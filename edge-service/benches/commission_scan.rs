//! `kare commission`'s Modbus RTU scan of a dead bus: every address at every baud with nobody
//! answering, measured against the bound the scan promises (`scan_bound`): per address and
//! baud, the timeout plus the turnaround (a request's time on the wire and the 3.5-character
//! silence), for one try.
//!
//! The bus is a pseudo-terminal pair with the `modbus_support` relay and no meter behind it, so
//! every probe times out: the worst case of a scan. The ratio says how much of the bound the
//! scan uses; below 1 because a request after a silent timeout need not wait the silence again
//! (the line has been quiet for the whole timeout).
//!
//! `cargo bench -p kare --bench commission_scan`

#[path = "../tests/modbus_support/mod.rs"]
mod modbus_support;

use kare::commission::discover::{scan_bound, scan_rtu, Parity, RtuScan, DEFAULT_BAUDS};
use modbus_support::Bus;
use std::time::{Duration, Instant};

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let bus = Bus::new(None);
    let mut scan = RtuScan::new(bus.port.to_string_lossy());
    scan.bauds = DEFAULT_BAUDS.to_vec();
    scan.parities = vec![Parity::None];
    scan.addresses = 1..=247;
    scan.timeout = Duration::from_millis(20);
    scan.tries = 1;
    let bound = scan_bound(&scan);
    println!(
        "commission_scan: dead bus, {} addresses x {} bauds {:?} 8N1, timeout {:?} x {} try",
        scan.addresses.clone().count(),
        scan.bauds.len(),
        scan.bauds,
        scan.timeout,
        scan.tries
    );
    let mut per_baud: Vec<(u32, Duration)> = Vec::new();
    let mut last = (0u32, Instant::now());
    let started = Instant::now();
    let found = rt
        .block_on(scan_rtu(&scan, |p| {
            if p.baud != last.0 {
                last = (p.baud, Instant::now());
            }
            if p.address == 247 {
                per_baud.push((p.baud, last.1.elapsed()));
            }
        }))
        .expect("scan runs");
    let took = started.elapsed();
    assert!(found.is_empty(), "nobody is on this bus: {found:?}");
    println!(
        "{:>8} {:>12} {:>12} {:>8}",
        "baud", "measured s", "bound s", "ratio"
    );
    for (baud, t) in &per_baud {
        let mut one = scan.clone();
        one.bauds = vec![*baud];
        let b = scan_bound(&one);
        println!(
            "{baud:>8} {:>12.2} {:>12.2} {:>8.3}",
            t.as_secs_f64(),
            b.as_secs_f64(),
            t.as_secs_f64() / b.as_secs_f64()
        );
    }
    println!(
        "{:>8} {:>12.2} {:>12.2} {:>8.3}",
        "all",
        took.as_secs_f64(),
        bound.as_secs_f64(),
        took.as_secs_f64() / bound.as_secs_f64()
    );
    assert!(
        took <= bound,
        "the scan took {took:?}, over its bound {bound:?}"
    );
}
