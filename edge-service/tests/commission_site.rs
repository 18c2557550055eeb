//! `kare commission --non-interactive --json` end to end: the demo's simulated node and meters,
//! a real HTTP receiver as the desk. A healthy site passes every check; each wiring fault a crew
//! meets is named, with its fix; the record verifies; `--write-config` gives a configuration
//! `kare run` accepts.

mod commission_support;

use commission_support::*;
use kare::sim;

/// Checks whose outcome depends on this machine, not on the site: the clock's NTP state and
/// the UPS HAT (none here).
const MACHINE_DEPENDENT: &[&str] = &["box.clock", "box.ups"];

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_site_passes_every_check_and_the_desk_gets_a_test_ticket_and_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let node = SimNode::start(&scenario(""));
    let supply = sim::meters::Supply::new(230.0, 50.0);
    let modbus = sim::meters::start_modbus_meter(supply.clone()).unwrap();
    let dlt645 = sim::meters::start_dlt645_meter(supply.clone()).unwrap();
    let desk = Desk::start(200).await;
    let config = base_config(dir.path(), &desk.url, &node.port, 230.0)
        + &modbus_section(&modbus.port, sim::meters::MODBUS_SLAVE_ID)
        + &dlt645_section(&dlt645.port);
    let run = commission(dir.path(), &config, &[]).await;
    let failing: Vec<_> = run
        .not_passing()
        .into_iter()
        .filter(|(id, ..)| !MACHINE_DEPENDENT.contains(&id.as_str()))
        .collect();
    assert!(failing.is_empty(), "{failing:#?}\n{}", run.stderr);
    assert_eq!(run.code, 0);
    for id in [
        "node.hello",
        "node.lock",
        "node.voltage.va",
        "node.voltage.vb",
        "node.voltage.vc",
        "node.frequency",
        "node.phase-sequence",
        "node.link",
        "meters.answer",
        "cross.voltage",
        "cross.power-sign",
        "uplinks.route",
    ] {
        assert!(!run.check(id).is_empty(), "no {id} check");
    }
    assert_eq!(run.check("meters.answer").len(), 2, "both meters read");
    assert_eq!(desk.kinds(), vec!["test", "commissioning"]);
    assert!(run.stderr.contains("Record sent to desk"), "{}", run.stderr);
    // The desk's copy is the signed file itself: saved, it verifies.
    let copy = desk.received.lock().unwrap()[1]["detail"]["signed_record_text"]
        .as_str()
        .expect("the record as text")
        .to_string();
    let saved = dir.path().join("desk-copy.json");
    std::fs::write(&saved, copy).unwrap();
    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_kare"))
        .args(["commission", "verify"])
        .arg(&saved)
        .output()
        .unwrap();
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

mod modbus_support;

/// A pymodbus SDM630 at `slave` whose phase powers are `kw` (the rest a healthy 230 V supply).
fn sdm630_with_powers(slave: u8, kw: [f64; 3]) -> modbus_support::PeerDevice {
    use kare::sources::meters::readings::Quantity::*;
    let profile = kare::sources::meters::modbus::builtin_profile("eastron-sdm630").unwrap();
    let mut dev = modbus_support::PeerDevice::new(slave);
    for r in &profile.registers {
        let v = match r.quantity {
            VoltageA | VoltageB | VoltageC => 230.5,
            VoltageAb | VoltageBc | VoltageCa => 399.2,
            CurrentA | CurrentB | CurrentC => 4.0,
            Frequency => 50.0,
            ActivePowerA => kw[0],
            ActivePowerB => kw[1],
            ActivePowerC => kw[2],
            ActivePowerTotal => kw.iter().sum(),
            PowerFactorA | PowerFactorB | PowerFactorC | PowerFactorTotal => 0.95,
            _ => 0.0,
        };
        dev.value(r, v);
    }
    dev
}

/// Only the node and the desk: no meters (their steps warn, nothing else).
async fn node_only(scenario_extra: &str, udin: f64) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let node = SimNode::start(&scenario(scenario_extra));
    let desk = Desk::start(200).await;
    let config = base_config(dir.path(), &desk.url, &node.port, udin);
    commission(dir.path(), &config, &[]).await
}

fn status_of(run: &Run, id: &str) -> String {
    let c = run.check(id);
    assert!(!c.is_empty(), "no {id} check: {:#?}", run.checks());
    c[0]["status"].as_str().unwrap().to_string()
}

fn summary_of(run: &Run, id: &str) -> (String, String) {
    let c = &run.check(id)[0];
    (
        c["summary"].as_str().unwrap_or("").to_string(),
        c["fix"].as_str().unwrap_or("").to_string(),
    )
}

/// Two whole-run phase jumps make the supply A-C-B at the node: B leads A by 120°, C lags.
const SWAPPED_B_AND_C: &str = r#"[[event]]
kind = "phase_jump"
at_s = 0.0
duration_s = 3600.0
phases = ["B"]
degrees = -120.0

[[event]]
kind = "phase_jump"
at_s = 0.0
duration_s = 3600.0
phases = ["C"]
degrees = 120.0"#;

#[tokio::test(flavor = "multi_thread")]
async fn swapped_phases_are_found_and_the_fix_says_which_wires_to_swap() {
    let run = node_only(SWAPPED_B_AND_C, 230.0).await;
    assert_eq!(run.code, 1);
    assert_eq!(status_of(&run, "node.phase-sequence"), "fail");
    let (summary, fix) = summary_of(&run, "node.phase-sequence");
    assert!(summary.contains("A-C-B"), "{summary}");
    assert!(fix.contains("B and C"), "{fix}");
    // The voltages are right: only the order is wrong.
    assert_eq!(status_of(&run, "node.voltage.vb"), "pass");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_phase_is_named_with_its_fuse_and_wiring() {
    let run = node_only(
        r#"[[event]]
kind = "phase_loss"
at_s = 0.0
duration_s = 3600.0
phases = ["C"]"#,
        230.0,
    )
    .await;
    assert_eq!(run.code, 1, "a failed check fails the run");
    assert_eq!(status_of(&run, "node.voltage.vc"), "fail");
    let (summary, fix) = summary_of(&run, "node.voltage.vc");
    assert!(summary.contains("no voltage"), "{summary}");
    assert!(fix.contains("fuse"), "{fix}");
    assert_eq!(status_of(&run, "node.voltage.va"), "pass");
    assert_eq!(status_of(&run, "node.phase-sequence"), "fail");
    let (summary, _) = summary_of(&run, "node.phase-sequence");
    assert!(
        summary.contains("VC"),
        "the sequence names the dead phase: {summary}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_reading_root_three_times_udin_is_a_line_to_line_or_pt_ratio_fault() {
    // The tap is line-to-line (398 V) where the configuration declares 230 V phase-to-neutral.
    let run = node_only("udin = 398.4", 230.0).await;
    assert_eq!(run.code, 1);
    for ch in ["va", "vb", "vc"] {
        let id = format!("node.voltage.{ch}");
        assert_eq!(status_of(&run, &id), "fail");
        let (summary, fix) = summary_of(&run, &id);
        assert!(summary.contains("√3"), "{summary}");
        assert!(fix.contains("PT ratio"), "{fix}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_meter_pt_ratio_off_by_root_three_fails_the_cross_check() {
    let dir = tempfile::tempdir().unwrap();
    let node = SimNode::start(&scenario(""));
    // The meter's PT ratio is set for line-to-line: it reads √3 × the node's 230 V.
    let supply = sim::meters::Supply::new(230.0 * 3f64.sqrt(), 50.0);
    let modbus = sim::meters::start_modbus_meter(supply).unwrap();
    let desk = Desk::start(200).await;
    let config = base_config(dir.path(), &desk.url, &node.port, 230.0)
        + &modbus_section(&modbus.port, sim::meters::MODBUS_SLAVE_ID);
    let run = commission(dir.path(), &config, &[]).await;
    assert_eq!(run.code, 1);
    assert_eq!(
        status_of(&run, "node.voltage.va"),
        "pass",
        "the node is right"
    );
    assert_eq!(status_of(&run, "cross.voltage"), "fail");
    let (summary, fix) = summary_of(&run, "cross.voltage");
    assert!(summary.contains("√3"), "{summary}");
    assert!(fix.contains("PT ratio"), "{fix}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reversed_ct_on_one_phase_is_named_by_phase() {
    let dir = tempfile::tempdir().unwrap();
    let node = SimNode::start(&scenario(""));
    let bus = modbus_support::Bus::new(None);
    let _peer = modbus_support::Peer::start(&bus, &[sdm630_with_powers(1, [0.9, -0.88, 0.92])]);
    let desk = Desk::start(200).await;
    let config =
        base_config(dir.path(), &desk.url, &node.port, 230.0) + &modbus_section(&bus.port, 1);
    let run = commission(dir.path(), &config, &[]).await;
    assert_eq!(run.code, 1);
    assert_eq!(status_of(&run, "meters.answer"), "pass");
    assert_eq!(status_of(&run, "cross.power-sign"), "fail");
    let (summary, fix) = summary_of(&run, "cross.power-sign");
    assert!(summary.contains("phase B"), "{summary}");
    assert!(fix.contains("CT") && fix.contains("B"), "{fix}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_bus_names_the_meter_and_what_to_check() {
    let dir = tempfile::tempdir().unwrap();
    let node = SimNode::start(&scenario(""));
    // A bus with nothing on it: the relay runs, no peer answers.
    let bus = modbus_support::Bus::new(None);
    let desk = Desk::start(200).await;
    let config =
        base_config(dir.path(), &desk.url, &node.port, 230.0) + &modbus_section(&bus.port, 1);
    let run = commission(dir.path(), &config, &[]).await;
    assert_eq!(run.code, 1);
    assert_eq!(status_of(&run, "meters.answer"), "fail");
    let (summary, fix) = summary_of(&run, "meters.answer");
    assert!(summary.contains("bus-1/incomer"), "{summary}");
    assert!(fix.contains("A/B wiring") && fix.contains("baud"), "{fix}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_desk_answering_500_fails_the_uplink_with_the_status() {
    let dir = tempfile::tempdir().unwrap();
    let node = SimNode::start(&scenario(""));
    let desk = Desk::start(500).await;
    let config = base_config(dir.path(), &desk.url, &node.port, 230.0);
    let run = commission(dir.path(), &config, &[]).await;
    assert_eq!(run.code, 1);
    assert_eq!(status_of(&run, "uplinks.route"), "fail");
    let (summary, fix) = summary_of(&run, "uplinks.route");
    assert!(summary.contains("500"), "{summary}");
    assert!(fix.contains("desk"), "{fix}");
    assert!(run.stderr.contains("could not be sent"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_record_verifies_and_an_edited_one_does_not() {
    let run = node_only("", 230.0).await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(&good, &run.stdout).unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, run.stdout.replacen("Test Crew", "Someone Else", 1)).unwrap();
    let verify = |p: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_kare"))
            .args(["commission", "verify"])
            .arg(p)
            .output()
            .unwrap()
    };
    let ok = verify(&good);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("signature valid"));
    let no = verify(&bad);
    assert_eq!(no.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&no.stdout).contains("NOT VALID"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_on_an_unconfigured_port_is_found_and_the_written_configuration_runs() {
    let dir = tempfile::tempdir().unwrap();
    let node = SimNode::start(&scenario(""));
    // The node's port under a stable name, as udev would make it.
    let ports = dir.path().join("by-id");
    std::fs::create_dir_all(&ports).unwrap();
    let stable = ports.join("usb-Raspberry_Pi_Pico_E6614104-if00");
    std::os::unix::fs::symlink(&node.port, &stable).unwrap();
    let desk = Desk::start(200).await;
    // A configuration with a site and a desk but no [[node]] yet.
    let base = base_config(dir.path(), &desk.url, &node.port, 230.0);
    let config = base[..base.find("[[node]]").unwrap()].to_string();
    let written = dir.path().join("found.toml");
    let run = commission(
        dir.path(),
        &config,
        &[
            "--ports-dir",
            ports.to_str().unwrap(),
            "--write-config",
            written.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(status_of(&run, "ports.node-found"), "warn");
    let (summary, fix) = summary_of(&run, "ports.node-found");
    assert!(summary.contains("0000002a"), "node id 42: {summary}");
    assert!(fix.contains("--write-config"), "{fix}");
    let text = std::fs::read_to_string(&written).unwrap();
    assert!(
        text.contains(&format!("port = \"{}\"", stable.display())),
        "{text}"
    );
    assert!(text.contains("udin = 230.0"), "{text}");
    assert!(
        text.contains("# Written by `kare commission --write-config`"),
        "{text}"
    );
    // `kare run` accepts it as it is, and reads the node through it.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_kare"))
        .args([
            "run",
            "--listen",
            "127.0.0.1:0",
            "--duration",
            "3",
            "--config",
        ])
        .arg(&written)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("node-1") || stderr.contains("node-1"),
        "the found node runs: {stdout}\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_meter_at_an_unexpected_address_and_baud_is_found_and_written_with_its_settings() {
    let dir = tempfile::tempdir().unwrap();
    let node = SimNode::start(&scenario(""));
    // The configuration expects slave 1 at 9600; the meter was left at slave 17, 4800 baud.
    let bus = modbus_support::Bus::new(None);
    bus.meter_at_baud(4800);
    let _peer = modbus_support::Peer::start(&bus, &[sdm630_with_powers(17, [0.9, 0.9, 0.9])]);
    let desk = Desk::start(200).await;
    let config =
        base_config(dir.path(), &desk.url, &node.port, 230.0) + &modbus_section(&bus.port, 1);
    let written = dir.path().join("found.toml");
    let port = bus.port.to_str().unwrap();
    let run = commission(
        dir.path(),
        &config,
        &[
            "--scan",
            port,
            "--scan-bauds",
            "2400,4800,9600",
            "--scan-parities",
            "none",
            "--scan-addresses",
            "1-24",
            "--scan-timeout-ms",
            "300",
            "--write-config",
            written.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(
        status_of(&run, "meters.answer"),
        "fail",
        "not where configured"
    );
    let found = run.check("meters.found");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["status"], "pass");
    let summary = found[0]["summary"].as_str().unwrap();
    assert!(
        summary.contains("address 17")
            && summary.contains("4800 baud")
            && summary.contains("eastron-sdm630"),
        "{summary}"
    );
    let fix = found[0]["fix"].as_str().unwrap_or("");
    assert!(
        fix.contains("slave_id = 17") && fix.contains("baud = 4800"),
        "{fix}"
    );
    let text = std::fs::read_to_string(&written).unwrap();
    let cfg = kare::config::Config::parse(&text, "found.toml").expect("kare accepts it");
    assert_eq!(cfg.modbus.len(), 1, "{text}");
    assert_eq!(
        (cfg.modbus[0].baud, cfg.modbus[0].device[0].slave_id),
        (4800, 17)
    );
    assert_eq!(cfg.modbus[0].device[0].profile, "eastron-sdm630");
    assert_eq!(cfg.node.len(), 1, "the node that answered is kept");
}
