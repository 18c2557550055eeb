//! Meter discovery (`kare commission`'s library) and the Modbus poller's TCP transports,
//! against real peers on loopback and pseudo-terminals: pymodbus as an RTU meter (behind the
//! `modbus_support` relay, which drops requests sent at a baud the meter does not use), as a
//! Modbus TCP server and as an RTU-over-TCP gateway; the PyPI `dlt645` simulator as a DL/T 645
//! meter. Test names sit in `mod discover` (`cargo test -p kare --test commission_discover`).

mod modbus_support;

mod discover {
    use super::modbus_support::*;
    use kare::commission::discover::{
        discover_dlt645, scan_bound, scan_rtu, scan_tcp, Framing, Parity, RtuScan, ScanProgress,
        Transport, DLT645_BAUDS,
    };
    use kare::sources::meters::modbus::{builtin_profile, ModbusBusConfig, RegisterKind};
    use kare::sources::meters::readings::Quantity;
    use std::path::Path;
    use std::time::{Duration, Instant};

    const DEADLINE: Duration = Duration::from_secs(30);

    /// An Eastron SDM630 as pymodbus holds it: three phase voltages and 50 Hz.
    fn sdm630(id: u8) -> PeerDevice {
        let profile = builtin_profile("eastron-sdm630").unwrap();
        let mut d = PeerDevice::new(id);
        for r in &profile.registers {
            let v = match r.quantity {
                Quantity::VoltageA => 230.1,
                Quantity::VoltageB => 231.2,
                Quantity::VoltageC => 229.8,
                Quantity::Frequency => 50.0,
                _ => 1.0,
            };
            d.value(r, v);
        }
        d
    }

    /// A device that answers reads but holds nothing any profile would call a meter.
    fn stranger(id: u8) -> PeerDevice {
        let mut d = PeerDevice::new(id);
        d.words(RegisterKind::Input, 0, &[0xFFFF; 80]);
        d
    }

    /// A TCP port nothing listens on yet (bound, read, released).
    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 0.01
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_meter_at_an_unexpected_address_and_baud_is_found_with_its_profile() {
        let bus = Bus::new(None);
        bus.meter_at_baud(4800);
        let _peer = Peer::start(&bus, &[sdm630(17)]);
        let mut scan = RtuScan::new(bus.port.to_string_lossy());
        scan.bauds = vec![2400, 4800, 9600];
        // Pseudo-terminals ignore parity: one parity keeps the test to what it shows.
        scan.parities = vec![Parity::None];
        scan.addresses = 1..=24;
        // Long enough for the Python peer behind a relay to begin its reply on a loaded machine.
        scan.timeout = Duration::from_millis(100);
        let mut seen: Vec<ScanProgress> = Vec::new();
        let found = scan_rtu(&scan, |p| seen.push(p)).await.unwrap();
        assert_eq!(found.len(), 1, "{found:#?}");
        let f = &found[0];
        assert_eq!((f.slave, f.baud, f.parity), (17, 4800, Parity::None));
        assert_eq!(f.transport, Transport::Rtu);
        assert_eq!(f.profile.as_deref(), Some("eastron-sdm630"), "{f:#?}");
        assert_eq!(f.candidates, ["eastron-sdm630"]);
        let v = f.voltages.expect("voltages read");
        assert!(
            close(v[0], 230.1) && close(v[1], 231.2) && close(v[2], 229.8),
            "{v:?}"
        );
        // The progress callback saw every probe, in order, and the find when it happened.
        assert_eq!(seen.len(), 72);
        assert!(seen.iter().all(|p| p.total == 72));
        assert_eq!(seen.last().unwrap().probed, 72);
        let at = seen.iter().position(|p| p.found == 1).unwrap();
        assert_eq!((seen[at].address, seen[at].baud), (17, 4800));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_device_that_answers_but_fits_no_profile_is_an_unknown_modbus_device() {
        let bus = Bus::new(None);
        let _peer = Peer::start(&bus, &[stranger(5)]);
        let mut scan = RtuScan::new(bus.port.to_string_lossy());
        scan.bauds = vec![9600];
        scan.parities = vec![Parity::None];
        scan.addresses = 4..=6;
        scan.timeout = Duration::from_millis(100);
        let found = scan_rtu(&scan, |_| {}).await.unwrap();
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].slave, 5);
        assert!(found[0].is_unknown(), "{found:#?}");
        assert_eq!(found[0].profile, None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_scan_stops_as_soon_as_every_expected_device_is_found() {
        let bus = Bus::new(None);
        bus.meter_at_baud(4800);
        let _peer = Peer::start(&bus, &[sdm630(17)]);
        let mut scan = RtuScan::new(bus.port.to_string_lossy());
        scan.parities = vec![Parity::None];
        scan.expect = vec![(17, Some(4800))];
        let started = Instant::now();
        let mut probes = 0;
        let found = scan_rtu(&scan, |_| probes += 1).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].slave, found[0].baud), (17, 4800));
        assert_eq!(
            probes, 1,
            "the expected address at its baud is probed first"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dead_bus_finds_nothing_within_the_bound() {
        let bus = Bus::new(None);
        let mut scan = RtuScan::new(bus.port.to_string_lossy());
        // The slow bauds, where the bound's slack (the silence a scan need not wait again after
        // a silent timeout) is widest: a loaded machine's timer lag fits inside it.
        scan.bauds = vec![2400, 4800];
        scan.parities = vec![Parity::None];
        scan.addresses = 1..=40;
        scan.timeout = Duration::from_millis(20);
        let bound = scan_bound(&scan);
        let started = Instant::now();
        let found = scan_rtu(&scan, |_| {}).await.unwrap();
        let took = started.elapsed();
        assert!(found.is_empty(), "{found:#?}");
        // The bound itself is the benchmark's to show (benches/commission_scan.rs); a test on a
        // shared machine allows scheduler lag on top.
        assert!(
            took <= bound + Duration::from_millis(1500),
            "took {took:?}, bound {bound:?}"
        );
        // And it did wait for each address: 80 probes of at least the timeout each.
        assert!(took >= Duration::from_millis(80 * 20), "{took:?}");
    }

    #[tokio::test]
    async fn a_port_that_cannot_be_opened_is_an_error_that_says_what_to_check() {
        let scan = RtuScan::new("/dev/kare-no-such-port");
        let e = scan_rtu(&scan, |_| {}).await.unwrap_err().to_string();
        assert!(
            e.starts_with("cannot open serial port /dev/kare-no-such-port at 2400 baud"),
            "{e}"
        );
        assert!(e.contains("systemctl stop kare"), "{e}");
    }

    /// A bus of one SDM630 at unit 1 reached through `transport`.
    fn tcp_bus(transport: Transport) -> ModbusBusConfig {
        let profile = builtin_profile("eastron-sdm630").unwrap();
        let mut cfg = bus_config(
            Path::new(""),
            vec![device("meter", 1, profile, Duration::from_millis(200))],
        );
        cfg.transport = transport;
        cfg
    }

    async fn polls_voltages_through(transport: Transport) {
        let mut running = Running::start(tcp_bus(transport));
        running
            .inbox
            .until(DEADLINE, "phase voltages", |i| {
                i.latest("meter", Quantity::VoltageC).is_some()
            })
            .await
            .unwrap();
        let i = &running.inbox;
        assert!(close(i.latest("meter", Quantity::VoltageA).unwrap(), 230.1));
        assert!(close(i.latest("meter", Quantity::VoltageC).unwrap(), 229.8));
        assert!(close(i.latest("meter", Quantity::Frequency).unwrap(), 50.0));
        running.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn transport_tcp_polls_a_modbus_tcp_meter() {
        let addr = format!("127.0.0.1:{}", free_port());
        let _peer = Peer::start_at(Path::new(&format!("tcp:{addr}")), &[sdm630(1)]);
        polls_voltages_through(Transport::Tcp(addr)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn transport_rtu_over_tcp_polls_through_a_transparent_gateway() {
        let addr = format!("127.0.0.1:{}", free_port());
        let _peer = Peer::start_at(Path::new(&format!("rtu-tcp:{addr}")), &[sdm630(1)]);
        polls_voltages_through(Transport::RtuOverTcp(addr)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tcp_bus_whose_gateway_is_down_reports_its_meters_offline_and_reconnects() {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut running = Running::start(tcp_bus(Transport::Tcp(addr.clone())));
        running
            .inbox
            .until(DEADLINE, "the meter offline", |i| {
                i.events.iter().any(|e| is_offline(e, "meter"))
            })
            .await
            .unwrap();
        let _peer = Peer::start_at(Path::new(&format!("tcp:{addr}")), &[sdm630(1)]);
        running
            .inbox
            .until(DEADLINE, "the meter online", |i| {
                i.events.iter().any(|e| is_online(e, "meter"))
                    && i.latest("meter", Quantity::VoltageA).is_some()
            })
            .await
            .unwrap();
        running.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_scan_of_a_modbus_tcp_gateway_finds_the_unit_ids_behind_it() {
        let addr = format!("127.0.0.1:{}", free_port());
        let _peer = Peer::start_at(Path::new(&format!("tcp:{addr}")), &[sdm630(3)]);
        let mut seen = 0;
        let found = scan_tcp(
            addr.parse().unwrap(),
            Framing::Tcp,
            1..=6,
            Duration::from_millis(300),
            |_| seen += 1,
        )
        .await
        .unwrap();
        assert_eq!(seen, 6);
        assert_eq!(
            found.len(),
            1,
            "exception 0x0B is the gateway's 'nobody': {found:#?}"
        );
        assert_eq!(found[0].slave, 3);
        assert_eq!(found[0].transport, Transport::Tcp(addr));
        assert_eq!(found[0].profile.as_deref(), Some("eastron-sdm630"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_scan_through_an_rtu_over_tcp_gateway_finds_the_meter() {
        let addr = format!("127.0.0.1:{}", free_port());
        let _peer = Peer::start_at(Path::new(&format!("rtu-tcp:{addr}")), &[sdm630(2)]);
        let found = scan_tcp(
            addr.parse().unwrap(),
            Framing::Rtu,
            1..=3,
            Duration::from_millis(300),
            |_| {},
        )
        .await
        .unwrap();
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].slave, 2);
        assert_eq!(found[0].profile.as_deref(), Some("eastron-sdm630"));
    }

    /// The DL/T 645 simulator with `meters` (nameplate addresses) on one bus; its bus port.
    async fn dlt645_bus(
        meters: &[&str],
    ) -> (tokio::process::Child, String, tempfile::NamedTempFile) {
        use tokio::io::AsyncBufReadExt;
        let spec = serde_json::json!({"meters": meters.iter().map(|a| serde_json::json!({
            "address": a,
            "variables": {"02010100": 220.1}
        })).collect::<Vec<_>>()});
        let spec_file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(spec_file.path(), spec.to_string()).unwrap();
        let mut child = tokio::process::Command::new(python())
            .arg(repo_root().join("tests/peers/dlt645_meter.py"))
            .arg(spec_file.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the dlt645 simulator");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let ready: serde_json::Value = tokio::time::timeout(DEADLINE, async {
            loop {
                let line = lines.next_line().await.unwrap().expect("simulator output");
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    if v["ready"] == true {
                        return v;
                    }
                }
            }
        })
        .await
        .expect("the simulator ready");
        let port = ready["port"].as_str().unwrap().to_string();
        (child, port, spec_file)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dlt645_meter_answers_the_address_broadcast_with_its_address() {
        let (_child, port, _spec) = dlt645_bus(&["123456789012"]).await;
        let found = discover_dlt645(&port, &DLT645_BAUDS, Duration::from_millis(1500))
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].address, "123456789012");
        assert_eq!(found[0].baud, 2400, "the first baud tried answers on a pty");
        assert_eq!(found[0].port, port);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_a_bus_of_several_dlt645_meters_the_broadcast_reports_only_the_one_that_answers_first(
    ) {
        // Every meter hears the wildcard and answers; on this emulated bus the replies arrive
        // one after the other rather than colliding, and kare takes the first intact one. The
        // others must be probed at their nameplate addresses.
        let (_child, port, _spec) = dlt645_bus(&["123456789012", "000000000007"]).await;
        let found = discover_dlt645(&port, &[2400], Duration::from_millis(1500))
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            ["123456789012", "000000000007"].contains(&found[0].address.as_str()),
            "{found:#?}"
        );
    }
}
