//! The Class A conformance grid (`kare::sim::conformance`) on the stream path: the sensor node's
//! loop (`kare_firmware::node::Node`) measures the waveform and writes pqlink frames into a
//! pseudo-terminal; the service reads the other end as a serial port and judges the half-cycle
//! stream. It must find the same events as the replay path (`conformance::replay`), event by
//! event: kind, start, duration, residual/maximum and worst channel.
//!
//! Whether those events are *right* is `edge-service/tests/conformance.rs`'s question; this one
//! asks only that the two paths agree, so it holds on today's core and on the lead's fix alike.

use kare::pipeline::event_log::{EventBody, LoggedEvent};
use kare::pipeline::service::{Service, ServiceConfig};
use kare::sim::conformance::{self, Case, Found, Kind, Phases, Run};
use kare::sim::pty::Pty;
use kare::sources::pqlink::PqlinkSourceConfig;
use kare_firmware::node::{Node, NodeConfig};
use kare_firmware::pqlink::{ChannelInfo, FirmwareVersion, MAX_CHANNELS};
use std::io::Write;
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;

/// The node's loop for a run: three channels at the run's rate and nominal frequency.
fn node(run: &Run) -> Node<640, 1920> {
    let mut channels = heapless::Vec::new();
    for name in conformance::CHANNEL_NAMES {
        let _ = channels.push(ChannelInfo {
            name: heapless::String::try_from(name).unwrap(),
            volts_per_unit: conformance::volts_per_unit(),
        });
    }
    Node::new(NodeConfig {
        node_id: 7,
        firmware: FirmwareVersion::default(),
        channels,
        nominal_hz: run.nominal_hz as u8,
        sample_rate_hz: run.sample_rate_hz as u32,
        thresholds: conformance::thresholds(),
    })
    .unwrap()
}

/// The last case of every run: a plain 50 % three-phase dip. Once the service has logged its
/// end, every frame before it has been judged (the stream is in order), so the test waits on
/// that instead of on time.
fn sentinel(like: &Case) -> Case {
    Case {
        kind: Kind::Dip,
        level_pct: 50.0,
        cycles: 10.0,
        angle_deg: 0.0,
        phases: Phases::Three,
        ..*like
    }
}

/// The cases streamed, each run closed by its sentinel.
fn with_sentinels(cases: &[Case]) -> Vec<Case> {
    let mut out = cases.to_vec();
    let mut keys: Vec<Case> = Vec::new();
    for c in cases {
        let same = |k: &Case| {
            (k.frequency_hz, k.nominal_hz, k.sample_rate_hz)
                == (c.frequency_hz, c.nominal_hz, c.sample_rate_hz)
        };
        if !keys.iter().any(same) {
            keys.push(*c);
        }
    }
    out.extend(keys.iter().map(sentinel));
    out
}

fn voltage_events(log: &[LoggedEvent]) -> Vec<Found> {
    let mut found: Vec<Found> = log
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Voltage(v) => Some(Found::from_reported(v)),
            _ => None,
        })
        .collect();
    conformance::sort_found(&mut found);
    found
}

/// Whether `e` is the run's sentinel, ended.
fn is_sentinel_end(run: &Run, e: &LoggedEvent) -> bool {
    let last = run.slots.len() - 1;
    matches!(&e.body, EventBody::Voltage(v)
        if v.duration_s.is_some() && run.slot_of(v.offset_s) == Some(last))
}

/// Streams a run through node → pqlink → pty → service; every voltage event the service logged.
async fn stream(run: &Run) -> Vec<Found> {
    let pty = Pty::open().unwrap();
    let service = Service::start(ServiceConfig {
        nodes: vec![PqlinkSourceConfig {
            name: "node-c".into(),
            port: pty.path.to_str().unwrap().into(),
            baud: 115_200,
            thresholds: conformance::thresholds(),
            silence: Duration::from_secs(30),
        }],
        ..ServiceConfig::new(kare::actions::site::Site::demo())
    });
    let mut updates = service.updates.subscribe();
    // The node and its UART: a blocking writer thread, generating the waveform as it goes.
    let writer = {
        let master = pty.master.try_clone().unwrap();
        let run = run.clone();
        std::thread::spawn(move || {
            let mut port = std::io::BufWriter::with_capacity(1 << 16, master);
            let mut n = node(&run);
            let mut sample = [0i32; MAX_CHANNELS];
            for s in run.samples() {
                sample[..conformance::CHANNELS].copy_from_slice(&s);
                n.push(&sample, |b| port.write_all(b).is_ok());
            }
            port.flush().unwrap();
            n.counters()
        })
    };
    // Wait for the sentinel's end, on the service's own notifications; give up only when the
    // service has said nothing for a long while.
    let quiet = Duration::from_secs(60);
    let mut done = false;
    while !done {
        match tokio::time::timeout(quiet, updates.recv()).await {
            Ok(Ok(e)) => done = is_sentinel_end(run, &e),
            Ok(Err(RecvError::Lagged(_))) => {
                done = service.log.all().iter().any(|e| is_sentinel_end(run, e))
            }
            Ok(Err(RecvError::Closed)) => panic!("the service stopped"),
            Err(_) => panic!(
                "no word from the service for {quiet:?}; events so far: {}",
                voltage_events(&service.log.all()).len()
            ),
        }
    }
    let counters = writer.join().unwrap();
    assert_eq!(counters.half_cycles_dropped, 0, "{counters:?}");
    let found = voltage_events(&service.log.all());
    let st = service.status.lock().unwrap()["node-c"].clone();
    assert_eq!(st.stats.crc_errors, 0, "{:?}", st.stats);
    assert_eq!(st.stats.seq_gaps, 0, "{:?}", st.stats);
    drop(updates);
    service.stop().await;
    found
}

/// Differences between the two paths' events of one run, one line each.
fn differences(run: &Run, replayed: &[Found], streamed: &[Found]) -> Vec<String> {
    let label = |f: &Found| {
        run.slot_of(f.start_s)
            .map_or("lead-in".to_string(), |i| run.slots[i].case.label())
    };
    let same = |a: &Found, b: &Found| {
        a.kind == b.kind
            && a.worst_channel == b.worst_channel
            && (a.start_s - b.start_s).abs() < 1e-9
            && match (a.duration_s, b.duration_s) {
                (Some(x), Some(y)) => (x - y).abs() < 1e-9,
                (None, None) => true,
                _ => false,
            }
            && (a.extreme_pct - b.extreme_pct).abs() < 1e-6
    };
    let mut out = Vec::new();
    let n = replayed.len().max(streamed.len());
    for i in 0..n {
        match (replayed.get(i), streamed.get(i)) {
            (Some(r), Some(s)) if same(r, s) => {}
            (Some(r), Some(s)) => out.push(format!(
                "{}: replay {} / stream {}",
                label(r),
                r.describe(),
                s.describe()
            )),
            (Some(r), None) => out.push(format!("{}: only replay: {}", label(r), r.describe())),
            (None, Some(s)) => out.push(format!("{}: only stream: {}", label(s), s.describe())),
            (None, None) => {}
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_finds_the_same_events_as_replay_across_the_conformance_grid() {
    // The whole suite: the simulator grid (6400 Sps) and the Pico grid (3750 Sps).
    let mut grid = conformance::grid();
    grid.extend(conformance::pico_grid());
    let cases = with_sentinels(&grid);
    let runs = conformance::runs(&cases);
    let mut diffs = Vec::new();
    let mut events = 0;
    for run in &runs {
        let t = Instant::now();
        let replayed = conformance::replay(run);
        let t_replay = t.elapsed();
        let streamed = stream(run).await;
        println!(
            "run {}/{} Hz {} Sps: {} cases, {:.0} s of signal, {} events; replay {:.1} s, stream {:.1} s",
            run.frequency_hz,
            run.nominal_hz,
            run.sample_rate_hz,
            run.slots.len(),
            run.length_s(),
            replayed.len(),
            t_replay.as_secs_f64(),
            (t.elapsed() - t_replay).as_secs_f64()
        );
        events += replayed.len();
        diffs.extend(differences(run, &replayed, &streamed));
    }
    assert!(events > 0);
    assert!(
        diffs.is_empty(),
        "{} events differ between replay and stream (first 20):\n{}",
        diffs.len(),
        diffs
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
