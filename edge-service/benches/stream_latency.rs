//! Latency of the half-cycle stream: from the last byte of a pqlink frame written to a
//! pseudo-terminal to (a) the reading and (b) the event appearing on the service's channels, and
//! the CPU the edge spends per frame.
//!
//! `cargo bench -p kare --bench stream_latency` (a plain binary: prints p50 / p99 / max).
//!
//! Phase 1 writes one frame at a time and waits for its reading before the next (latency, not
//! queueing). Every 20th frame is a dip to 65 %, so every 20th frame starts an event and the next
//! ends it. Phase 2 writes frames back to back and divides the process's CPU time by their count.

#[path = "support/frames.rs"]
mod frames;

use frames::{half, hello, percentile};
use kare::sim::pty::Pty;
use kare::sources::pqlink::{run, PqlinkSourceConfig, SourceMessage, StreamOutput};
use kare_firmware::detector::Thresholds;
use std::io::Write;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

const FRAMES: u32 = 5000;
const BLAST: u32 = 20_000;

fn cpu_time() -> Duration {
    // SAFETY: getrusage fills a plain struct for this process.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Half cycle `seq`: 230 V, or 150 V (65 %) on phase A every 20th.
fn half_with_dips(seq: u32) -> Vec<u8> {
    let a = if seq % 20 == 10 { 150.0 } else { 230.0 };
    half(seq, [a, 230.0, 230.0])
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pty = Pty::open().unwrap();
    let (ev_tx, mut ev_rx) = mpsc::channel(1024);
    let (rd_tx, mut rd_rx) = broadcast::channel(4096);
    let stop_tx = CancellationToken::new();
    let stop_rx = stop_tx.clone();
    let cfg = PqlinkSourceConfig {
        name: "bench".into(),
        port: pty.path.to_string_lossy().into_owned(),
        baud: 115_200,
        thresholds: Thresholds::typical(230.0),
        silence: Duration::from_secs(30),
    };
    let source = rt.spawn(run(cfg, ev_tx, rd_tx, stop_rx));

    // The receiving side: time stamps every reading and every event start as it arrives.
    let (seen_tx, seen_rx) = std_mpsc::channel::<(u32, bool, Instant)>();
    let seen_r = seen_tx.clone();
    rt.spawn(async move {
        while let Ok(r) = rd_rx.recv().await {
            let _ = seen_r.send((r.seq, false, Instant::now()));
        }
    });
    rt.spawn(async move {
        while let Some(m) = ev_rx.recv().await {
            if let SourceMessage::Stream(_, StreamOutput::Started { event, .. }) = m {
                let now = Instant::now();
                // The frame that started it: offset in half cycles.
                let seq = (event.offset_s * 100.0).round() as u32;
                let _ = seen_tx.send((seq, true, now));
            }
        }
    });

    let mut master = pty.master.try_clone().unwrap();
    master.write_all(&hello()).unwrap();
    let mut reading_lat = Vec::new();
    let mut event_lat = Vec::new();
    for seq in 0..FRAMES {
        let bytes = half_with_dips(seq);
        master.write_all(&bytes).unwrap();
        let written = Instant::now();
        let starts_event = seq % 20 == 10 && seq > 0;
        let (mut got_reading, mut got_event) = (false, !starts_event);
        while !(got_reading && got_event) {
            let (s, is_event, at) = seen_rx
                .recv_timeout(Duration::from_secs(5))
                .expect("the service answers within 5 s");
            if is_event {
                event_lat.push(at - written);
                got_event = true;
            } else if s == seq {
                reading_lat.push(at - written);
                got_reading = true;
            }
        }
    }

    // Phase 2: CPU per frame with frames back to back.
    let cpu0 = cpu_time();
    let wall0 = Instant::now();
    let mut blast = Vec::new();
    for seq in FRAMES..FRAMES + BLAST {
        blast.extend_from_slice(&half_with_dips(seq));
    }
    master.write_all(&blast).unwrap();
    let last = FRAMES + BLAST - 1;
    loop {
        let (s, is_event, _) = seen_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        if !is_event && s == last {
            break;
        }
    }
    let wall = wall0.elapsed();
    let cpu = cpu_time() - cpu0;

    stop_tx.cancel();
    rt.block_on(async {
        let _ = source.await;
    });
    reading_lat.sort();
    event_lat.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "stream latency over a pseudo-terminal, {} frames, {} event starts",
        reading_lat.len(),
        event_lat.len()
    );
    for (what, v) in [
        ("frame -> reading", &reading_lat),
        ("frame -> event start", &event_lat),
    ] {
        println!(
            "  {what:<22} p50 {:>7.1} µs   p99 {:>7.1} µs   max {:>8.1} µs",
            us(percentile(v, 0.5)),
            us(percentile(v, 0.99)),
            us(*v.last().unwrap())
        );
    }
    println!(
        "  back to back: {BLAST} frames in {:.1} ms wall, {:.2} µs CPU per frame (whole process)",
        wall.as_secs_f64() * 1e3,
        us(cpu) / BLAST as f64
    );
}
