//! `kare commission --scan PORT` / `--scan-tcp HOST:PORT` / `--scan-gateway HOST:PORT`: search a
//! bus for meters (`discover/`), report each as a check, and hand what was found to
//! `--write-config`. A meter the configuration places at other settings is named with the
//! settings it answers at.

use super::check::{Check, Status, Step};
use super::discover::{self, FoundDlt645, FoundModbus, Framing, Parity, RtuScan};
use super::view::Ui;
use crate::config::Config;
use crate::sources::meters::dlt645::config::{Dlt645DeviceEntry, Dlt645Entry};
use crate::sources::meters::modbus::config::{ModbusDeviceEntry, ModbusEntry};
use crate::web::i18n::Lang;
use std::ops::RangeInclusive;
use std::time::Duration;

/// What to search.
#[derive(Clone, Debug, Default)]
pub struct ScanRequest {
    /// Serial ports: a Modbus RTU scan, then the DL/T 645 address broadcast.
    pub serial: Vec<String>,
    /// Modbus TCP meters or gateways (`host:port`).
    pub tcp: Vec<String>,
    /// RTU-over-TCP gateways (`host:port`).
    pub gateways: Vec<String>,
    /// Bauds to try (default 2400, 4800, 9600, 19200).
    pub bauds: Option<Vec<u32>>,
    /// Parities to try (default none and even, and any a profile declares).
    pub parities: Option<Vec<Parity>>,
    /// Addresses (unit ids) to probe.
    pub addresses: Option<RangeInclusive<u8>>,
    /// How long to wait for a reply to begin.
    pub timeout: Option<Duration>,
}

impl ScanRequest {
    /// Whether anything is to be searched.
    pub fn is_empty(&self) -> bool {
        self.serial.is_empty() && self.tcp.is_empty() && self.gateways.is_empty()
    }
}

/// What the scans found, as configuration sections.
#[derive(Clone, Debug, Default)]
pub struct Scanned {
    /// One `[[modbus]]` per port (or address) and line setting, with the identified devices.
    pub modbus: Vec<ModbusEntry>,
    /// One `[[dlt645]]` per port and baud.
    pub dlt645: Vec<Dlt645Entry>,
}

fn parity_name(p: Parity) -> &'static str {
    p.as_str()
}

fn line(f: &FoundModbus) -> String {
    if f.baud == 0 {
        String::new()
    } else {
        format!(
            ", {} baud 8{}1",
            f.baud,
            &parity_name(f.parity)[..1].to_uppercase()
        )
    }
}

/// Runs every scan asked for.
pub async fn run(
    lang: Lang,
    req: &ScanRequest,
    cfg: &Config,
    ui: &mut dyn Ui,
) -> (Vec<Check>, Scanned) {
    let mut checks = Vec::new();
    let mut scanned = Scanned::default();
    for port in &req.serial {
        let mut scan = RtuScan::new(port.clone());
        if let Some(b) = &req.bauds {
            scan.bauds = b.clone();
        }
        if let Some(p) = &req.parities {
            scan.parities = p.clone();
        }
        if let Some(a) = &req.addresses {
            scan.addresses = a.clone();
        }
        if let Some(t) = req.timeout {
            scan.timeout = t;
        }
        // The devices the configuration puts on this port: found, the scan stops.
        scan.expect = cfg
            .modbus
            .iter()
            .filter(|b| b.port == *port)
            .flat_map(|b| b.device.iter().map(move |d| (d.slave_id, Some(b.baud))))
            .collect();
        let bound = discover::scan_bound(&scan);
        ui.wait(&lang.ta(
            "cm-wait-scan",
            &[
                ("port", port.as_str()),
                ("seconds", &format!("{:.0}", bound.as_secs_f64())),
            ],
        ));
        let result = discover::scan_rtu(&scan, |p| {
            ui.progress(p.probed as f64 / p.total.max(1) as f64)
        })
        .await;
        ui.done_waiting();
        match result {
            Err(e) => checks.push(
                Check::new(
                    Step::Meters,
                    "meters.scan",
                    port,
                    Status::Fail,
                    lang.ta(
                        "cm-scan-failed",
                        &[("port", port.as_str()), ("error", &e.to_string())],
                    ),
                )
                .fix(lang.t("cm-port-missing-fix")),
            ),
            Ok(found) => {
                let bauds: Vec<String> = scan.bauds.iter().map(u32::to_string).collect();
                let range = format!("{}–{}", scan.addresses.start(), scan.addresses.end());
                ui.wait(&lang.ta("cm-wait-dlt645", &[("port", port.as_str())]));
                let dlt = discover::discover_dlt645_detailed(
                    port,
                    &discover::DLT645_BAUDS,
                    scan.timeout.max(Duration::from_millis(300)),
                )
                .await;
                ui.done_waiting();
                let dlt = match dlt {
                    Ok(d) => {
                        if !d.collisions.is_empty() {
                            let bauds: Vec<String> =
                                d.collisions.iter().map(u32::to_string).collect();
                            checks.push(
                                Check::new(
                                    Step::Meters,
                                    "meters.scan-dlt645",
                                    port,
                                    Status::Warn,
                                    lang.ta(
                                        "cm-scan-dlt645-several",
                                        &[("port", port.as_str()), ("bauds", &bauds.join(", "))],
                                    ),
                                )
                                .fix(lang.t("cm-scan-dlt645-several-fix")),
                            );
                        }
                        d.found
                    }
                    Err(e) => {
                        checks.push(Check::new(
                            Step::Meters,
                            "meters.scan-dlt645",
                            port,
                            Status::Warn,
                            lang.ta(
                                "cm-scan-failed",
                                &[("port", port.as_str()), ("error", &e.to_string())],
                            ),
                        ));
                        Vec::new()
                    }
                };
                let heard_dlt645 = checks
                    .iter()
                    .any(|c| c.id == "meters.scan-dlt645" && c.subject == *port);
                if found.is_empty() && dlt.is_empty() && !heard_dlt645 {
                    checks.push(
                        Check::new(
                            Step::Meters,
                            "meters.scan",
                            port,
                            Status::Fail,
                            lang.ta(
                                "cm-scan-nothing",
                                &[
                                    ("port", port.as_str()),
                                    ("bauds", &bauds.join(", ")),
                                    ("addresses", &range),
                                ],
                            ),
                        )
                        .fix(lang.t("cm-scan-nothing-fix")),
                    );
                }
                for f in &found {
                    checks.push(found_check(lang, cfg, f));
                }
                for d in &dlt {
                    checks.push(dlt645_check(lang, d));
                }
                add_modbus(&mut scanned, port, "rtu", &found);
                add_dlt645(&mut scanned, &dlt);
            }
        }
    }
    for (list, framing, transport) in [
        (&req.tcp, Framing::Tcp, "tcp"),
        (&req.gateways, Framing::Rtu, "rtu-over-tcp"),
    ] {
        for address in list {
            let Ok(sock) = address.parse::<std::net::SocketAddr>() else {
                checks.push(Check::new(
                    Step::Meters,
                    "meters.scan",
                    address,
                    Status::Fail,
                    lang.ta("cm-scan-bad-address", &[("address", address.as_str())]),
                ));
                continue;
            };
            let ids = req.addresses.clone().unwrap_or(1..=247);
            let timeout = req.timeout.unwrap_or(Duration::from_millis(500));
            ui.wait(&lang.ta(
                "cm-wait-scan",
                &[("port", address.as_str()), ("seconds", "…")],
            ));
            let result = discover::scan_tcp(sock, framing, ids, timeout, |p| {
                ui.progress(p.probed as f64 / p.total.max(1) as f64)
            })
            .await;
            ui.done_waiting();
            match result {
                Err(e) => checks.push(
                    Check::new(
                        Step::Meters,
                        "meters.scan",
                        address,
                        Status::Fail,
                        lang.ta(
                            "cm-scan-failed",
                            &[("port", address.as_str()), ("error", &e.to_string())],
                        ),
                    )
                    .fix(lang.t("cm-scan-tcp-fix")),
                ),
                Ok(found) => {
                    if found.is_empty() {
                        checks.push(
                            Check::new(
                                Step::Meters,
                                "meters.scan",
                                address,
                                Status::Fail,
                                lang.ta(
                                    "cm-scan-nothing",
                                    &[
                                        ("port", address.as_str()),
                                        ("bauds", "-"),
                                        ("addresses", "1–247"),
                                    ],
                                ),
                            )
                            .fix(lang.t("cm-scan-tcp-fix")),
                        );
                    }
                    for f in &found {
                        checks.push(found_check(lang, cfg, f));
                    }
                    add_modbus(&mut scanned, address, transport, &found);
                }
            }
        }
    }
    (checks, scanned)
}

fn found_check(lang: Lang, cfg: &Config, f: &FoundModbus) -> Check {
    let subject = format!("{}#{}", f.port, f.slave);
    let line = line(f);
    let volts = f
        .voltages
        .map(|v| format!("{:.1} / {:.1} / {:.1} V", v[0], v[1], v[2]))
        .unwrap_or_else(|| "-".into());
    let args = [
        ("port", f.port.clone()),
        ("slave", f.slave.to_string()),
        ("line", line.clone()),
        ("profile", f.profile.clone().unwrap_or_default()),
        ("candidates", f.candidates.join(", ")),
        ("volts", volts),
    ];
    let a: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut c = match (&f.profile, f.candidates.len()) {
        (Some(_), _) => Check::new(
            Step::Meters,
            "meters.found",
            &subject,
            Status::Pass,
            lang.ta("cm-scan-found", &a),
        ),
        (None, 0) => Check::new(
            Step::Meters,
            "meters.found",
            &subject,
            Status::Warn,
            lang.ta("cm-scan-unknown", &a),
        )
        .fix(lang.t("cm-scan-unknown-fix")),
        (None, _) => Check::new(
            Step::Meters,
            "meters.found",
            &subject,
            Status::Warn,
            lang.ta("cm-scan-ambiguous", &a),
        )
        .fix(lang.ta("cm-scan-ambiguous-fix", &a)),
    };
    // The configuration expects a meter on this port at other settings: say what to change.
    let configured = cfg
        .modbus
        .iter()
        .find(|b| b.port == f.port || b.address.as_deref() == Some(f.port.as_str()));
    if let Some(b) = configured {
        let exact =
            b.device.iter().any(|d| d.slave_id == f.slave) && (f.baud == 0 || b.baud == f.baud);
        if !exact {
            let was = b
                .device
                .iter()
                .map(|d| format!("slave_id = {}", d.slave_id))
                .collect::<Vec<_>>()
                .join(", ");
            c = c.fix(lang.ta(
                "cm-scan-elsewhere-fix",
                &[
                    ("bus", b.name.as_str()),
                    ("was", &format!("{was}, baud = {}", b.baud)),
                    ("slave", &f.slave.to_string()),
                    ("baud", &f.baud.to_string()),
                ],
            ));
        }
    }
    c = c
        .number("slave_id", f64::from(f.slave), None)
        .number("baud", f64::from(f.baud), None)
        .text("parity", parity_name(f.parity));
    if let Some(p) = &f.profile {
        c = c.text("profile", p.clone());
    }
    if let Some(v) = f.voltages {
        for (n, x) in ["voltage_a", "voltage_b", "voltage_c"].iter().zip(v) {
            c = c.number(n, x, Some("V"));
        }
    }
    c
}

fn dlt645_check(lang: Lang, d: &FoundDlt645) -> Check {
    Check::new(
        Step::Meters,
        "meters.found",
        &format!("{}#{}", d.port, d.address),
        Status::Pass,
        lang.ta(
            "cm-scan-dlt645",
            &[
                ("port", d.port.as_str()),
                ("address", d.address.as_str()),
                ("baud", &d.baud.to_string()),
            ],
        ),
    )
    .text("address", d.address.clone())
    .number("baud", f64::from(d.baud), None)
}

fn add_modbus(out: &mut Scanned, port: &str, transport: &str, found: &[FoundModbus]) {
    let mut groups: Vec<((u32, Parity), Vec<&FoundModbus>)> = Vec::new();
    for f in found.iter().filter(|f| f.profile.is_some()) {
        match groups.iter_mut().find(|(k, _)| *k == (f.baud, f.parity)) {
            Some((_, v)) => v.push(f),
            None => groups.push(((f.baud, f.parity), vec![f])),
        }
    }
    for ((baud, parity), devices) in groups {
        let n = out.modbus.len() + 1;
        let tcp = transport != "rtu";
        out.modbus.push(ModbusEntry {
            name: format!("scanned-modbus-{n}"),
            port: if tcp { String::new() } else { port.to_string() },
            transport: transport.to_string(),
            address: tcp.then(|| port.to_string()),
            baud: if baud == 0 { 9600 } else { baud },
            parity: parity_name(parity).to_string(),
            udin: None,
            device: devices
                .iter()
                .map(|f| ModbusDeviceEntry {
                    name: format!("meter-{}", f.slave),
                    slave_id: f.slave,
                    profile: f.profile.clone().unwrap_or_default(),
                    poll_every_s: 5.0,
                })
                .collect(),
        });
    }
}

fn add_dlt645(out: &mut Scanned, found: &[FoundDlt645]) {
    for d in found {
        let n = out.dlt645.len() + 1;
        out.dlt645.push(Dlt645Entry {
            name: format!("scanned-dlt645-{n}"),
            port: d.port.clone(),
            baud: d.baud,
            // The standard's line; a pseudo-terminal bench cannot tell.
            parity: "even".into(),
            udin: None,
            device: vec![Dlt645DeviceEntry {
                name: format!("meter-{}", d.address),
                address: Some(d.address.clone()),
                time_set: false,
            }],
        });
    }
}
