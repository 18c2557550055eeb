//! `kare commission`: what a field crew runs on site, from an empty box to a signed-off
//! installation. Steps, in order (each ends in [`check::Check`]s: pass / warn / fail, with what
//! was read and what to do):
//!
//! 1. **Box** (`host.rs`): clock synchronised, disk space, store writable, UPS inputs, version.
//! 2. **Ports** (`ports.rs`): every serial port by its stable name, with its USB identity; the
//!    configured ones present; a sensor node found on an unconfigured one.
//! 3. **Sensor node** (`node.rs`): Hello, lock, voltage and frequency per phase against Udin and
//!    nominal, phase sequence, link counters over `--node-seconds` (10 s).
//! 4. **Meters** (`meters.rs`): every configured meter read through the service's own pollers;
//!    `--scan` buses searched (`discover/`).
//! 5. **Cross-checks** (`cross.rs`): node against meters (voltage within 2 %, power sign).
//! 6. **Uplinks** (`uplinks.rs`): a `test` ticket to every delivery endpoint, InfluxDB write and
//!    read-back.
//!
//! Then the **record** (`record.rs`): every check, signed with the appliance's Ed25519 key,
//! written as JSON and a printable page (`page.rs`), stored in the store and sent to the
//! repair desk's route; and, on request, the configuration found (`config_out.rs`).
//!
//! The run (`run`) is the same for the terminal, plain text and `--json`: only the [`view::Ui`]
//! differs.

pub mod check;
pub mod config_out;
pub mod cross;
pub mod discover;
pub mod host;
pub mod meters;
pub mod node;
pub mod page;
pub mod ports;
pub mod record;
pub mod scan;
pub mod uplinks;
pub mod view;

use crate::config::Config;
use crate::web::i18n::Lang;
use check::{Check, Status, Step};
use chrono::{SecondsFormat, Utc};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// pqlink's line rate (`firmware/PROTOCOL.md`).
const PQLINK_BAUD: u32 = 115_200;
/// How long an unused port is listened to for a sensor node: frames come every half cycle.
const PORT_PROBE: Duration = Duration::from_millis(1500);

/// The standard phase-to-neutral voltage nearest a measured one (a node found on an unused port
/// gets it as its declared Udin; the crew checks it in the written configuration).
fn nominal_udin(v: f64) -> f64 {
    [
        57.7, 63.5, 100.0, 110.0, 120.0, 127.0, 220.0, 230.0, 240.0, 277.0,
    ]
    .into_iter()
    .min_by(|a, b| (a - v).abs().total_cmp(&(b - v).abs()))
    .unwrap_or(230.0)
}

/// What a run is asked to do.
#[derive(Clone, Debug)]
pub struct Options {
    /// The configuration to commission (its nodes, meters, endpoints, store).
    pub config: Config,
    /// Its path, for the record and messages.
    pub config_path: String,
    /// Who did it.
    pub crew: String,
    /// The crew's language.
    pub lang: Lang,
    /// How long to listen to each sensor node.
    pub node_listen: Duration,
    /// How long to wait for each meter bus.
    pub meter_listen: Duration,
    /// Send test tickets and write to InfluxDB.
    pub uplinks: bool,
    /// Where the key and, by default, the records go.
    pub state_dir: PathBuf,
    /// Where the signed record goes (its page beside it, `.html`).
    pub record_path: PathBuf,
    /// `/dev/serial/by-id` (a test points it elsewhere).
    pub by_id_dir: PathBuf,
    /// `/sys/class/tty`.
    pub sys_class_tty: PathBuf,
    /// Buses to search for meters (`--scan`, `--scan-tcp`, `--scan-gateway`).
    pub scan: scan::ScanRequest,
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The record as signed.
    pub record: record::Record,
    /// The signed file's text.
    pub signed: String,
    /// The node voltages and meters found, for `--write-config`.
    pub found: config_out::Found,
}

/// Where the store keeps its file, or the state folder when there is no store.
pub fn default_state_dir(cfg: &Config) -> PathBuf {
    if let Some(dir) = cfg
        .store
        .as_ref()
        .and_then(|s| s.path.parent().map(Path::to_path_buf))
        .filter(|d| !d.as_os_str().is_empty())
    {
        return dir;
    }
    if let Ok(dir) = std::env::var("XDG_STATE_HOME") {
        return PathBuf::from(dir).join("kare");
    }
    match std::env::var("HOME") {
        Ok(home) => PathBuf::from(home).join(".local/state/kare"),
        Err(_) => PathBuf::from("/var/lib/kare"),
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Runs every step, signs and writes the record. Errors are only for what stops the run itself
/// (no key can be made); every finding is a check.
pub async fn run(opts: &Options, ui: &mut dyn view::Ui) -> anyhow::Result<Outcome> {
    let lang = opts.lang;
    let cfg = &opts.config;
    let started = Utc::now();
    let run_id = format!(
        "{}-{:04x}",
        started.format("%Y%m%dT%H%M%SZ"),
        std::process::id() & 0xffff
    );
    // The key first: a run whose record cannot be signed is refused before it sends anything.
    let key = record::load_or_create_key(&opts.state_dir)?;
    let mut checks: Vec<Check> = Vec::new();
    let mut found = config_out::Found::default();
    let push = |ui: &mut dyn view::Ui, c: Check, all: &mut Vec<Check>| {
        ui.check(&c);
        all.push(c);
    };

    // 1. Box.
    ui.step(Step::Box);
    let store_dir = cfg
        .store
        .as_ref()
        .and_then(|s| s.path.parent().map(Path::to_path_buf))
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| opts.state_dir.clone());
    for c in [
        host::clock_check(lang, host::read_clock()),
        host::store_check(lang, &store_dir),
        host::disk_check(lang, &store_dir),
        host::ups_check(lang, cfg.ups.as_ref()),
        host::version_check(lang),
    ] {
        push(ui, c, &mut checks);
    }

    // 2. Ports.
    ui.step(Step::Ports);
    let serial = ports::list_ports(&opts.by_id_dir, &opts.sys_class_tty);
    let configured = configured_ports(cfg);
    for c in ports::port_checks(lang, &serial, &configured) {
        push(ui, c, &mut checks);
    }
    // What answers on the ports the configuration does not use: a sensor node speaks first
    // (pqlink frames every half cycle), so listening is enough; meters only answer a question
    // (`--scan`).
    for p in ports::unused(&serial, &configured) {
        ui.wait(&lang.ta("cm-wait-port", &[("port", p.by_id.as_str())]));
        let mut cap = node::capture(&p.device, PQLINK_BAUD, PORT_PROBE, PORT_PROBE, |f| {
            ui.progress(f)
        })
        .await;
        // Frames but no Hello yet: a node, whose identity and scale come every 10 s. Worth the
        // wait: the written configuration needs its voltage.
        if cap
            .as_ref()
            .is_ok_and(|c| c.half_cycles > 0 && c.hello.is_none())
        {
            cap = node::capture(&p.device, PQLINK_BAUD, PORT_PROBE, node::HELLO_WAIT, |f| {
                ui.progress(f)
            })
            .await;
        }
        ui.done_waiting();
        if let Some(cap) = cap.ok().filter(|c| c.half_cycles > 0 || c.hello.is_some()) {
            let id = cap
                .hello
                .as_ref()
                .map(|h| format!("{:08x}", h.node_id))
                .unwrap_or_else(|| "?".into());
            push(
                ui,
                Check::new(
                    Step::Ports,
                    "ports.node-found",
                    &p.by_id,
                    Status::Warn,
                    lang.ta(
                        "cm-port-node-found",
                        &[("port", p.by_id.as_str()), ("id", id.as_str())],
                    ),
                )
                .fix(lang.ta("cm-port-node-found-fix", &[("port", p.by_id.as_str())]))
                .text("node_id", id),
                &mut checks,
            );
            // A name no configured source or found node has: kare refuses two sources of one name.
            let taken = |n: &str| {
                cfg.node.iter().any(|x| x.name == n)
                    || cfg.modbus.iter().any(|x| x.name == n)
                    || cfg.dlt645.iter().any(|x| x.name == n)
                    || found.nodes.iter().any(|x| x.name == n)
            };
            let name = (1..)
                .map(|i| format!("node-{i}"))
                .find(|n| !taken(n))
                .unwrap_or_else(|| "node-found".into());
            found
                .nodes
                .push(crate::sources::pqlink::config::NodeEntry::found(
                    &name,
                    &p.by_id,
                    cap.mean_volts()
                        .and_then(|v| v.first().copied())
                        .map(nominal_udin)
                        .unwrap_or(230.0),
                ));
        }
    }

    // 3. Sensor nodes.
    ui.step(Step::Node);
    if cfg.node.is_empty() {
        push(
            ui,
            Check::new(
                Step::Node,
                "node.configured",
                "",
                Status::Warn,
                lang.t("cm-node-none"),
            )
            .fix(lang.t("cm-node-none-fix")),
            &mut checks,
        );
    }
    let mut node_volts = Vec::new();
    for n in &cfg.node {
        ui.wait(&lang.ta(
            "cm-wait-node",
            &[
                ("node", n.name.as_str()),
                ("seconds", &format!("{:.0}", opts.node_listen.as_secs_f64())),
            ],
        ));
        let cap = node::capture(&n.port, n.baud, opts.node_listen, node::HELLO_WAIT, |f| {
            ui.progress(f)
        })
        .await;
        ui.done_waiting();
        match cap {
            Err(e) => push(
                ui,
                Check::new(
                    Step::Node,
                    "node.link",
                    &n.name,
                    Status::Fail,
                    lang.ta(
                        "cm-node-port-error",
                        &[("port", n.port.as_str()), ("error", e.as_str())],
                    ),
                )
                .fix(lang.t("cm-port-missing-fix")),
                &mut checks,
            ),
            Ok(cap) => {
                if let Some(v) = cap.mean_volts().filter(|v| v.len() >= 3) {
                    node_volts.push(cross::NodeVoltages {
                        node: n.name.clone(),
                        volts: [v[0], v[1], v[2]],
                    });
                }
                let judged = node::judge(lang, n, &cap);
                // Every node that said Hello stays in the written configuration, faults and
                // all: the crew fixes the wiring, not the file (a node left out would leave
                // the site to the meters' polls).
                if cap.hello.is_some() {
                    found.nodes.push(n.clone());
                }
                for c in judged {
                    push(ui, c, &mut checks);
                }
            }
        }
    }

    // 4. Meters.
    ui.step(Step::Meters);
    let meter_values = if cfg.modbus.is_empty() && cfg.dlt645.is_empty() {
        push(
            ui,
            Check::new(
                Step::Meters,
                "meters.configured",
                "",
                Status::Warn,
                lang.t("cm-meter-none"),
            )
            .fix(lang.t("cm-meter-none-fix")),
            &mut checks,
        );
        Vec::new()
    } else {
        ui.wait(&lang.ta(
            "cm-wait-meters",
            &[(
                "seconds",
                &format!("{:.0}", opts.meter_listen.as_secs_f64()),
            )],
        ));
        let v = meters::read_configured(cfg, opts.meter_listen, |f| ui.progress(f)).await;
        ui.done_waiting();
        let v = v?;
        for c in meters::meter_checks(lang, &v, opts.meter_listen) {
            push(ui, c, &mut checks);
        }
        v
    };
    for b in &cfg.modbus {
        let answered: Vec<_> = b
            .device
            .iter()
            .filter(|d| {
                meter_values
                    .iter()
                    .any(|m| m.bus == b.name && m.device == d.name && !m.values.is_empty())
            })
            .cloned()
            .collect();
        if !answered.is_empty() {
            let mut bus = b.clone();
            bus.device = answered;
            found.modbus.push(bus);
        }
    }
    for b in &cfg.dlt645 {
        let answered: Vec<_> = b
            .device
            .iter()
            .filter(|d| {
                meter_values
                    .iter()
                    .any(|m| m.bus == b.name && m.device == d.name && !m.values.is_empty())
            })
            .cloned()
            .collect();
        if !answered.is_empty() {
            let mut bus = b.clone();
            bus.device = answered;
            found.dlt645.push(bus);
        }
    }

    if !opts.scan.is_empty() {
        let (scan_checks, scanned) = scan::run(lang, &opts.scan, cfg, ui).await;
        for c in scan_checks {
            push(ui, c, &mut checks);
        }
        merge_scanned(cfg, &mut found, scanned);
    }

    // 5. Cross-checks.
    ui.step(Step::Cross);
    let cross = cross::cross_checks(lang, &node_volts, &meter_values);
    if cross.is_empty() {
        push(
            ui,
            Check::new(
                Step::Cross,
                "cross.none",
                "",
                Status::Warn,
                lang.t("cm-cross-none"),
            )
            .fix(lang.t("cm-cross-none-fix")),
            &mut checks,
        );
    }
    for c in cross {
        push(ui, c, &mut checks);
    }

    // 6. Uplinks.
    ui.step(Step::Uplinks);
    if opts.uplinks {
        let payload = uplinks::test_payload(cfg, &opts.crew, &run_id, Utc::now());
        ui.wait(&lang.t("cm-wait-uplinks"));
        let delivered = uplinks::delivery_checks(lang, cfg, &payload).await;
        ui.done_waiting();
        for c in delivered {
            push(ui, c, &mut checks);
        }
        if let Some(influx) = &cfg.influx {
            let c = uplinks::influx_check(lang, influx, &run_id).await;
            push(ui, c, &mut checks);
        }
    } else {
        push(
            ui,
            Check::new(
                Step::Uplinks,
                "uplinks.skipped",
                "",
                Status::Warn,
                lang.t("cm-uplink-skipped"),
            )
            .fix(lang.t("cm-uplink-skipped-fix")),
            &mut checks,
        );
    }

    // The record.
    let mut rec = record::Record {
        run_id,
        started_at: started.to_rfc3339_opts(SecondsFormat::Secs, true),
        finished_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        crew: opts.crew.clone(),
        lang: lang.code().to_string(),
        site_id: cfg.site.as_ref().map(|s| s.id.clone()).unwrap_or_default(),
        customer: cfg
            .site
            .as_ref()
            .map(|s| s.customer_name.clone())
            .unwrap_or_default(),
        host: host_name(),
        version: env!("CARGO_PKG_VERSION").into(),
        config: opts.config_path.clone(),
        verdict: Status::Pass,
        checks,
    };
    rec.settle();
    let signed = record::sign(&rec, &key);
    Ok(Outcome {
        record: rec,
        signed,
        found,
    })
}

/// The same device whatever it is called (`/dev/serial/by-id/…` or `/dev/ttyUSB0`).
fn same_port(a: &str, b: &str) -> bool {
    let real = |p: &str| std::fs::canonicalize(p).unwrap_or_else(|_| PathBuf::from(p));
    a == b || (!a.is_empty() && !b.is_empty() && real(a) == real(b))
}

/// Adds what a scan found to what answered where configured. A configured bus that answered
/// keeps its name, devices and settings, and gains the new devices found at its settings; a
/// configured bus on a searched port that did not answer is replaced by what the scan found
/// there, under the configured names (history, ticket and series keys follow the names).
fn merge_scanned(cfg: &Config, found: &mut config_out::Found, scanned: scan::Scanned) {
    for mut s in scanned.modbus {
        let at = |b: &crate::sources::meters::modbus::config::ModbusEntry| {
            same_port(&b.port, &s.port) || (b.address.is_some() && b.address == s.address)
        };
        if let Some(c) = found.modbus.iter_mut().find(|b| at(b)) {
            if c.baud == s.baud && c.parity == s.parity {
                for d in s.device {
                    if !c.device.iter().any(|x| x.slave_id == d.slave_id) {
                        c.device.push(d);
                    }
                }
            }
            // Other settings on a bus that answered at its own: one bus, one line setting; the
            // check already told the crew of the other meters.
            continue;
        }
        if let Some(c) = cfg.modbus.iter().find(|b| at(b)) {
            s.name = c.name.clone();
            s.port = c.port.clone();
            s.udin = c.udin;
            if let ([d], [was]) = (s.device.as_mut_slice(), c.device.as_slice()) {
                d.name = was.name.clone();
                d.poll_every_s = was.poll_every_s;
            }
        }
        found.modbus.push(s);
    }
    for mut s in scanned.dlt645 {
        if found.dlt645.iter().any(|b| same_port(&b.port, &s.port)) {
            continue;
        }
        if let Some(c) = cfg.dlt645.iter().find(|b| same_port(&b.port, &s.port)) {
            s.name = c.name.clone();
            s.port = c.port.clone();
            s.udin = c.udin;
        }
        found.dlt645.push(s);
    }
}

/// Every port the configuration names, with the section naming it.
pub fn configured_ports(cfg: &Config) -> Vec<ports::ConfiguredPort> {
    let mut out = Vec::new();
    for n in &cfg.node {
        out.push(ports::ConfiguredPort {
            path: n.port.clone(),
            used_by: format!("[[node]] {}", n.name),
        });
    }
    // A Modbus TCP bus has an address, not a serial port.
    for b in cfg.modbus.iter().filter(|b| b.transport == "rtu") {
        out.push(ports::ConfiguredPort {
            path: b.port.clone(),
            used_by: format!("[[modbus]] {}", b.name),
        });
    }
    for b in &cfg.dlt645 {
        out.push(ports::ConfiguredPort {
            path: b.port.clone(),
            used_by: format!("[[dlt645]] {}", b.name),
        });
    }
    out
}

/// Writes the signed record and its page, stores it, and sends it to the repair desk's route.
/// Returns one line per place it went (or failed to go), in the crew's language.
pub async fn file_record(opts: &Options, outcome: &Outcome) -> Vec<String> {
    let lang = opts.lang;
    let mut lines = Vec::new();
    let json_path = &opts.record_path;
    let html_path = json_path.with_extension("html");
    let write = |p: &Path, text: &str| -> std::io::Result<()> {
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(p, text)
    };
    for (p, text) in [
        (json_path.clone(), outcome.signed.clone()),
        (
            html_path.clone(),
            page::render(lang, &outcome.record, &outcome.signed),
        ),
    ] {
        match write(&p, &text) {
            Ok(()) => {
                lines.push(lang.ta("cm-record-written", &[("path", &p.display().to_string())]))
            }
            Err(e) => lines.push(lang.ta(
                "cm-record-not-written",
                &[
                    ("path", &p.display().to_string()),
                    ("error", &e.to_string()),
                ],
            )),
        }
    }
    if let Some(st) = &opts.config.store {
        let verdict = format!("{:?}", outcome.record.verdict).to_lowercase();
        let saved = crate::store::Store::open(st).and_then(|mut s| {
            s.save_commissioning(Utc::now(), &outcome.record.crew, &verdict, &outcome.signed)
        });
        match saved {
            Ok(id) => lines.push(lang.ta(
                "cm-record-stored",
                &[
                    ("id", &id.to_string()),
                    ("path", &st.path.display().to_string()),
                ],
            )),
            Err(e) => lines.push(lang.ta("cm-record-not-stored", &[("error", &e.to_string())])),
        }
    }
    if opts.uplinks {
        lines.extend(
            uplinks::send_record(lang, &opts.config, &outcome.record, &outcome.signed).await,
        );
    }
    lines
}
