//! The appliance's footprint (issue 15): resident memory and CPU of `kare run` (release) with
//! one sensor node and two meters, after an hour of simulated traffic.
//!
//! The node is the simulator (the firmware's node loop on a synthetic supply) writing pqlink
//! into a pseudo-terminal at `FOOTPRINT_SPEED`× real time (default 60: an hour of half cycles in
//! a minute); the meters are the demo's simulated SDM630 (Modbus RTU) and DL/T 645 meter, each
//! on its own pseudo-terminal, polled by `kare run` at their configured periods. The simulator
//! and the meters run in this process, so `kare run`'s own figures are measured alone, from
//! `/proc/PID/status` (VmRSS, VmHWM) and `/proc/PID/stat` (utime + stime).
//!
//! `cargo bench -p kare --bench footprint` (`FOOTPRINT_SPEED`, `FOOTPRINT_HOURS` to change it;
//! `FOOTPRINT_QEMU=1` runs the arm64 binary of `scripts/build-pi` under qemu-aarch64)

use kare::sim::{self, pty::Pty, Pace, Scenario};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn status_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// utime + stime in seconds.
fn cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // After ')': state is field 0, utime field 11, stime field 12.
    let hz = 100.0; // USER_HZ on Linux
    (ticks(11) + ticks(12)) / hz
}

fn main() {
    let speed: f64 = std::env::var("FOOTPRINT_SPEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60.0);
    let hours: f64 = std::env::var("FOOTPRINT_HOURS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = rt.enter();
    let dir = tempfile::tempdir().expect("temp dir");

    // The node.
    let scenario = Scenario::from_toml("node_id = 7\nnominal_hz = 50\n").expect("scenario");
    let (master, node_port, _slave) = Pty::open().expect("pty").into_parts();
    sim::pty::set_nonblocking(&master).expect("nonblocking");
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let sim_thread =
        std::thread::spawn(move || sim::run(&scenario, master, Pace::Accelerated(speed), &s));
    // The meters.
    let supply = sim::meters::Supply::new(230.0, 50.0);
    let modbus = sim::meters::start_modbus_meter(supply.clone()).expect("modbus meter");
    let dlt645 = sim::meters::start_dlt645_meter(supply).expect("dlt645 meter");

    let config = format!(
        r#"[site]
id = "SITE-F"
customer_id = "C-F"
customer_name = "Footprint"

[routes]
repair = []

[store]
path = "{store}"

[[node]]
name = "node-1"
port = "{node}"
udin = 230.0

[[modbus]]
name = "bus-1"
port = "{modbus}"
baud = 9600
parity = "none"

[[modbus.device]]
name = "sdm630"
slave_id = 1
profile = "eastron-sdm630"
poll_every_s = 2.0

[[dlt645]]
name = "bus-2"
port = "{dlt645}"
baud = 2400
parity = "none"

[[dlt645.device]]
name = "tariff"
address = "{address}"
"#,
        store = dir.path().join("kare.db").display(),
        node = node_port.display(),
        modbus = modbus.port.display(),
        dlt645 = dlt645.port.display(),
        address = sim::meters::DLT645_ADDRESS,
    );
    let cfg_path = dir.path().join("kare.toml");
    std::fs::write(&cfg_path, config).expect("config");
    let wall = Duration::from_secs_f64(hours * 3600.0 / speed);
    // `FOOTPRINT_QEMU=1`: the Pi's arm64 binary (scripts/build-pi) under qemu-aarch64, whose
    // figures include the emulator's own memory and CPU.
    let mut command = match std::env::var_os("FOOTPRINT_QEMU") {
        Some(_) => {
            let pi = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../target/aarch64-unknown-linux-gnu/release/kare");
            let mut c = Command::new("qemu-aarch64");
            c.env("QEMU_LD_PREFIX", "/usr/aarch64-linux-gnu").arg(pi);
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_kare")),
    };
    let mut child = command
        .args(["run", "--listen", "127.0.0.1:0", "--config"])
        .arg(&cfg_path)
        .arg("--duration")
        .arg(format!("{}", wall.as_secs_f64()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("kare run");
    let pid = child.id();
    let start = Instant::now();
    let mut peak_rss = 0;
    let mut last_rss = 0;
    let mut cpu = 0.0;
    let mut hwm = 0;
    // Sampled until kare stops itself (`--duration`): the last sample is its state at the end.
    while child.try_wait().ok().flatten().is_none() {
        let rss = status_kb(pid, "VmRSS:");
        if rss > 0 {
            last_rss = rss;
            peak_rss = peak_rss.max(rss);
            hwm = status_kb(pid, "VmHWM:").max(hwm);
            cpu = cpu_s(pid);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let ran = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let stats = sim_thread.join().ok().and_then(|r| r.ok());
    // The node's data while kare ran (the simulator ran a little longer, until told to stop).
    let data_s = stats
        .map(|s| s.scenario_s.min(ran.as_secs_f64() * speed))
        .unwrap_or(hours * 3600.0);
    println!(
        "footprint: kare run, 1 node + 2 meters, {data_s:.0} s of node data at {speed}x in {:.0} s",
        ran.as_secs_f64()
    );
    println!(
        "  resident memory at the end {:.1} MB, peak {:.1} MB (VmHWM {:.1} MB)",
        last_rss as f64 / 1024.0,
        peak_rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    println!(
        "  CPU {cpu:.2} s for {data_s:.0} s of data: {:.3} % of one core per node in real time",
        cpu / data_s.max(1.0) * 100.0
    );
}
