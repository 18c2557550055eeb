//! The Modbus poller against a real Modbus RTU slave: pymodbus on a pseudo-terminal, through a
//! relay that can also garble replies (`modbus_support` says how it is wired).
//!
//! Every wait has a deadline and waits on a condition (a reading, an event, a counter), never
//! on a sleep. Test names sit in `mod modbus` so that `cargo test -p kare modbus` selects them.

mod modbus_support;

mod modbus {
    use super::modbus_support::*;
    use kare::sources::meters::modbus::{
        builtin_profile, builtin_profile_names, load_profile, parse_profile, RegisterKind,
    };
    use kare::sources::meters::readings::{MeterEvent, Quantity};
    use std::collections::HashMap;
    use std::time::Duration;

    const DEADLINE: Duration = Duration::from_secs(30);

    /// A plausible value for a quantity, different per register so a swapped address shows.
    fn sample(q: Quantity, k: usize) -> f64 {
        let k = k as f64;
        let name = q.as_str();
        if name.starts_with("voltage_") && name.len() == 10 {
            400.0 + k // line voltages
        } else if name.starts_with("voltage") {
            230.0 + k / 10.0
        } else if name.starts_with("current") {
            12.5 + k
        } else if name.starts_with("power_factor") {
            0.9 + k / 1000.0
        } else if name == "frequency" {
            50.02
        } else if name.starts_with("thd") {
            2.5 + k / 10.0
        } else if name.starts_with("energy") {
            12345.6 + k
        } else {
            -3.25 + k // powers and demands: one negative (export) value among them
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_shipped_profile_reads_back_what_the_meter_holds() {
        let bus = Bus::new(None);
        let mut peers = Vec::new();
        let mut devices = Vec::new();
        let mut expected: HashMap<(String, Quantity), f64> = HashMap::new();
        for (i, name) in builtin_profile_names().into_iter().enumerate() {
            let profile = builtin_profile(name).unwrap();
            let id = i as u8 + 1;
            let mut peer = PeerDevice::new(id);
            for (k, r) in profile.registers.iter().enumerate() {
                let v = sample(r.quantity, k);
                peer.value(r, v);
                // What the meter's encoding can hold of v (rounded to its resolution).
                let held = r.decode(&r.encode(v)).unwrap();
                assert!(
                    (held - v).abs() <= r.scale.abs() + v.abs() * 1e-6,
                    "{name} {}",
                    r.name
                );
                expected.insert((name.to_string(), r.quantity), held);
            }
            peers.push(peer);
            devices.push(device(name, id, profile, Duration::from_millis(150)));
        }
        // Hand-encoded words, independent of `Register::encode`: the map, the word order and
        // the units as the manuals give them.
        peers[0].words(RegisterKind::Input, 0, &[0x4366, 0x199A]); // SDM630 30001: 230.1f32
        expected.insert(("eastron-sdm630".into(), Quantity::VoltageA), 230.1);
        peers[1].words(RegisterKind::Holding, 0x2006, &[0x450F, 0xD000]); // DTSU666 Ua: 2301.0 (0.1 V)
        peers[1].words(RegisterKind::Holding, 0x2044, &[0x459C, 0x4000]); // Freq: 5000.0 (0.01 Hz)
        expected.insert(("chint-dtsu666".into(), Quantity::VoltageA), 230.1);
        expected.insert(("chint-dtsu666".into(), Quantity::Frequency), 50.0);
        peers[2].words(RegisterKind::Holding, 0x0061, &[2301]); // ADL400 Ua: 0.1 V
        peers[2].words(RegisterKind::Holding, 0x000A, &[0x0001, 0x86A0]); // 100000 x 0.01 kWh
        peers[2].words(RegisterKind::Holding, 0x006A, &[0xFF38]); // -200 x 0.001 kW
        expected.insert(("acrel-adl400".into(), Quantity::VoltageA), 230.1);
        expected.insert(("acrel-adl400".into(), Quantity::EnergyImportKwh), 1000.0);
        expected.insert(("acrel-adl400".into(), Quantity::ActivePowerTotal), -0.2);

        let peer = Peer::start(&bus, &peers);
        let mut run = Running::start(bus_config(&bus.port, devices));
        let wanted = expected.clone();
        run.inbox
            .until(
                DEADLINE,
                "a reading of every register of every profile",
                |ib| wanted.keys().all(|(d, q)| ib.latest(d, *q).is_some()),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}\npeer:\n{}", peer.log()));
        run.inbox
            .until(DEADLINE, "counters after a full cycle", |ib| {
                ib.stats.replies >= 7
            })
            .await
            .unwrap();
        for ((dev, q), want) in &expected {
            let got = run.inbox.latest(dev, *q).unwrap();
            assert!(
                (got - want).abs() <= want.abs() * 1e-6 + 1e-9,
                "{dev} {}: read {got}, the meter holds {want}",
                q.as_str()
            );
        }
        let s = &run.inbox.stats;
        assert_eq!(
            (s.timeouts, s.bad_frames, s.error_replies),
            (0, 0, 0),
            "a healthy bus: {s:?}"
        );
        assert!(s.requests >= 7 && s.replies == s.requests, "{s:?}");
        run.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_devices_on_one_bus_are_both_polled() {
        let bus = Bus::new(None);
        let profile = builtin_profile("eastron-sdm630").unwrap();
        let ua = profile
            .registers
            .iter()
            .find(|r| r.quantity == Quantity::VoltageA)
            .unwrap()
            .clone();
        let (mut one, mut two) = (PeerDevice::new(1), PeerDevice::new(2));
        for (k, r) in profile.registers.iter().enumerate() {
            one.value(r, sample(r.quantity, k));
            two.value(r, sample(r.quantity, k + 1));
        }
        one.value(&ua, 229.5);
        two.value(&ua, 231.25);
        let peer = Peer::start(&bus, &[one, two]);
        let every = Duration::from_millis(100);
        let mut run = Running::start(bus_config(
            &bus.port,
            vec![
                device("incomer", 1, profile.clone(), every),
                device("feeder", 2, profile, every),
            ],
        ));
        run.inbox
            .until(DEADLINE, "five polls of each device", |ib| {
                ib.polls_of("incomer") >= 5 && ib.polls_of("feeder") >= 5
            })
            .await
            .unwrap_or_else(|e| panic!("{e}\npeer:\n{}", peer.log()));
        assert_eq!(run.inbox.latest("incomer", Quantity::VoltageA), Some(229.5));
        assert_eq!(run.inbox.latest("feeder", Quantity::VoltageA), Some(231.25));
        // Each device's polls keep its own period, not one after the other's end.
        let times: Vec<_> = run
            .inbox
            .polls
            .iter()
            .filter(|(d, _)| d == "feeder")
            .map(|(_, t)| *t)
            .collect();
        assert!(times.windows(2).all(|w| w[1] > w[0]));
        assert!(run
            .inbox
            .events
            .iter()
            .all(|e| matches!(e, MeterEvent::Online { .. })));
        run.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_meter_that_stops_answering_goes_offline_and_comes_back_online() {
        let bus = Bus::new(None);
        let profile = builtin_profile("acrel-adl400").unwrap();
        let mut meter = PeerDevice::new(7);
        for r in &profile.registers {
            meter.value(r, sample(r.quantity, 0));
        }
        let mut peer = Peer::start(&bus, &[meter]);
        let mut run = Running::start(bus_config(
            &bus.port,
            vec![device("panel", 7, profile, Duration::from_millis(100))],
        ));
        run.inbox
            .until(DEADLINE, "the meter online", |ib| {
                ib.events.iter().any(|e| is_online(e, "panel"))
            })
            .await
            .unwrap();

        peer.kill();
        run.inbox
            .until(DEADLINE, "the meter offline", |ib| {
                ib.events.iter().any(|e| is_offline(e, "panel"))
            })
            .await
            .unwrap();
        let offline = run
            .inbox
            .events
            .iter()
            .find(|e| is_offline(e, "panel"))
            .unwrap();
        let MeterEvent::Offline { reason, since, .. } = offline else {
            unreachable!()
        };
        assert!(reason.contains("no reply within"), "{reason}");
        assert!(reason.contains("slave 7"), "{reason}");
        assert!(*since <= chrono::Utc::now());
        assert!(run.inbox.stats.timeouts >= 2, "{:?}", run.inbox.stats);

        peer.restart();
        run.inbox
            .until(DEADLINE, "the meter online again", |ib| {
                ib.events.iter().filter(|e| is_online(e, "panel")).count() == 2
            })
            .await
            .unwrap_or_else(|e| panic!("{e}\npeer:\n{}", peer.log()));
        let kinds: Vec<&str> = run
            .inbox
            .events
            .iter()
            .map(|e| match e {
                MeterEvent::Online { .. } => "online",
                MeterEvent::Offline { .. } => "offline",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["online", "offline", "online"]);
        run.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unknown_ids_exceptions_and_garbled_replies_are_counted_and_starve_no_one() {
        let bus = Bus::new(None);
        let sdm = builtin_profile("eastron-sdm630").unwrap();
        // Slave 2's profile asks for a register its meter does not have (input 1000).
        let partial = parse_profile(
            "partial",
            "partial.toml",
            r#"
manufacturer = "Test"
model = "Partial"
source = "kare test: one register the meter lacks"
[[register]]
name = "U1"
quantity = "voltage_a"
kind = "input"
address = 0
type = "f32"
[[register]]
name = "F"
quantity = "frequency"
kind = "input"
address = 1000
type = "f32"
"#,
        )
        .unwrap();
        let mut good = PeerDevice::new(1);
        let mut garbled = PeerDevice::new(3);
        for r in &sdm.registers {
            good.value(r, sample(r.quantity, 1));
            garbled.value(r, sample(r.quantity, 2));
        }
        let mut half = PeerDevice::new(2);
        half.value(&partial.registers[0], 228.0);
        let peer = Peer::start(&bus, &[good, half, garbled]);
        bus.garble_replies_from(3);

        let every = Duration::from_millis(100);
        let mut run = Running::start(bus_config(
            &bus.port,
            vec![
                device("good", 1, sdm.clone(), every),
                device("partial", 2, partial, every),
                device("garbled", 3, sdm.clone(), every),
                device("ghost", 9, sdm, every), // nobody has id 9
            ],
        ));
        run.inbox
            .until(
                DEADLINE,
                "ghost and garbled offline, every fault counted",
                |ib| {
                    let s = &ib.stats;
                    ib.events.iter().any(|e| is_offline(e, "ghost"))
                        && ib.events.iter().any(|e| is_offline(e, "garbled"))
                        && s.timeouts > 0
                        && s.bad_frames > 0
                        && s.error_replies > 0
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{e}\npeer:\n{}", peer.log()));
        let reason = |dev: &str| {
            run.inbox
                .events
                .iter()
                .find_map(|e| match e {
                    MeterEvent::Offline { device, reason, .. } if &**device == dev => {
                        Some(reason.clone())
                    }
                    _ => None,
                })
                .unwrap()
        };
        assert!(reason("ghost").contains("no reply"), "{}", reason("ghost"));
        assert!(
            reason("garbled").contains("bad reply: garbled"),
            "{}",
            reason("garbled")
        );

        // With two dead devices backing off, the good ones keep their pace.
        let (good_before, partial_before) =
            (run.inbox.polls_of("good"), run.inbox.polls_of("partial"));
        run.inbox
            .until(
                DEADLINE,
                "five more polls of the good and the partial meter",
                |ib| {
                    ib.polls_of("good") >= good_before + 5
                        && ib.polls_of("partial") >= partial_before + 5
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{e}\npeer:\n{}", peer.log()));
        assert_eq!(run.inbox.latest("partial", Quantity::VoltageA), Some(228.0));
        assert_eq!(run.inbox.latest("partial", Quantity::Frequency), None);
        assert!(
            !run.inbox
                .events
                .iter()
                .any(|e| is_offline(e, "partial") || is_offline(e, "good")),
            "{:#?}",
            run.inbox.events
        );
        assert!(run.inbox.latest("garbled", Quantity::VoltageA).is_none());
        run.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_new_meter_is_supported_by_a_profile_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acme-pqm1.toml");
        std::fs::write(
            &path,
            r#"
# A meter kare has never heard of: mixed types, word order per register, both tables.
manufacturer = "Acme"
model = "PQM-1"
source = "Acme PQM-1 Modbus register map, rev. B (invented for kare's tests)"
baud = 9600
parity = "none"
word_order = "little"

[[register]]
name = "Va"
quantity = "voltage_a"
kind = "holding"
address = 100
type = "u32"
scale = 0.001
unit = "V"

[[register]]
name = "Freq"
quantity = "frequency"
kind = "holding"
address = 102
type = "u16"
scale = 0.01
unit = "Hz"

[[register]]
name = "P"
quantity = "active_power_total"
kind = "holding"
address = 104
type = "i32"
word_order = "big"
scale = 0.001     # W -> kW
unit = "kW"

[[register]]
name = "THD Ua"
quantity = "thd_u_a"
kind = "input"
address = 7
type = "f32"
unit = "%"

[[register]]
name = "Import"
quantity = "energy_import_kwh"
kind = "holding"
address = 200
type = "u64"
scale = 0.1
unit = "kWh"
"#,
        )
        .unwrap();
        let profile = load_profile(&path).unwrap();
        assert_eq!(profile.name, "acme-pqm1");

        let bus = Bus::new(None);
        let mut meter = PeerDevice::new(42);
        meter
            .words(RegisterKind::Holding, 100, &[0x8438, 0x0003]) // 230456, low word first
            .words(RegisterKind::Holding, 102, &[4998])
            .words(RegisterKind::Holding, 104, &[0xFFFF, 0xCFC7]) // -12345, high word first
            .words(RegisterKind::Input, 7, &[0x0000, 0x4060]) // 3.5f32, low word first
            .words(RegisterKind::Holding, 200, &[0xCD15, 0x075B, 0, 0]); // 123456789
        let peer = Peer::start(&bus, &[meter]);
        let mut run = Running::start(bus_config(
            &bus.port,
            vec![device("new-meter", 42, profile, Duration::from_millis(200))],
        ));
        let expected = [
            (Quantity::VoltageA, 230.456),
            (Quantity::Frequency, 49.98),
            (Quantity::ActivePowerTotal, -12.345),
            (Quantity::ThdUA, 3.5),
            (Quantity::EnergyImportKwh, 12_345_678.9),
        ];
        run.inbox
            .until(DEADLINE, "every value of the new meter", |ib| {
                expected
                    .iter()
                    .all(|(q, _)| ib.latest("new-meter", *q).is_some())
            })
            .await
            .unwrap_or_else(|e| panic!("{e}\npeer:\n{}", peer.log()));
        for (q, want) in expected {
            let got = run.inbox.latest("new-meter", q).unwrap();
            assert!(
                (got - want).abs() < 1e-6 * want.abs(),
                "{}: {got} != {want}",
                q.as_str()
            );
        }
        run.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_port_that_is_not_there_is_retried_until_it_is() {
        let dir = tempfile::tempdir().unwrap();
        // The port path is a symlink made only later, as a USB adapter plugged in late.
        let link = dir.path().join("ttyRS485");
        let profile = builtin_profile("chint-dtsu666").unwrap();
        let mut run = Running::start(bus_config(
            &link,
            vec![device(
                "late",
                5,
                profile.clone(),
                Duration::from_millis(100),
            )],
        ));
        run.inbox
            .until(DEADLINE, "the device offline for want of a port", |ib| {
                ib.events.iter().any(|e| is_offline(e, "late"))
            })
            .await
            .unwrap();
        let MeterEvent::Offline { reason, .. } = &run.inbox.events[0] else {
            panic!("{:?}", run.inbox.events)
        };
        assert!(reason.contains("cannot open serial port"), "{reason}");

        let bus = Bus::new(None);
        let mut meter = PeerDevice::new(5);
        for r in &profile.registers {
            meter.value(r, sample(r.quantity, 3));
        }
        let peer = Peer::start(&bus, &[meter]);
        std::os::unix::fs::symlink(&bus.port, &link).unwrap();
        run.inbox
            .until(DEADLINE, "the device online once the port exists", |ib| {
                ib.events.iter().any(|e| is_online(e, "late"))
                    && ib.latest("late", Quantity::Frequency).is_some()
            })
            .await
            .unwrap_or_else(|e| panic!("{e}\npeer:\n{}", peer.log()));
        run.stop().await;
    }
}
