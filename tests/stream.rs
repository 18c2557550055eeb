//! The half-cycle stream end to end: the sensor node's loop writes pqlink into a pseudo-terminal,
//! the service opens the other end as a serial port (tokio-serial) and judges the stream.

use kare::pipeline::event_log::{EventBody, LoggedEvent};
use kare::pipeline::service::{Service, ServiceConfig};
use kare::recording;
use kare::replay::{self, ReplayOptions};
use kare::sim::pty::Pty;
use kare::sources::pqlink::PqlinkSourceConfig;
use kare_firmware::detector::{EventKind, Thresholds};
use kare_firmware::node::{Node, NodeConfig};
use kare_firmware::pqlink::{ChannelInfo, FirmwareVersion, MAX_CHANNELS};
use std::f64::consts::PI;
use std::io::Write;
use std::time::Duration;
use tokio::sync::broadcast;

const FS: u32 = 6400;
const VPU: f32 = 1e-4;

/// Volts on phase `ch` at time `t`: 230 V, a 60 % dip on A at 1.0 s for 120 ms, a 115 % swell at
/// 2.0 s for 300 ms, an interruption at 3.0 s for 0.5 s.
fn volts(t: f64, ch: usize) -> f64 {
    let pct = if ch == 0 && (1.0..1.12).contains(&t) {
        60.0
    } else if (2.0..2.3).contains(&t) {
        115.0
    } else if (3.0..3.5).contains(&t) {
        0.0
    } else {
        100.0
    };
    230.0 * pct / 100.0 * 2f64.sqrt() * (2.0 * PI * 50.0 * t - ch as f64 * 2.0 * PI / 3.0).sin()
}

fn node() -> Node<640, 1920> {
    let mut channels = heapless::Vec::new();
    for name in ["VA", "VB", "VC"] {
        let _ = channels.push(ChannelInfo {
            name: heapless::String::try_from(name).unwrap(),
            volts_per_unit: VPU,
        });
    }
    Node::new(NodeConfig {
        node_id: 42,
        firmware: FirmwareVersion::default(),
        channels,
        nominal_hz: 50,
        sample_rate_hz: FS,
        thresholds: Thresholds::typical(230.0),
    })
    .unwrap()
}

/// The wire bytes a node sends for `seconds` of the waveform, one `Vec` per frame.
fn frames(seconds: f64) -> Vec<Vec<u8>> {
    let mut n = node();
    let mut out = Vec::new();
    for k in 0..(seconds * FS as f64) as usize {
        let t = k as f64 / FS as f64;
        let mut s = [0i32; MAX_CHANNELS];
        for (ch, x) in s.iter_mut().take(3).enumerate() {
            *x = (volts(t, ch) / VPU as f64).round() as i32;
        }
        n.push(&s, |b| {
            out.push(b.to_vec());
            true
        });
    }
    out
}

fn source(port: &str, silence_ms: u64) -> PqlinkSourceConfig {
    PqlinkSourceConfig {
        name: "node-a".into(),
        port: port.into(),
        baud: 115_200,
        thresholds: Thresholds::typical(230.0),
        silence: Duration::from_millis(silence_ms),
    }
}

/// Waits (with a deadline, on the service's own notifications) until `done` holds for the log.
async fn wait_for(
    service: &Service,
    updates: &mut broadcast::Receiver<LoggedEvent>,
    what: &str,
    done: impl Fn(&[LoggedEvent]) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done(&service.log.all()) {
        match tokio::time::timeout_at(deadline, updates.recv()).await {
            Ok(_) => {}
            Err(_) => panic!(
                "timed out waiting for {what}; log: {:#?}",
                service.log.all()
            ),
        }
    }
}

fn voltage(log: &[LoggedEvent]) -> Vec<kare::pipeline::events::ReportedEvent> {
    log.iter()
        .filter_map(|e| match &e.body {
            EventBody::Voltage(v) if v.duration_s.is_some() => Some(v.clone()),
            _ => None,
        })
        .collect()
}

/// Writes frames to the pty from a thread (a blocking writer, like a UART).
fn send(master: &std::fs::File, frames: Vec<Vec<u8>>) -> std::thread::JoinHandle<()> {
    let mut m = master.try_clone().unwrap();
    std::thread::spawn(move || {
        for f in frames {
            m.write_all(&f).unwrap();
        }
        m.flush().unwrap();
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_events_equal_what_replay_finds_in_the_same_waveform() {
    // Replay: the same waveform as a CSV recording.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("w.csv");
    let mut text = String::from("t,VA,VB,VC\n");
    for k in 0..(4.0 * FS as f64) as usize {
        let t = k as f64 / FS as f64;
        text.push_str(&format!(
            "{t:.7},{:.5},{:.5},{:.5}\n",
            volts(t, 0),
            volts(t, 1),
            volts(t, 2)
        ));
    }
    std::fs::write(&csv, text).unwrap();
    let rec = recording::read(&csv).unwrap();
    let mut opts = ReplayOptions::new(vec!["VA".into(), "VB".into(), "VC".into()], 230.0);
    opts.frequency_hz = Some(50.0);
    let replayed = replay::analyse(&rec, &opts).unwrap().events;
    assert_eq!(
        replayed.len(),
        4,
        "dip, swell, dip around the interruption, interruption"
    );

    // Stream: the node's frames through a pseudo-terminal.
    let pty = Pty::open().unwrap();
    let service = Service::start(ServiceConfig {
        nodes: vec![source(pty.path.to_str().unwrap(), 5000)],
        ..ServiceConfig::new(kare::actions::site::Site::demo())
    });
    let mut updates = service.updates.subscribe();
    let writer = send(&pty.master, frames(4.0));
    wait_for(&service, &mut updates, "four closed events", |log| {
        voltage(log).len() >= 4
    })
    .await;
    writer.join().unwrap();
    let mut streamed = voltage(&service.log.all());
    streamed.sort_by(|a, b| {
        a.offset_s
            .total_cmp(&b.offset_s)
            .then(kind(a).cmp(&kind(b)))
    });
    assert_eq!(streamed.len(), replayed.len());
    for (s, r) in streamed.iter().zip(&replayed) {
        assert_eq!(s.kind, r.kind);
        assert_eq!(s.worst_channel, r.worst_channel, "{s:?} vs {r:?}");
        assert!((s.offset_s - r.offset_s).abs() < 0.001, "{s:?} vs {r:?}");
        assert!((s.duration_s.unwrap() - r.duration_s.unwrap()).abs() < 0.001);
        assert!(
            (s.extreme_pct - r.extreme_pct).abs() < 0.05,
            "{s:?} vs {r:?}"
        );
        assert_eq!(s.itic, r.itic);
        assert_eq!(s.semi_f47, r.semi_f47);
    }
    let st = service
        .status
        .lock()
        .unwrap()
        .get("node-a")
        .cloned()
        .unwrap();
    assert_eq!(st.node_id, Some(42));
    assert_eq!(st.stats.crc_errors, 0);
    assert_eq!(st.stats.seq_gaps, 0);
    drop(updates);
    service.stop().await;
}

fn kind(e: &kare::pipeline::events::ReportedEvent) -> u8 {
    kare::pipeline::events::kind_order(e.kind)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_corruption_and_gaps_are_survived_and_counted() {
    let pty = Pty::open().unwrap();
    let service = Service::start(ServiceConfig {
        nodes: vec![source(pty.path.to_str().unwrap(), 5000)],
        ..ServiceConfig::new(kare::actions::site::Site::demo())
    });
    let mut updates = service.updates.subscribe();
    let mut damaged = Vec::new();
    let mut lost = 0;
    for (i, mut f) in frames(4.0).into_iter().enumerate() {
        match i % 97 {
            // Line noise between frames.
            13 => {
                damaged.push(vec![0x55, 0xAA, 0x13, 0x37, 0xFF, 0x01]);
                damaged.push(f);
            }
            // A flipped bit inside a frame.
            29 => {
                let mid = f.len() / 2;
                f[mid] ^= 0x10;
                damaged.push(f);
                lost += 1;
            }
            // A frame that never arrives.
            61 => lost += 1,
            _ => damaged.push(f),
        }
    }
    assert!(lost > 0);
    let writer = send(&pty.master, damaged);
    // The events are still found: damage was placed away from the event frames' majority.
    wait_for(&service, &mut updates, "the interruption", |log| {
        voltage(log)
            .iter()
            .any(|e| e.kind == EventKind::Interruption)
    })
    .await;
    writer.join().unwrap();
    let st = service
        .status
        .lock()
        .unwrap()
        .get("node-a")
        .cloned()
        .unwrap();
    assert!(st.stats.crc_errors + st.stats.resyncs > 0, "{:?}", st.stats);
    assert!(st.stats.seq_gaps > 0, "{:?}", st.stats);
    assert!(st.stats.half_cycles > 250, "{:?}", st.stats);
    drop(updates);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_node_is_sensor_lost_not_an_interruption() {
    let pty = Pty::open().unwrap();
    let service = Service::start(ServiceConfig {
        nodes: vec![source(pty.path.to_str().unwrap(), 300)],
        ..ServiceConfig::new(kare::actions::site::Site::demo())
    });
    let mut updates = service.updates.subscribe();
    let all = frames(1.0);
    let (first, rest) = all.split_at(all.len() / 2);
    send(&pty.master, first.to_vec()).join().unwrap();
    wait_for(&service, &mut updates, "sensor lost", |log| {
        log.iter()
            .any(|e| matches!(e.body, EventBody::SensorLost { .. }))
    })
    .await;
    send(&pty.master, rest.to_vec()).join().unwrap();
    wait_for(&service, &mut updates, "sensor back", |log| {
        log.iter()
            .any(|e| matches!(e.body, EventBody::SensorLost { end: Some(_), .. }))
    })
    .await;
    let log = service.log.all();
    assert!(
        log.iter().all(
            |e| !matches!(&e.body, EventBody::Voltage(v) if v.kind == EventKind::Interruption)
        ),
        "silence is not an outage: {log:?}"
    );
    let lost = log
        .iter()
        .find(|e| matches!(e.body, EventBody::SensorLost { .. }))
        .unwrap();
    assert_eq!(lost.to_json()["kind"], "sensor_lost");
    drop(updates);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_that_never_make_a_frame_are_sensor_lost_with_the_reason() {
    // Valid frames, then random bytes at line rate (a wrong baud rate, a failing UART): the
    // port is busy, but no frame decodes. That must not pass for a node that is heard.
    let pty = Pty::open().unwrap();
    let service = Service::start(ServiceConfig {
        nodes: vec![source(pty.path.to_str().unwrap(), 300)],
        ..ServiceConfig::new(kare::actions::site::Site::demo())
    });
    let mut updates = service.updates.subscribe();
    let all = frames(1.0);
    let (first, rest) = all.split_at(all.len() / 2);
    send(&pty.master, first.to_vec()).join().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let noise = {
        let mut m = pty.master.try_clone().unwrap();
        let stop = stop.clone();
        std::thread::spawn(move || {
            // 0x00 ends a COBS frame: leaving it out keeps every chunk one undecodable frame,
            // as line noise that never resynchronises would.
            let mut rng = fastrand::Rng::with_seed(7);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let chunk: Vec<u8> = (0..256).map(|_| rng.u8(1..=255)).collect();
                if m.write_all(&chunk).is_err() {
                    break;
                }
            }
        })
    };
    wait_for(
        &service,
        &mut updates,
        "sensor lost while bytes arrive",
        |log| {
            log.iter().any(|e| {
                matches!(&e.body, EventBody::SensorLost { reason, end: None, .. }
                if reason.contains("no valid frame") && reason.contains("wrong baud rate"))
            })
        },
    )
    .await;
    let connected = service.status.lock().unwrap()["node-a"].connected;
    assert!(!connected, "a node sending only garbage is not connected");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    noise.join().unwrap();
    send(&pty.master, rest.to_vec()).join().unwrap();
    wait_for(
        &service,
        &mut updates,
        "sensor back when frames resume",
        |log| {
            log.iter()
                .any(|e| matches!(e.body, EventBody::SensorLost { end: Some(_), .. }))
        },
    )
    .await;
    drop(updates);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unplugged_port_is_reported_and_reconnected() {
    // The service opens a stable name (as /dev/serial/by-id/... would be); the device behind it
    // goes away and comes back as a new pseudo-terminal.
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyKARE");
    let first = Pty::open().unwrap();
    std::os::unix::fs::symlink(&first.path, &link).unwrap();
    let service = Service::start(ServiceConfig {
        nodes: vec![source(link.to_str().unwrap(), 2000)],
        ..ServiceConfig::new(kare::actions::site::Site::demo())
    });
    let mut updates = service.updates.subscribe();
    let all = frames(2.0);
    let (a, b) = all.split_at(all.len() / 2);
    send(&first.master, a.to_vec()).join().unwrap();
    // Unplug: the device side closes and the name disappears.
    std::fs::remove_file(&link).unwrap();
    drop(first);
    wait_for(&service, &mut updates, "sensor lost on unplug", |log| {
        log.iter()
            .any(|e| matches!(e.body, EventBody::SensorLost { end: None, .. }))
    })
    .await;
    // Plug back in.
    let second = Pty::open().unwrap();
    std::os::unix::fs::symlink(&second.path, &link).unwrap();
    let writer = send(&second.master, b.to_vec());
    wait_for(&service, &mut updates, "sensor back after replug", |log| {
        log.iter()
            .any(|e| matches!(e.body, EventBody::SensorLost { end: Some(_), .. }))
    })
    .await;
    writer.join().unwrap();
    let lost = service
        .log
        .all()
        .into_iter()
        .find(|e| matches!(e.body, EventBody::SensorLost { .. }))
        .unwrap();
    assert!(
        lost.to_json()["reason"]
            .as_str()
            .unwrap()
            .contains("ttyKARE"),
        "{:?}",
        lost.to_json()
    );
    drop(updates);
    service.stop().await;
}
