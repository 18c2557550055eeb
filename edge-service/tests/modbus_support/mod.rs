//! Test bench for the Modbus poller against a real Modbus RTU slave: pymodbus
//! (`tests/peers/modbus_server.py`) on a pseudo-terminal.
//!
//! Wiring. Both ends need a *path* to open: tokio-serial opens a port by path, and so does
//! pymodbus (through pyserial; it cannot serve on an inherited file descriptor). One pty pair
//! gives one path, so the bench opens two pairs and relays bytes between their masters in a
//! thread:
//!
//! ```text
//!  poller ── tokio-serial ── /dev/pts/A ═ master A ─┐ relay thread ┌─ master B ═ /dev/pts/B ── pyserial ── pymodbus
//! ```
//!
//! The relay is also where the bus misbehaves on purpose: it can garble the replies of one
//! slave id, and pace the bytes at a baud rate (a pty moves bytes instantly, so the benchmark
//! asks the relay to deliver each chunk when it would have finished arriving on a real line).
//! Killing the Python process leaves the relay and the poller's port up, as a dead meter leaves
//! the RS-485 line; a new process opens the same path.
//!
//! Pseudo-terminals do not implement parity, so everything here runs 8N1.
//!
//! Shared by `tests/modbus_peer.rs` and `benches/modbus_poll.rs` (each uses part of it).
#![allow(dead_code)]

use kare::sim::pty::Pty;
use kare::sources::meters::modbus::{
    self, ModbusBusConfig, ModbusDevice, Profile, Register, RegisterKind,
};
use kare::sources::meters::readings::{BusStats, MeterEvent, MeterMessage, MeterReading, Quantity};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The repository root (the edge-service crate's parent).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("edge-service has a parent")
        .to_path_buf()
}

/// The virtual environment's python, with pymodbus. `scripts/peers-venv` creates or completes
/// `.venv` (it costs one file check when everything is installed), so a missing venv is made,
/// never a reason to skip.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let root = repo_root();
            let script = root.join("scripts/peers-venv");
            let status = Command::new(&script)
                .current_dir(&root)
                .status()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
            assert!(
                status.success(),
                "{} failed ({status}): the Modbus peer tests need python3 with the venv module \
                 and access to PyPI for pymodbus",
                script.display()
            );
            let py = root.join(".venv/bin/python");
            assert!(py.exists(), "{} missing after peers-venv", py.display());
            py
        })
        .clone()
}

/// Misbehaviour the relay adds to the line.
#[derive(Default)]
struct Faults {
    /// Replies from this slave id get their CRC damaged (0: none).
    garble_slave: AtomicU8,
    /// The meter's baud rate: requests sent at another one are dropped, as a meter hears only
    /// framing errors from a master at the wrong speed (0: any baud).
    meter_baud: AtomicU32,
}

/// Two pty pairs and the relay between them: the poller opens `port`, the peer `peer_port`.
pub struct Bus {
    /// Where the poller's tokio-serial connects.
    pub port: PathBuf,
    /// Where pymodbus serves.
    pub peer_port: PathBuf,
    faults: Arc<Faults>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Bus {
    /// A bus; with `pace_baud`, bytes are delivered no faster than that baud rate (8N1).
    pub fn new(pace_baud: Option<u32>) -> Bus {
        let poller_side = Pty::open().expect("pty for the poller");
        let peer_side = Pty::open().expect("pty for the peer");
        let (port, peer_port) = (poller_side.path.clone(), peer_side.path.clone());
        let faults = Arc::new(Faults::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (f, s) = (faults.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("modbus-relay".into())
            .spawn(move || relay(poller_side, peer_side, &f, &s, pace_baud))
            .expect("relay thread");
        Bus {
            port,
            peer_port,
            faults,
            stop,
            thread: Some(thread),
        }
    }

    /// From now on, the meter listens only to requests sent at `baud` (the baud rate the
    /// poller set on its side of the pty; a pty itself moves bytes at any setting).
    pub fn meter_at_baud(&self, baud: u32) {
        self.faults.meter_baud.store(baud, Ordering::SeqCst);
    }

    /// From now on, damage every reply that slave `id` sends (0: stop).
    pub fn garble_replies_from(&self, id: u8) {
        self.faults.garble_slave.store(id, Ordering::SeqCst);
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn relay(a: Pty, b: Pty, faults: &Faults, stop: &AtomicBool, pace_baud: Option<u32>) {
    let mut buf = [0u8; 1024];
    // RS-485 is half duplex: one clock for both directions.
    let mut line_free = Instant::now();
    let mut last_direction: Option<usize> = None;
    while !stop.load(Ordering::SeqCst) {
        let mut fds = [
            libc::pollfd {
                fd: a.master.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: b.master.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfd structs owned by this frame; the descriptors stay open for
        // the call (a and b are owned here).
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, 20) };
        if n <= 0 {
            continue;
        }
        for (i, fd) in fds.iter().enumerate() {
            if fd.revents & libc::POLLIN == 0 {
                if fd.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                    // Not expected (each Pty keeps its slave open); avoid spinning if it happens.
                    std::thread::sleep(Duration::from_millis(5));
                }
                continue;
            }
            let (mut from, mut to) = if i == 0 {
                (&a.master, &b.master)
            } else {
                (&b.master, &a.master)
            };
            let n = match from.read(&mut buf) {
                Ok(n) if n > 0 => n,
                _ => continue,
            };
            let chunk = &mut buf[..n];
            let meter_baud = faults.meter_baud.load(Ordering::SeqCst);
            if i == 0 && meter_baud != 0 && line_baud(&a) != Some(meter_baud) {
                continue;
            }
            // pymodbus writes a reply in one write, so a chunk from the peer starts a frame.
            let garble = faults.garble_slave.load(Ordering::SeqCst);
            if i == 1 && garble != 0 && chunk[0] == garble {
                chunk[n - 1] ^= 0x5A;
            }
            if let Some(baud) = pace_baud {
                let char_time = 10.0 / f64::from(baud);
                let on_wire = Duration::from_secs_f64(n as f64 * char_time);
                // A frame in the other direction starts no sooner than 3.5 characters after
                // the last one ended: a real slave only knows the request is complete after
                // that silence (pymodbus frames by length and would answer at once). The
                // poller keeps the same silence itself before its requests.
                let silence = if last_direction == Some(i) {
                    Duration::ZERO
                } else {
                    Duration::from_secs_f64(3.5 * char_time)
                };
                last_direction = Some(i);
                line_free = (line_free + silence).max(Instant::now()) + on_wire;
                let now = Instant::now();
                if line_free > now {
                    std::thread::sleep(line_free - now);
                }
            }
            let _ = to.write_all(chunk);
        }
    }
}

/// The baud rate set on a pty pair (termios is shared by both ends; tokio-serial sets the
/// speed with termios2's BOTHER, so it is read back the same way).
fn line_baud(pty: &Pty) -> Option<u32> {
    // SAFETY: termios2 is plain data, zero is a valid value; TCGETS2 fills it from a valid,
    // open descriptor owned by `pty`.
    let mut t: libc::termios2 = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::ioctl(pty.master.as_raw_fd(), libc::TCGETS2, &mut t) };
    (r == 0).then_some(t.c_ospeed)
}

/// What one slave id holds: 16-bit words per table, by address.
#[derive(Clone, Debug, Default)]
pub struct PeerDevice {
    /// Slave id.
    pub id: u8,
    input: BTreeMap<u16, u16>,
    holding: BTreeMap<u16, u16>,
}

impl PeerDevice {
    /// A device with nothing in it.
    pub fn new(id: u8) -> PeerDevice {
        PeerDevice {
            id,
            ..Default::default()
        }
    }

    /// Puts raw words at an address.
    pub fn words(&mut self, kind: RegisterKind, address: u16, words: &[u16]) -> &mut Self {
        let table = match kind {
            RegisterKind::Input => &mut self.input,
            RegisterKind::Holding => &mut self.holding,
        };
        for (i, w) in words.iter().enumerate() {
            table.insert(address + i as u16, *w);
        }
        self
    }

    /// Puts `value` where `reg` says, encoded as `reg` says.
    pub fn value(&mut self, reg: &Register, value: f64) -> &mut Self {
        let words = reg.encode(value);
        self.words(reg.kind, reg.address, &words)
    }

    /// Blocks for the JSON: runs of set registers, holes of up to 125 registers filled with
    /// zeros (a real meter answers for the reserved addresses inside its map, and the poller
    /// reads through short gaps); anything further apart is a separate block, with undefined
    /// addresses between (exception 02).
    fn blocks(table: &BTreeMap<u16, u16>) -> serde_json::Value {
        let mut blocks: Vec<(u16, Vec<u16>)> = Vec::new();
        for (&a, &w) in table {
            match blocks.last_mut() {
                Some((start, words))
                    if u32::from(a) <= u32::from(*start) + words.len() as u32 + 125 =>
                {
                    let at = usize::from(a - *start);
                    words.resize(at, 0);
                    words.push(w);
                }
                _ => blocks.push((a, vec![w])),
            }
        }
        serde_json::Value::Array(
            blocks
                .into_iter()
                .map(|(a, w)| serde_json::json!({"address": a, "values": w}))
                .collect(),
        )
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "input": Self::blocks(&self.input),
            "holding": Self::blocks(&self.holding),
        })
    }
}

/// The pymodbus process serving on a bus.
pub struct Peer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: PathBuf,
    starts: u32,
}

impl Peer {
    /// Starts pymodbus with these devices on the bus's peer side and waits for "ready".
    pub fn start(bus: &Bus, devices: &[PeerDevice]) -> Peer {
        Peer::start_at(&bus.peer_port, devices)
    }

    /// Starts pymodbus serving `endpoint`: a serial path, or `tcp:HOST:PORT` (Modbus TCP) or
    /// `rtu-tcp:HOST:PORT` (RTU frames over TCP, a transparent gateway).
    pub fn start_at(endpoint: &Path, devices: &[PeerDevice]) -> Peer {
        let dir = tempfile::tempdir().expect("temp dir");
        let cfg = serde_json::json!({
            "baud": 9600,
            "devices": devices.iter().map(PeerDevice::json).collect::<Vec<_>>(),
        });
        std::fs::write(dir.path().join("peer.json"), cfg.to_string()).expect("write peer.json");
        let mut peer = Peer {
            child: None,
            dir,
            port: endpoint.to_path_buf(),
            starts: 0,
        };
        peer.spawn();
        peer
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log = std::fs::File::create(self.dir.path().join(format!("peer-{}.log", self.starts)))
            .expect("peer log");
        let script = repo_root().join("tests/peers/modbus_server.py");
        let mut child = Command::new(python())
            .arg(&script)
            .arg(&self.port)
            .arg(self.dir.path().join("peer.json"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", script.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        self.child = Some(child);
        // Importing pymodbus takes a second or two on a busy machine.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.trim() == "ready" => return,
                Ok(_) => continue,
                Err(e) => panic!("pymodbus peer not ready ({e}); its log:\n{}", self.log()),
            }
        }
    }

    /// Kills the process (the meter goes silent; the line stays).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A new process with the same registers on the same path.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Everything the peer wrote to stderr, every run.
    pub fn log(&self) -> String {
        let mut all = String::new();
        for i in 1..=self.starts {
            let p = self.dir.path().join(format!("peer-{i}.log"));
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let tail: String = text
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            all.push_str(&format!("--- run {i} ---\n{tail}\n"));
        }
        all
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Test settings: fast polls, short timeouts, quick back-off.
pub fn bus_config(port: &Path, devices: Vec<ModbusDevice>) -> ModbusBusConfig {
    let mut c = ModbusBusConfig::new("rs485-test", port.to_string_lossy(), 9600);
    c.timeout = Duration::from_millis(400);
    c.retries = 1;
    c.offline_after = 2;
    c.max_backoff = Duration::from_millis(800);
    c.devices = devices;
    c
}

/// A device entry.
pub fn device(name: &str, slave_id: u8, profile: Profile, poll_every: Duration) -> ModbusDevice {
    ModbusDevice {
        name: name.into(),
        slave_id,
        profile: Arc::new(profile),
        poll_every,
    }
}

/// What the poller sent, as received so far.
pub struct Inbox {
    rx: mpsc::Receiver<MeterMessage>,
    /// Every reading, in order.
    pub readings: Vec<MeterReading>,
    /// Every event, in order.
    pub events: Vec<MeterEvent>,
    /// Readings messages (one per poll with values), in order: device and first time stamp.
    pub polls: Vec<(String, chrono::DateTime<chrono::Utc>)>,
    /// The newest counters.
    pub stats: BusStats,
}

/// A running poller: its messages, its stop switch and its task.
pub struct Running {
    /// Messages.
    pub inbox: Inbox,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), modbus::ModbusError>>,
}

impl Running {
    /// Starts `run` on the current runtime.
    pub fn start(cfg: ModbusBusConfig) -> Running {
        let (tx, rx) = mpsc::channel(64);
        let stop = CancellationToken::new();
        let stop_rx = stop.clone();
        let task = tokio::spawn(modbus::run(cfg, tx, stop_rx));
        Running {
            inbox: Inbox {
                rx,
                readings: Vec::new(),
                events: Vec::new(),
                polls: Vec::new(),
                stats: BusStats::default(),
            },
            stop,
            task,
        }
    }

    /// Stops the poller and waits for it to return (within 5 s).
    pub async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("poller stops within 5 s of shutdown")
            .expect("poller task did not panic")
            .expect("poller accepted its configuration");
    }
}

impl Inbox {
    fn take(&mut self, m: MeterMessage) {
        match m {
            MeterMessage::Readings(r) => {
                if let Some(first) = r.first() {
                    self.polls.push((first.device.to_string(), first.at));
                }
                self.readings.extend(r);
            }
            MeterMessage::Event(e) => self.events.push(e),
            MeterMessage::Stats(_, s) => self.stats = s,
            MeterMessage::Interval(_) => panic!("a Modbus meter keeps no load profile"),
        }
    }

    /// Receives until `done` holds; Err (with what was seen) at the deadline.
    pub async fn until(
        &mut self,
        within: Duration,
        what: &str,
        mut done: impl FnMut(&Inbox) -> bool,
    ) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + within;
        while !done(self) {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(m)) => self.take(m),
                Ok(None) => return Err(format!("the poller stopped while waiting for {what}")),
                Err(_) => {
                    return Err(format!(
                        "no {what} within {within:?}\nevents: {:#?}\nstats: {:?}\npolls: {}",
                        self.events,
                        self.stats,
                        self.polls.len()
                    ))
                }
            }
        }
        Ok(())
    }

    /// The newest value of a quantity from a device.
    pub fn latest(&self, device: &str, q: Quantity) -> Option<f64> {
        self.readings
            .iter()
            .rev()
            .find(|r| &*r.device == device && r.quantity == q)
            .map(|r| r.value)
    }

    /// Polls with values from a device so far.
    pub fn polls_of(&self, device: &str) -> usize {
        self.polls.iter().filter(|(d, _)| d == device).count()
    }

    /// Index of the first event matching `pred`, if any.
    pub fn event_index(&self, pred: impl Fn(&MeterEvent) -> bool) -> Option<usize> {
        self.events.iter().position(pred)
    }
}

/// Whether `e` is an Offline event of `device`.
pub fn is_offline(e: &MeterEvent, device: &str) -> bool {
    matches!(e, MeterEvent::Offline { device: d, .. } if &**d == device)
}

/// Whether `e` is an Online event of `device`.
pub fn is_online(e: &MeterEvent, device: &str) -> bool {
    matches!(e, MeterEvent::Online { device: d, .. } if &**d == device)
}
