//! The contract every source keeps with the service, checked on each of them: a pqlink sensor
//! node, a Modbus RTU bus and a DL/T 645 bus, over pseudo-terminals opened as real serial ports
//! (the simulated meters of `kare::sim::meters` answer on the meter buses).
//!
//! 1. Events are never dropped when the service is slow: they queue in the source.
//! 2. Readings are dropped oldest first when the service is slow, and the drops are counted.
//! 3. The source stops promptly on shutdown, even while the service is not reading.
//! 4. A port that vanishes is reported and reopened when it is back.
//!
//! Every wait waits on a condition (a message, a counter) with a deadline, never on a sleep.

use chrono::{DateTime, TimeZone, Utc};
use kare::sim::meters::{self, SimMeter, Supply};
use kare::sim::pty::Pty;
use kare::sources::meters::dlt645::{self, codec::Di, Dlt645BusConfig, Dlt645Device, Poll};
use kare::sources::meters::modbus::{self, ModbusBusConfig};
use kare::sources::meters::readings::{BusStats, MeterEvent, MeterMessage};
use kare::sources::pqlink::{self, PqlinkSourceConfig, Reading, SourceMessage, StreamOutput};
use kare::sources::SourceClock;
use kare_firmware::detector::Thresholds;
use kare_firmware::pqlink::{
    encode, ChannelFlags, ChannelInfo, ChannelReading, FirmwareVersion, Frame, HalfCycle, Hello,
    MAX_WIRE_LEN, POS_ONE, PROTOCOL_VERSION,
};
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};
use tokio_util::sync::CancellationToken;

/// Generous for a loaded two-core machine.
const DEADLINE: Duration = Duration::from_secs(20);
/// A stopping source may hand queued messages over for a second; anything near this is prompt.
const PROMPTLY: Duration = Duration::from_secs(3);
/// Readings a meter bus keeps for a slow service in these tests.
const BOUND: usize = 3;

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    timeout(DEADLINE, f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Receives until `done` holds for what was received.
async fn until<M: std::fmt::Debug>(
    rx: &mut mpsc::Receiver<M>,
    all: &mut Vec<M>,
    what: &str,
    done: impl Fn(&[M]) -> bool,
) {
    let deadline = Instant::now() + DEADLINE;
    while !done(all) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(m)) => all.push(m),
            Ok(None) => panic!("the source stopped before {what}: {all:#?}"),
            Err(_) => panic!("timed out waiting for {what}: {all:#?}"),
        }
    }
}

/// Everything the source still sends until it ends and drops its sender.
async fn rest<M>(rx: &mut mpsc::Receiver<M>) -> Vec<M> {
    let mut all = Vec::new();
    while let Some(m) = within("the source to finish", rx.recv()).await {
        all.push(m);
    }
    all
}

/// Stops a source and checks it ends promptly, with nobody reading its channel.
async fn stops_promptly(stop: &CancellationToken, task: JoinHandle<()>) {
    let asked = Instant::now();
    stop.cancel();
    timeout(PROMPTLY, task)
        .await
        .expect("the source stopped promptly")
        .expect("the source ended without a panic");
    assert!(asked.elapsed() < PROMPTLY);
}

/// A clock that moves one millisecond each time it is read, and says how often it was read: a
/// reading's time stamp then tells which poll it came from, and the count how far polling got.
fn counting_clock() -> (SourceClock, watch::Receiver<u64>) {
    let (tx, rx) = watch::channel(0u64);
    let clock = SourceClock::from_fn(move || {
        let mut n = 0;
        tx.send_modify(|c| {
            *c += 1;
            n = *c;
        });
        epoch() + chrono::Duration::milliseconds(n as i64)
    });
    (clock, rx)
}

fn epoch() -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000, 0).unwrap()
}

/// A stable port name (as `/dev/serial/by-id/…` is) pointing at whichever device is plugged in.
struct PortName {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl PortName {
    fn new() -> PortName {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ttyKARE");
        PortName { _dir: dir, path }
    }

    fn plug(&self, device: &Path) {
        std::os::unix::fs::symlink(device, &self.path).unwrap();
    }

    fn unplug(&self) {
        std::fs::remove_file(&self.path).unwrap();
    }

    fn as_str(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

/// Checks what a slow service got of a meter bus's readings: the first poll (it fitted in the
/// channel), then only the newest `BOUND` polls, consecutive; every other poll counted dropped.
fn oldest_readings_were_dropped(got: &[MeterMessage], clock_reads_per_poll: i64, polls: u64) {
    let firsts: Vec<i64> = got
        .iter()
        .filter_map(|m| match m {
            MeterMessage::Readings(r) => Some((r[0].at - epoch()).num_milliseconds()),
            _ => None,
        })
        .collect();
    let stats = last_stats(got);
    assert_eq!(
        firsts.len(),
        BOUND + 1,
        "first poll plus the bound: {firsts:?}"
    );
    for pair in firsts[1..].windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            clock_reads_per_poll,
            "kept polls are consecutive: {firsts:?}"
        );
    }
    assert!(
        firsts[1] - firsts[0] > clock_reads_per_poll,
        "polls between the first and the kept ones were dropped: {firsts:?}"
    );
    assert!(stats.readings_dropped > 0);
    assert_eq!(
        stats.readings_dropped,
        polls - firsts.len() as u64,
        "every poll was either delivered or counted dropped"
    );
}

fn last_stats(got: &[MeterMessage]) -> BusStats {
    got.iter()
        .rev()
        .find_map(|m| match m {
            MeterMessage::Stats(_, s) => Some(s.clone()),
            _ => None,
        })
        .expect("bus counters were sent")
}

fn offline_devices(got: &[MeterMessage]) -> Vec<String> {
    got.iter()
        .filter_map(|m| match m {
            MeterMessage::Event(MeterEvent::Offline { device, .. }) => Some(device.to_string()),
            _ => None,
        })
        .collect()
}

fn offline_reason(got: &[MeterMessage]) -> Option<&str> {
    got.iter().find_map(|m| match m {
        MeterMessage::Event(MeterEvent::Offline { reason, .. }) => Some(reason.as_str()),
        _ => None,
    })
}

fn has_readings(got: &[MeterMessage]) -> bool {
    got.iter().any(|m| matches!(m, MeterMessage::Readings(_)))
}

fn supply() -> Supply {
    Supply::new(230.0, 50.0)
}

/// Either meter bus: its port vanishes (the adapter unplugged) and a new one appears under the
/// same stable name; the meter goes offline with the port's name, then online and polled again.
async fn reopens_a_port_that_vanished_and_says_so(
    meter: impl Fn() -> SimMeter,
    start: impl Fn(
        &str,
    ) -> (
        mpsc::Receiver<MeterMessage>,
        CancellationToken,
        JoinHandle<()>,
    ),
) {
    let name = PortName::new();
    let first = meter();
    name.plug(&first.port);
    let (mut rx, stop, task) = start(name.as_str());
    let mut got = Vec::new();
    until(&mut rx, &mut got, "a poll", has_readings).await;

    name.unplug();
    drop(first);
    got.clear();
    until(&mut rx, &mut got, "the meter offline", |all| {
        !offline_devices(all).is_empty()
    })
    .await;
    let reason = offline_reason(&got).unwrap();
    assert!(reason.contains("ttyKARE"), "{reason}");

    let second = meter();
    name.plug(&second.port);
    got.clear();
    until(
        &mut rx,
        &mut got,
        "the meter online and polled again",
        |all| {
            has_readings(all)
                && all
                    .iter()
                    .any(|m| matches!(m, MeterMessage::Event(MeterEvent::Online { .. })))
        },
    )
    .await;
    stops_promptly(&stop, task).await;
}

mod pqlink_node {
    use super::*;

    const VPU: f32 = 1e-4;

    fn config(port: &str) -> PqlinkSourceConfig {
        PqlinkSourceConfig {
            name: "node".into(),
            port: port.into(),
            baud: 115_200,
            thresholds: Thresholds::typical(230.0),
            silence: Duration::from_secs(30),
        }
    }

    fn wire(frame: &Frame) -> Vec<u8> {
        let mut buf = [0u8; MAX_WIRE_LEN];
        let n = encode(frame, &mut buf).unwrap();
        buf[..n].to_vec()
    }

    /// A hello from node `node_id` (the channels stay the same: no restart of the stream).
    fn hello(node_id: u32) -> Vec<u8> {
        let mut channels = heapless::Vec::new();
        for name in ["VA", "VB", "VC"] {
            let _ = channels.push(ChannelInfo {
                name: heapless::String::try_from(name).unwrap(),
                volts_per_unit: VPU,
            });
        }
        wire(&Frame::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            firmware: FirmwareVersion::default(),
            node_id,
            channels,
            nominal_hz: 50,
            sample_rate_hz: 6400,
        }))
    }

    /// A normal half cycle number `seq`.
    fn half(seq: u32) -> Vec<u8> {
        let mut channels = heapless::Vec::new();
        for _ in 0..3 {
            let _ = channels.push(ChannelReading {
                urms: (230.0 / VPU) as u32,
                flags: ChannelFlags::NONE,
            });
        }
        wire(&Frame::HalfCycle(HalfCycle {
            seq,
            window_end: (seq as u64 + 2) * 64 * POS_ONE,
            window_len: 128 * POS_ONE as u32,
            freq_mhz: 50_000,
            channels,
        }))
    }

    /// Writes from a thread, as a UART does: a full pseudo-terminal blocks the writer, never
    /// the runtime the source runs on.
    fn write(pty: &Pty, bytes: Vec<u8>) -> std::thread::JoinHandle<()> {
        let mut m = pty.master.try_clone().unwrap();
        std::thread::spawn(move || {
            let _ = m.write_all(&bytes);
        })
    }

    struct Node {
        events: mpsc::Receiver<SourceMessage>,
        readings: broadcast::Sender<Reading>,
        stop: CancellationToken,
        task: JoinHandle<()>,
    }

    fn start(port: &str, capacity: usize, readings_kept: usize) -> Node {
        let (tx, events) = mpsc::channel(capacity);
        let (readings, _) = broadcast::channel(readings_kept);
        let stop = CancellationToken::new();
        let task = tokio::spawn(pqlink::run(
            config(port),
            tx,
            readings.clone(),
            stop.clone(),
        ));
        Node {
            events,
            readings,
            stop,
            task,
        }
    }

    /// Waits until the node's half cycle `seq` has been read (so everything before it was too).
    async fn read_up_to(rx: &mut broadcast::Receiver<Reading>, seq: u32) {
        within("the half cycle", async {
            loop {
                match rx.recv().await {
                    Ok(r) if r.seq >= seq => return,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => panic!("source stopped"),
                }
            }
        })
        .await
    }

    #[tokio::test]
    async fn pqlink_events_queue_in_the_source_and_none_is_dropped_when_the_service_is_slow() {
        let pty = Pty::open().unwrap();
        let mut node = start(pty.path.to_str().unwrap(), 1, 16);
        let mut seen = node.readings.subscribe();
        let mut bytes = Vec::new();
        for id in 0..300 {
            bytes.extend(hello(id));
        }
        bytes.extend(half(0));
        write(&pty, bytes);
        // The half cycle after the hellos was judged: all 300 hellos were handed on, with room
        // for one in the service's channel, which nobody has read.
        read_up_to(&mut seen, 0).await;
        let mut got = Vec::new();
        until(&mut node.events, &mut got, "300 hellos", |all| {
            all.iter()
                .filter(|m| matches!(m, SourceMessage::Stream(_, StreamOutput::Hello(_))))
                .count()
                >= 300
        })
        .await;
        let ids: Vec<u32> = got
            .iter()
            .filter_map(|m| match m {
                SourceMessage::Stream(_, StreamOutput::Hello(h)) => Some(h.node_id),
                _ => None,
            })
            .collect();
        assert_eq!(ids, (0..300).collect::<Vec<_>>(), "all of them, in order");
        stops_promptly(&node.stop, node.task).await;
    }

    #[tokio::test]
    async fn pqlink_readings_drop_the_oldest_for_a_slow_viewer_and_say_how_many() {
        let pty = Pty::open().unwrap();
        let node = start(pty.path.to_str().unwrap(), 64, 8);
        let mut slow = node.readings.subscribe();
        let mut fast = node.readings.subscribe();
        let mut bytes = hello(1);
        for seq in 0..50 {
            bytes.extend(half(seq));
        }
        write(&pty, bytes);
        read_up_to(&mut fast, 49).await;
        match slow.recv().await {
            Err(broadcast::error::RecvError::Lagged(n)) => assert_eq!(n, 42, "50 sent, 8 kept"),
            other => panic!("the slow viewer was not told it lagged: {other:?}"),
        }
        let kept: Vec<u32> = std::iter::from_fn(|| slow.try_recv().ok())
            .map(|r| r.seq)
            .collect();
        assert_eq!(kept, (42..50).collect::<Vec<_>>(), "the newest are kept");
        stops_promptly(&node.stop, node.task).await;
    }

    #[tokio::test]
    async fn pqlink_stops_promptly_on_shutdown_while_the_service_is_not_reading() {
        let pty = Pty::open().unwrap();
        let node = start(pty.path.to_str().unwrap(), 1, 16);
        let mut seen = node.readings.subscribe();
        let mut bytes = Vec::new();
        for id in 0..50 {
            bytes.extend(hello(id));
        }
        bytes.extend(half(0));
        write(&pty, bytes);
        read_up_to(&mut seen, 0).await;
        // 49 events wait in the source for a service that never reads: it still stops.
        let _unread = node.events;
        stops_promptly(&node.stop, node.task).await;
    }

    #[tokio::test]
    async fn pqlink_reopens_a_port_that_vanished_and_says_so() {
        let name = PortName::new();
        let first = Pty::open().unwrap();
        name.plug(&first.path);
        let mut node = start(name.as_str(), 64, 64);
        let mut seen = node.readings.subscribe();
        let mut bytes = hello(1);
        bytes.extend(half(0));
        write(&first, bytes).join().unwrap();
        read_up_to(&mut seen, 0).await;

        name.unplug();
        drop(first);
        let mut got = Vec::new();
        until(&mut node.events, &mut got, "sensor lost", |all| {
            all.iter()
                .any(|m| matches!(m, SourceMessage::SensorLost { .. }))
        })
        .await;
        let reason = got
            .iter()
            .find_map(|m| match m {
                SourceMessage::SensorLost { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .unwrap();
        assert!(reason.contains("ttyKARE"), "{reason}");

        let second = Pty::open().unwrap();
        name.plug(&second.path);
        // A node streams without end: frames go out until the source has heard it again.
        let heard = Arc::new(AtomicBool::new(false));
        let streaming = {
            let heard = heard.clone();
            let mut master = second.master.try_clone().unwrap();
            kare::sim::pty::set_nonblocking(&master).unwrap();
            std::thread::spawn(move || {
                let mut bytes = hello(1);
                bytes.extend(half(0));
                while !heard.load(Ordering::Relaxed) {
                    // Nobody reading yet: the pseudo-terminal is full, and that is fine.
                    let _ = master.write_all(&bytes);
                    std::thread::park_timeout(Duration::from_millis(20));
                }
            })
        };
        until(&mut node.events, &mut got, "sensor back", |all| {
            all.iter()
                .any(|m| matches!(m, SourceMessage::SensorBack { .. }))
        })
        .await;
        heard.store(true, Ordering::Relaxed);
        streaming.join().unwrap();
        stops_promptly(&node.stop, node.task).await;
    }
}

mod modbus_bus {
    use super::*;

    fn start(
        cfg: ModbusBusConfig,
        capacity: usize,
    ) -> (
        mpsc::Receiver<MeterMessage>,
        CancellationToken,
        JoinHandle<()>,
    ) {
        let (tx, rx) = mpsc::channel(capacity);
        let stop = CancellationToken::new();
        let run = modbus::run(cfg, tx, stop.clone());
        let task = tokio::spawn(async move { run.await.expect("a valid bus") });
        (rx, stop, task)
    }

    fn bus(port: &str) -> ModbusBusConfig {
        meters::modbus_bus("modbus", port, Duration::from_millis(10)).unwrap()
    }

    fn meter() -> SimMeter {
        meters::start_modbus_meter(supply()).unwrap()
    }

    #[tokio::test]
    async fn modbus_events_queue_in_the_source_and_none_is_dropped_when_the_service_is_slow() {
        let mut cfg = bus("/dev/kare-no-such-port");
        let template = cfg.devices[0].clone();
        cfg.devices = (1..=50u8)
            .map(|id| {
                let mut d = template.clone();
                d.name = format!("m{id}");
                d.slave_id = id;
                d
            })
            .collect();
        // Fifty offline events at once, room for one.
        let (mut rx, stop, task) = start(cfg, 1);
        let mut got = Vec::new();
        until(&mut rx, &mut got, "fifty offline events", |all| {
            offline_devices(all).len() >= 50
        })
        .await;
        let expected: Vec<String> = (1..=50).map(|id| format!("m{id}")).collect();
        assert_eq!(offline_devices(&got), expected, "all of them, in order");
        stops_promptly(&stop, task).await;
    }

    #[tokio::test]
    async fn modbus_readings_drop_the_oldest_when_the_service_is_slow_and_count_them() {
        let meter = meter();
        let mut cfg = bus(meter.port.to_str().unwrap());
        let (clock, mut reads) = counting_clock();
        cfg.clock = clock;
        cfg.max_queued_readings = BOUND;
        let batches = modbus::plan_reads(&cfg.devices[0].profile).len() as i64;
        // One clock read per batch, one for the answer.
        let per_poll = batches + 1;
        let (mut rx, stop, task) = start(cfg, 1);
        within(
            "twenty polls",
            reads.wait_for(|&n| n >= 20 * per_poll as u64),
        )
        .await
        .unwrap();
        stop.cancel();
        let got = rest(&mut rx).await;
        within("the bus task", task).await.unwrap();
        let stats = last_stats(&got);
        assert_eq!((stats.timeouts, stats.bad_frames), (0, 0), "{stats:?}");
        oldest_readings_were_dropped(&got, per_poll, stats.replies / batches as u64);
    }

    #[tokio::test]
    async fn modbus_stops_promptly_on_shutdown_while_the_service_is_not_reading() {
        let meter = meter();
        let (clock, mut reads) = counting_clock();
        let mut cfg = bus(meter.port.to_str().unwrap());
        cfg.clock = clock;
        let (_unread, stop, task) = start(cfg, 1);
        within("polls", reads.wait_for(|&n| n >= 20)).await.unwrap();
        stops_promptly(&stop, task).await;
    }

    #[tokio::test]
    async fn modbus_reopens_a_port_that_vanished_and_says_so() {
        reopens_a_port_that_vanished_and_says_so(meter, |port| start(bus(port), 64)).await;
    }
}

mod dlt645_bus {
    use super::*;

    /// Phase-A voltage only, as often as the line allows: one reading, two clock reads a turn.
    fn bus(port: &str) -> Dlt645BusConfig {
        let mut cfg = meters::dlt645_bus("dlt645", port);
        cfg.inter_frame_ms = 1;
        cfg.devices[0].polls = vec![Poll {
            di: Di(0x0201_0100),
            every: Duration::from_millis(10),
        }];
        cfg
    }

    fn start(
        cfg: Dlt645BusConfig,
        capacity: usize,
    ) -> (
        mpsc::Receiver<MeterMessage>,
        CancellationToken,
        JoinHandle<()>,
    ) {
        let (tx, rx) = mpsc::channel(capacity);
        let stop = CancellationToken::new();
        let task = tokio::spawn(dlt645::run(cfg, tx, stop.clone()));
        (rx, stop, task)
    }

    fn meter() -> SimMeter {
        meters::start_dlt645_meter(supply()).unwrap()
    }

    #[tokio::test]
    async fn dlt645_events_queue_in_the_source_and_none_is_dropped_when_the_service_is_slow() {
        let mut cfg = bus("/dev/kare-no-such-port");
        cfg.devices = (0..50)
            .map(|i| {
                let mut d = Dlt645Device::new(&format!("m{i}"), None);
                d.address = Some(format!("{i:012}").parse().unwrap());
                d
            })
            .collect();
        let (mut rx, stop, task) = start(cfg, 1);
        let mut got = Vec::new();
        until(&mut rx, &mut got, "fifty offline events", |all| {
            offline_devices(all).len() >= 50
        })
        .await;
        let expected: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
        assert_eq!(offline_devices(&got), expected, "all of them, in order");
        stops_promptly(&stop, task).await;
    }

    #[tokio::test]
    async fn dlt645_readings_drop_the_oldest_when_the_service_is_slow_and_count_them() {
        let meter = meter();
        let mut cfg = bus(meter.port.to_str().unwrap());
        let (clock, mut reads) = counting_clock();
        cfg.clock = clock;
        cfg.max_queued_readings = BOUND;
        let (mut rx, stop, task) = start(cfg, 1);
        within("twenty polls", reads.wait_for(|&n| n >= 40))
            .await
            .unwrap();
        stop.cancel();
        let got = rest(&mut rx).await;
        within("the bus task", task).await.unwrap();
        let stats = last_stats(&got);
        assert_eq!((stats.timeouts, stats.bad_frames), (0, 0), "{stats:?}");
        // One request per turn: the reading's stamp, then the answer's.
        oldest_readings_were_dropped(&got, 2, stats.replies);
    }

    #[tokio::test]
    async fn dlt645_stops_promptly_on_shutdown_while_the_service_is_not_reading() {
        let meter = meter();
        let (clock, mut reads) = counting_clock();
        let mut cfg = bus(meter.port.to_str().unwrap());
        cfg.clock = clock;
        let (_unread, stop, task) = start(cfg, 1);
        within("polls", reads.wait_for(|&n| n >= 20)).await.unwrap();
        stops_promptly(&stop, task).await;
    }

    #[tokio::test]
    async fn dlt645_reopens_a_port_that_vanished_and_says_so() {
        reopens_a_port_that_vanished_and_says_so(meter, |port| start(bus(port), 64)).await;
    }
}
