//! kare's DL/T 645 poller against the real meter simulator of the PyPI `dlt645` package (3.2.0),
//! run by `tests/peers/dlt645_meter.py` behind an RS-485 bus emulator on pseudo-terminals.
//!
//! The simulator implements reads of energy (00), demand (01), variables (02), event records
//! (03) and parameters (04), read address (13) and broadcast time set (08). It does not
//! implement load profiles (06: it answers D1 "other error"), follow-up reads (12), or silence
//! for frames to other addresses (the bus emulator provides that). Load profiles and
//! multi-frame replies are therefore tested at the codec level (`dlt645_codec.rs`) and against
//! a scripted meter (`dlt645_poller.rs`). One departure from the standard: the simulator reads
//! the broadcast time-set data in natural order (YY first) where the standard sends the lowest
//! unit first (`ss mm hh DD MM YY`, as kare does and as other implementations read it), so the
//! test checks the bytes that reached the meter, not the simulator's clock.
//!
//! The Python environment comes from `scripts/peers-venv` (run once per test binary; it does
//! nothing when `.venv` is complete). If it cannot be made, the tests fail and say why.

// Test names carry the protocol (`cargo test -p kare dlt645` runs them all).
mod dlt645 {
    use chrono::{Duration as ChronoDuration, NaiveDate, TimeZone, Utc};
    use kare::sources::meters::dlt645::codec::{Address, Di, IdentifierTable};
    use kare::sources::meters::dlt645::{run, Dlt645BusConfig, Dlt645Device, Parity, Poll};
    use kare::sources::meters::readings::{BusStats, MeterEvent, MeterMessage, Quantity};
    use serde_json::{json, Value as Json};
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Once};
    use std::time::Duration;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::process::{Child, ChildStdin, Command};
    use tokio::sync::mpsc;
    use tokio::time::Instant;
    use tokio_util::sync::CancellationToken;

    const WAIT: Duration = Duration::from_secs(30);

    fn repo_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("edge-service is inside the repository")
            .to_path_buf()
    }

    /// The venv's Python, after making sure the venv exists.
    fn python() -> PathBuf {
        static SETUP: Once = Once::new();
        let root = repo_root();
        SETUP.call_once(|| {
            let script = root.join("scripts/peers-venv");
            match std::process::Command::new(&script).status() {
                Ok(s) if s.success() => {}
                other => panic!(
                    "the DL/T 645 peer tests need {}/.venv with the PyPI dlt645 package, and {} \
                 could not make it ({other:?}); it needs python3 with the venv module and access \
                 to PyPI",
                    root.display(),
                    script.display()
                ),
            }
        });
        root.join(".venv/bin/python")
    }

    /// The simulator process: its bus port, its stdout lines, its stdin for commands.
    struct Peer {
        _child: Child,
        stdin: ChildStdin,
        lines: mpsc::UnboundedReceiver<Json>,
        seen: Vec<Json>,
        port: String,
        next_id: u64,
        _spec: tempfile::NamedTempFile,
    }

    impl Peer {
        async fn start(spec: Json) -> Peer {
            let py = python();
            let spec_file = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(spec_file.path(), spec.to_string()).unwrap();
            let mut child = Command::new(py)
                .arg(repo_root().join("tests/peers/dlt645_meter.py"))
                .arg(spec_file.path())
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("start the dlt645 simulator");
            let stdout = child.stdout.take().unwrap();
            let stdin = child.stdin.take().unwrap();
            let (tx, lines) = mpsc::unbounded_channel();
            tokio::spawn(async move {
                let mut out = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = out.next_line().await {
                    match serde_json::from_str::<Json>(&line) {
                        Ok(v) => {
                            let _ = tx.send(v);
                        }
                        Err(_) => eprintln!("simulator: {line}"),
                    }
                }
            });
            let mut peer = Peer {
                _child: child,
                stdin,
                lines,
                seen: Vec::new(),
                port: String::new(),
                next_id: 0,
                _spec: spec_file,
            };
            let ready = peer
                .wait_line("the simulator ready", |v| v["ready"] == true)
                .await;
            peer.port = ready["port"].as_str().unwrap().to_string();
            peer
        }

        /// Waits for a stdout line matching `pred` (lines seen before are searched first).
        async fn wait_line(&mut self, what: &str, pred: impl Fn(&Json) -> bool) -> Json {
            if let Some(v) = self.seen.iter().find(|v| pred(v)) {
                return v.clone();
            }
            let deadline = Instant::now() + WAIT;
            loop {
                match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                    Ok(Some(v)) => {
                        self.seen.push(v.clone());
                        if pred(&v) {
                            return v;
                        }
                    }
                    Ok(None) => panic!("the simulator exited while waiting for {what}"),
                    Err(_) => panic!(
                        "timed out waiting for {what}; simulator said {:?}",
                        self.seen
                    ),
                }
            }
        }

        /// Sends a command and waits for its acknowledgement.
        async fn command(&mut self, mut cmd: Json) {
            self.next_id += 1;
            let id = self.next_id;
            cmd["id"] = json!(id);
            let line = format!("{cmd}\n");
            self.stdin.write_all(line.as_bytes()).await.unwrap();
            self.stdin.flush().await.unwrap();
            self.wait_line(&format!("ack of {cmd}"), |v| v["ack"] == id)
                .await;
        }
    }

    /// Everything the poller sent, and waiting on it with a deadline.
    struct Inbox {
        rx: mpsc::Receiver<MeterMessage>,
        all: Vec<MeterMessage>,
    }

    impl Inbox {
        async fn until<T>(
            &mut self,
            what: &str,
            mut check: impl FnMut(&[MeterMessage]) -> Option<T>,
        ) -> T {
            let deadline = Instant::now() + WAIT;
            loop {
                if let Some(t) = check(&self.all) {
                    return t;
                }
                match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                    Ok(Some(m)) => self.all.push(m),
                    Ok(None) => panic!("the poller stopped while waiting for {what}"),
                    Err(_) => panic!(
                        "timed out waiting for {what}; events so far: {:#?}; last stats: {:?}",
                        events(&self.all),
                        last_stats(&self.all)
                    ),
                }
            }
        }
    }

    fn events(all: &[MeterMessage]) -> Vec<&MeterEvent> {
        all.iter()
            .filter_map(|m| match m {
                MeterMessage::Event(e) => Some(e),
                _ => None,
            })
            .collect()
    }

    fn last_stats(all: &[MeterMessage]) -> Option<&BusStats> {
        all.iter().rev().find_map(|m| match m {
            MeterMessage::Stats(_, s) => Some(s),
            _ => None,
        })
    }

    /// The latest value of `quantity` from `device` among `all`.
    fn latest(all: &[MeterMessage], device: &str, quantity: Quantity) -> Option<f64> {
        all.iter().rev().find_map(|m| match m {
            MeterMessage::Readings(rs) => rs
                .iter()
                .rev()
                .find(|r| &*r.device == device && r.quantity == quantity)
                .map(|r| r.value),
            _ => None,
        })
    }

    /// How many readings of `quantity` from `device` are in `all`.
    fn count(all: &[MeterMessage], device: &str, quantity: Quantity) -> usize {
        all.iter()
            .map(|m| match m {
                MeterMessage::Readings(rs) => rs
                    .iter()
                    .filter(|r| &*r.device == device && r.quantity == quantity)
                    .count(),
                _ => 0,
            })
            .sum()
    }

    fn offline<'a>(all: &'a [MeterMessage], device: &str) -> Option<&'a str> {
        events(all).into_iter().find_map(|e| match e {
            MeterEvent::Offline {
                device: d, reason, ..
            } if &**d == device => Some(reason.as_str()),
            _ => None,
        })
    }

    fn bus(port: &str, devices: Vec<Dlt645Device>) -> Dlt645BusConfig {
        let mut cfg = Dlt645BusConfig::new("rs485-1", port);
        // A pseudo-terminal has no baud rate and no parity.
        cfg.baud = 9600;
        cfg.parity = Parity::None;
        cfg.timeout = Duration::from_millis(300);
        cfg.retries = 1;
        cfg.inter_frame_ms = 5;
        cfg.offline_after = 2;
        cfg.max_backoff = Duration::from_millis(400);
        cfg.devices = devices;
        cfg
    }

    fn device(name: &str, address: Option<&str>, dis: &[u32], every_ms: u64) -> Dlt645Device {
        Dlt645Device {
            name: name.into(),
            address: address.map(|a| a.parse::<Address>().unwrap()),
            polls: dis
                .iter()
                .map(|&d| Poll {
                    di: Di(d),
                    every: Duration::from_millis(every_ms),
                })
                .collect(),
            broadcast_time_set: false,
        }
    }

    /// Starts the poller on `cfg`; stops it when the returned sender is dropped or set.
    fn start(cfg: Dlt645BusConfig) -> (Inbox, CancellationToken) {
        // A small channel: the poller must queue, not wait or drop events, when it is full.
        let (tx, rx) = mpsc::channel(8);
        let stop = CancellationToken::new();
        let shutdown = stop.clone();
        tokio::spawn(run(cfg, tx, shutdown));
        (
            Inbox {
                rx,
                all: Vec::new(),
            },
            stop,
        )
    }

    #[tokio::test]
    async fn reads_what_the_simulator_holds() {
        let mut peer = Peer::start(json!({"meters": [
            {"address": "123456789012",
             "variables": {"02010100": 220.1, "02010200": 221.3, "02010300": 219.8,
                           "02020100": -1.234, "02020200": 5.678, "02030000": 12.3456,
                           "02040000": -1.5, "02050000": 12.5, "02060000": 0.987,
                           "02800002": 50.02, "02800004": 11.1111},
             "energy": {"00010000": 12345.67, "00020000": 89.01},
             "demand": {"01010000": [7.6543, "2501021530"]},
             "events": {"03110000": ["000003"],
                        "03110001": ["250102030405", "250102031005"]}},
            {"address": "000000000002", "variables": {"02010100": 230.5}}
        ]}))
        .await;
        let mut m1 = device(
            "m1",
            Some("123456789012"),
            &[
                0x0201_0100,
                0x0201_0200,
                0x0201_0300,
                0x0202_0100,
                0x0202_0200,
                0x0203_0000,
                0x0204_0000,
                0x0205_0000,
                0x0206_0000,
                0x0280_0002,
                0x0280_0004,
                0x0001_0000,
                0x0002_0000,
                0x0101_0000,
                0x0311_0000,
                0x0311_0001,
                0x0600_0001, // the simulator has no load profile: refused, not a failure
                0x0299_0000, // not in the table: not polled (warned at start)
            ],
            150,
        );
        m1.broadcast_time_set = true;
        let m2 = device("m2", Some("000000000002"), &[0x0201_0100, 0x0311_0001], 150);
        // No meter has this address: it must go offline without holding the others up.
        let ghost = device("ghost", Some("111111111111"), &[0x0201_0100], 150);
        let started = Instant::now();
        let (mut inbox, _stop) = start(bus(&peer.port, vec![m1, m2, ghost]));

        let want = [
            (Quantity::VoltageA, 220.1),
            (Quantity::VoltageB, 221.3),
            (Quantity::VoltageC, 219.8),
            (Quantity::CurrentA, -1.234),
            (Quantity::CurrentB, 5.678),
            (Quantity::ActivePowerTotal, 12.3456),
            (Quantity::ReactivePowerTotal, -1.5),
            (Quantity::ApparentPowerTotal, 12.5),
            (Quantity::PowerFactorTotal, 0.987),
            (Quantity::Frequency, 50.02),
            (Quantity::DemandKw, 11.1111),
            (Quantity::EnergyImportKwh, 12345.67),
            (Quantity::EnergyExportKwh, 89.01),
            (Quantity::MaxDemandKw, 7.6543),
            (Quantity::PowerDownCount, 3.0),
        ];
        inbox
            .until("every value of m1 and m2", |all| {
                let m1_done = want.iter().all(|&(q, _)| latest(all, "m1", q).is_some());
                (m1_done && latest(all, "m2", Quantity::VoltageA).is_some()).then_some(())
            })
            .await;
        for (q, v) in want {
            assert_eq!(latest(&inbox.all, "m1", q), Some(v), "{q:?}");
        }
        assert_eq!(latest(&inbox.all, "m2", Quantity::VoltageA), Some(230.5));
        let first_values = started.elapsed();

        // The power-down record, with the meter's times (+08:00), once.
        let power_downs = |all: &[MeterMessage]| -> Vec<MeterEvent> {
            events(all)
                .into_iter()
                .filter(|e| matches!(e, MeterEvent::PowerDown { .. }))
                .cloned()
                .collect()
        };
        inbox
            .until("the power-down event", |all| {
                (!power_downs(all).is_empty()).then_some(())
            })
            .await;
        let reads_so_far = count(&inbox.all, "m1", Quantity::PowerDownCount);
        inbox
            .until("three more reads of the power-down count", |all| {
                (count(all, "m1", Quantity::PowerDownCount) >= reads_so_far + 3).then_some(())
            })
            .await;
        let pd = power_downs(&inbox.all);
        assert_eq!(pd.len(), 1, "{pd:#?}");
        let MeterEvent::PowerDown {
            device, start, end, ..
        } = &pd[0]
        else {
            unreachable!()
        };
        assert_eq!(&**device, "m1");
        assert_eq!(*start, Utc.with_ymd_and_hms(2025, 1, 1, 19, 4, 5).unwrap());
        assert_eq!(
            *end,
            Some(Utc.with_ymd_and_hms(2025, 1, 1, 19, 10, 5).unwrap())
        );

        // The ghost goes offline; the meters never do.
        let reason = inbox
            .until("the ghost offline", |all| {
                offline(all, "ghost").map(str::to_string)
            })
            .await;
        assert!(reason.contains("no reply within 300 ms"), "{reason}");
        assert!(offline(&inbox.all, "m1").is_none());
        assert!(offline(&inbox.all, "m2").is_none());
        let stats = last_stats(&inbox.all).unwrap().clone();
        assert!(stats.error_replies >= 1, "load-profile refusals: {stats:?}");
        assert!(stats.timeouts >= 2, "the ghost: {stats:?}");
        assert!(stats.requests > stats.replies, "{stats:?}");
        assert!(stats.last_cycle_ms > 0.0);

        // Broadcast time set reached both meters: ss mm hh DD MM YY of now at +08:00.
        for meter in ["123456789012", "000000000002"] {
            let v = peer
                .wait_line("a broadcast time set", |v| {
                    v["event"] == "time_set" && v["meter"] == meter
                })
                .await;
            let b: Vec<u32> = hex_bytes(v["data"].as_str().unwrap());
            let bcd = |x: u32| (x >> 4) * 10 + (x & 0xF);
            let sent = NaiveDate::from_ymd_opt(2000 + bcd(b[5]) as i32, bcd(b[4]), bcd(b[3]))
                .unwrap()
                .and_hms_opt(bcd(b[2]), bcd(b[1]), bcd(b[0]))
                .unwrap();
            let now_cst = (Utc::now() + ChronoDuration::hours(8)).naive_utc();
            assert!(
                (now_cst - sent).num_seconds().abs() < 120,
                "sent {sent}, now {now_cst} at +08:00"
            );
        }
        eprintln!(
            "first values after {first_values:?}; test took {:?}",
            started.elapsed()
        );
    }

    fn hex_bytes(s: &str) -> Vec<u32> {
        (0..s.len())
            .step_by(2)
            .map(|i| u32::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn discovers_the_address_of_a_meter_alone_on_the_bus() {
        let peer = Peer::start(json!({"meters": [
            {"address": "202501020304", "variables": {"02010100": 231.7}}
        ]}))
        .await;
        let lone = device("lone", None, &[0x0201_0100], 200);
        let (mut inbox, _stop) = start(bus(&peer.port, vec![lone]));
        let v = inbox
            .until("a reading from the discovered meter", |all| {
                latest(all, "lone", Quantity::VoltageA)
            })
            .await;
        assert_eq!(v, 231.7);
    }

    #[tokio::test]
    async fn a_meter_that_stops_answering_goes_offline_and_comes_back() {
        let mut peer = Peer::start(json!({"meters": [
            {"address": "123456789012", "variables": {"02010100": 220.0}},
            {"address": "000000000002", "variables": {"02010100": 230.0}}
        ]}))
        .await;
        let a = device("a", Some("123456789012"), &[0x0201_0100], 100);
        let b = device("b", Some("000000000002"), &[0x0201_0100], 100);
        let (mut inbox, _stop) = start(bus(&peer.port, vec![a, b]));
        inbox
            .until("readings from both", |all| {
                (latest(all, "a", Quantity::VoltageA).is_some()
                    && latest(all, "b", Quantity::VoltageA).is_some())
                .then_some(())
            })
            .await;

        peer.command(json!({"cmd": "mute", "meter": "123456789012"}))
            .await;
        let reason = inbox
            .until("a offline", |all| offline(all, "a").map(str::to_string))
            .await;
        assert!(reason.contains("no reply"), "{reason}");
        // b is not starved while a is away.
        let b_then = count(&inbox.all, "b", Quantity::VoltageA);
        inbox
            .until("b read five more times while a is offline", |all| {
                (count(all, "b", Quantity::VoltageA) >= b_then + 5).then_some(())
            })
            .await;
        assert!(
            !events(&inbox.all)
                .iter()
                .any(|e| matches!(e, MeterEvent::Online { .. })),
            "a came back while muted"
        );

        peer.command(json!({"cmd": "unmute", "meter": "123456789012"}))
            .await;
        inbox
            .until("a online again", |all| {
                events(all)
                    .iter()
                    .any(|e| matches!(e, MeterEvent::Online { device, .. } if &**device == "a"))
                    .then_some(())
            })
            .await;
        let a_then = count(&inbox.all, "a", Quantity::VoltageA);
        inbox
            .until("a read again", |all| {
                (count(all, "a", Quantity::VoltageA) > a_then).then_some(())
            })
            .await;
        assert!(offline(&inbox.all, "b").is_none());
    }

    #[tokio::test]
    async fn garbled_replies_and_unknown_identifiers_are_counted_and_survived() {
        let mut peer = Peer::start(json!({"meters": [
            {"address": "123456789012", "variables": {"02010100": 220.1}}
        ]}))
        .await;
        // A site's extra identifier the meter does not have: it answers D1 "no data requested".
        let table = IdentifierTable::builtin()
            .with_toml(
                "[[identifier]]\ndi = \"02FF0000\"\nname = \"vendor value\"\nformat = \"XXX.X\"\n\
             bytes = 2\nunit = \"\"\n",
                "extra",
            )
            .unwrap();
        let mut cfg = bus(
            &peer.port,
            vec![device(
                "m",
                Some("123456789012"),
                &[0x0201_0100, 0x02FF_0000],
                100,
            )],
        );
        cfg.table = Arc::new(table);
        let (mut inbox, _stop) = start(cfg);
        inbox
            .until("a refusal counted", |all| {
                last_stats(all)
                    .is_some_and(|s| s.error_replies >= 1)
                    .then_some(())
            })
            .await;
        assert_eq!(latest(&inbox.all, "m", Quantity::VoltageA), Some(220.1));

        // A reply with a flipped checksum bit: counted, retried, and the next poll is fine.
        let before = last_stats(&inbox.all).unwrap().bad_frames;
        peer.command(json!({"cmd": "garble", "meter": "123456789012", "mode": "checksum"}))
            .await;
        let at = inbox
            .until("the bad frame counted", |all| {
                all.iter()
                    .position(|m| matches!(m, MeterMessage::Stats(_, s) if s.bad_frames > before))
            })
            .await;
        inbox
            .until("a good reading after the bad frame", |all| {
                (latest(&all[at..], "m", Quantity::VoltageA) == Some(220.1)).then_some(())
            })
            .await;

        // Line noise with a 68 in it just before a reply: skipped, the reply is read.
        peer.command(json!({"cmd": "garble", "meter": "123456789012", "mode": "noise"}))
            .await;
        let n = inbox.all.len();
        peer.command(
            json!({"cmd": "set", "meter": "123456789012", "kind": "variables",
                        "di": "02010100", "value": 219.9}),
        )
        .await;
        inbox
            .until("the new value", |all| {
                (latest(&all[n..], "m", Quantity::VoltageA) == Some(219.9)).then_some(())
            })
            .await;
        assert!(
            offline(&inbox.all, "m").is_none(),
            "{:#?}",
            events(&inbox.all)
        );
    }
}
