//! The service's configuration: one TOML file, typed, validated at start with messages that
//! name the key (and, for syntax and type errors, the line).
//!
//! This module only composes. Each section's type, its own checks and what it builds live beside
//! its component (`[[node]]` in `sources/pqlink/config.rs`, `[[modbus]]` and `[[dlt645]]` beside
//! their pollers, `[ups]` beside the UPS monitor, `[site]`, `[rules]`, `[delivery]`, `[store]`,
//! `[influx]` in theirs), and reports a [`ConfigProblem`] with a key relative to the section;
//! here the key is placed under the section, and what spans sections is checked: unique names,
//! one serial port per source, routes naming endpoints that exist.

use crate::actions::record::RouteTable;
use crate::actions::rules::RuleSettings;
use crate::actions::site::Site;
use crate::pipeline::service::{MeterBusTask, UpsTask};
use crate::sources::meters::dlt645::config::Dlt645Entry;
use crate::sources::meters::modbus::config::ModbusEntry;
use crate::sources::pqlink::config::NodeEntry;
use crate::sources::pqlink::PqlinkSourceConfig;
use crate::sources::ups::config::UpsEntry;
use kare_firmware::detector::Thresholds;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;
use thiserror::Error;

pub mod check;
mod lines;
mod problem;
pub use lines::line_of;
pub use problem::ConfigProblem;

/// Why a configuration was refused.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML, or a value of the wrong type, or an unknown key.
    #[error("configuration {path}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// The parser's message, with line and column.
        message: String,
        /// The line the parser stopped at, when it knows.
        line: Option<usize>,
    },
    /// A value that makes no sense.
    #[error("configuration {path}{}: `{key}`: {problem}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Value {
        /// The file.
        path: String,
        /// The key, e.g. `node[1].dip_pct`.
        key: String,
        /// What is wrong and what would be right.
        problem: String,
        /// Where the key (or the section it is missing from) is written, when it is.
        line: Option<usize>,
    },
}

impl ConfigError {
    /// The line the problem is on (or the section the missing key belongs in), when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Syntax { line, .. } | ConfigError::Value { line, .. } => *line,
        }
    }

    /// The refused key of a value that makes no sense (`rules.demand_window_h`); syntax and
    /// unknown-key errors name theirs in the message.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Value { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// The line of a parse error at byte `at`. For an unknown key in a table the parser can only
/// point at the table (an endpoint's `[[delivery.endpoint]]`, whose fields serde reads through
/// its `kind` tag): then the key's own line in that table, when it is there.
fn syntax_line(text: &str, at: usize, message: &str) -> usize {
    let at = at.min(text.len());
    let line = text[..at].matches('\n').count() + 1;
    let unknown = message
        .strip_prefix("unknown field `")
        .and_then(|m| m.split('`').next());
    if let Some(key) = unknown {
        for (i, l) in text[at..].lines().enumerate().skip(1) {
            let l = l.trim_start();
            if l.starts_with('[') {
                break;
            }
            if l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
            {
                return line + i;
            }
        }
    }
    line
}

/// The whole file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address of the JSON API.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Sensor nodes on serial ports.
    #[serde(default)]
    pub node: Vec<NodeEntry>,
    /// Settings for `kare demo`.
    #[serde(default)]
    pub demo: DemoEntry,
    /// The key account this appliance watches (required by `kare run`).
    pub site: Option<Site>,
    /// Ticket rules (defaults: IEEE 1366 five-minute momentary limit, ten-minute flap window…).
    #[serde(default)]
    pub rules: RuleSettings,
    /// Modbus RTU buses.
    #[serde(default)]
    pub modbus: Vec<ModbusEntry>,
    /// DL/T 645-2007 buses.
    #[serde(default)]
    pub dlt645: Vec<Dlt645Entry>,
    /// The durable store (events, tickets, delivery outbox).
    pub store: Option<crate::store::StoreConfig>,
    /// Delivery endpoints (webhook, e-mail, SMS) and retry policy.
    pub delivery: Option<crate::actions::delivery::DeliveryConfig>,
    /// Which endpoints get which kind of ticket: `repair = ["desk-webhook", "desk-sms"]`.
    #[serde(default)]
    pub routes: RouteTable,
    /// The UPS HAT's GPIO inputs (needs a build with `--features rpi`).
    pub ups: Option<UpsEntry>,
    /// The central InfluxDB (readings, events, tickets, health for Grafana), with
    /// store-and-forward while it is out of reach.
    pub influx: Option<crate::sinks::influx::InfluxConfig>,
    /// Who may use the API and the pages (required to listen beyond loopback): token files,
    /// the users file (`web::auth`).
    pub auth: Option<crate::web::auth::AuthConfig>,
    /// HTTPS for the API and the pages (`web::tls`).
    pub tls: Option<crate::web::tls::TlsConfig>,
}

/// `[demo]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DemoEntry {
    /// Scenario file for the simulated node (default: the built-in demo scenario).
    pub scenario: Option<String>,
    /// Speed factor (1 = real time).
    pub speed: Option<f64>,
}

/// The fastest `kare demo` runs its scenario (`--speed`, `[demo] speed`): 0 is "as fast as
/// possible", 1 real time; beyond 1000 the simulator cannot keep up and the times mean nothing.
pub const MAX_SPEED: f64 = 1000.0;

/// The longest `--duration` (ten years, in seconds): beyond it a `Duration` overflows.
pub const MAX_DURATION_S: f64 = 315_360_000.0;

/// Checks a speed factor; the key is `speed`.
pub fn check_speed(v: f64) -> Result<(), ConfigProblem> {
    check::within(
        "speed",
        v,
        0.0,
        MAX_SPEED,
        "(0: as fast as possible, 1: real time)",
        "10",
    )
}

/// Checks a run time in seconds; the key is `duration`.
pub fn check_duration(v: f64) -> Result<(), ConfigProblem> {
    check::above("duration", v, 0.0, MAX_DURATION_S, "seconds", "60")
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: default_listen(),
            node: Vec::new(),
            demo: DemoEntry::default(),
            site: None,
            rules: RuleSettings::default(),
            modbus: Vec::new(),
            dlt645: Vec::new(),
            store: None,
            delivery: None,
            routes: Default::default(),
            ups: None,
            influx: None,
            auth: None,
            tls: None,
        }
    }
}

impl Config {
    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: p.clone(),
            source,
        })?;
        let mut cfg = Config::parse(&text, &p)?;
        cfg.read_secret_files(&p)?;
        Ok(cfg)
    }

    /// Reads each webhook's `secret_file` (0600, at least 16 characters) into its `secret`.
    fn read_secret_files(&mut self, path: &str) -> Result<(), ConfigError> {
        let Some(d) = self.delivery.as_mut() else {
            return Ok(());
        };
        for (i, e) in d.endpoint.iter_mut().enumerate() {
            let crate::actions::delivery::EndpointConfig::Webhook(w) = e else {
                continue;
            };
            let Some(file) = &w.secret_file else {
                continue;
            };
            let problem = match crate::web::auth::read_secret(file) {
                Ok(s) if s.trim().len() >= 16 => {
                    w.secret = s.trim().to_string();
                    continue;
                }
                Ok(_) => format!(
                    "{} holds fewer than 16 characters: receivers verify X-Kare-Signature with it; write a longer random secret",
                    file.display()
                ),
                Err(e) => e.to_string(),
            };
            return Err(ConfigError::Value {
                path: path.into(),
                key: format!("delivery.endpoint[{i}].secret_file"),
                problem,
                line: None,
            });
        }
        Ok(())
    }

    /// Parses and validates text; `path` is only for messages.
    pub fn parse(text: &str, path: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.into(),
            // The parser quotes the offending line: a raw escape code in it must not reach the
            // terminal.
            message: check::printable(&e.to_string().trim().replace('\n', " ")),
            line: e.span().map(|s| syntax_line(text, s.start, e.message())),
        })?;
        cfg.validate(path).map_err(|e| match e {
            ConfigError::Value {
                path, key, problem, ..
            } => ConfigError::Value {
                line: line_of(text, &key),
                path,
                key,
                problem,
            },
            other => other,
        })?;
        Ok(cfg)
    }

    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        self.problem().map_err(|p| ConfigError::Value {
            path: path.into(),
            key: p.key,
            problem: check::printable(&p.problem),
            line: None,
        })
    }

    /// The first problem, its key placed under its section. Each component checks its own
    /// section (ranges included); what spans sections is checked here.
    fn problem(&self) -> Result<(), ConfigProblem> {
        let bad = |key: String, problem: String| Err(ConfigProblem::new(key, problem));
        let mut names = std::collections::HashSet::new();
        for (i, n) in self.node.iter().enumerate() {
            n.validate().map_err(|p| p.under(&format!("node[{i}]")))?;
            if !names.insert(n.name.as_str()) {
                return bad(
                    format!("node[{i}].name"),
                    "is used by another node: names must be unique".into(),
                );
            }
        }
        // Nodes and buses are all sources: one name is one status entry, one coarse detector
        // and one maintenance ticket key, so a name used twice would mix two sources.
        let buses = self
            .modbus
            .iter()
            .enumerate()
            .map(|(i, b)| (format!("modbus[{i}].name"), b.name.as_str()))
            .chain(
                self.dlt645
                    .iter()
                    .enumerate()
                    .map(|(i, b)| (format!("dlt645[{i}].name"), b.name.as_str())),
            );
        for (key, name) in buses {
            if !names.insert(name) {
                return bad(
                    key,
                    format!(
                        "`{name}` is the name of another node or bus: every source needs its own name"
                    ),
                );
            }
        }
        if let Some(site) = &self.site {
            site.validate().map_err(|p| p.under("site"))?;
        }
        self.rules.validate().map_err(|p| p.under("rules"))?;
        for (i, b) in self.modbus.iter().enumerate() {
            b.validate().map_err(|p| p.under(&format!("modbus[{i}]")))?;
        }
        for (i, b) in self.dlt645.iter().enumerate() {
            b.validate().map_err(|p| p.under(&format!("dlt645[{i}]")))?;
        }
        if let Some(u) = &self.ups {
            u.validate().map_err(|p| p.under("ups"))?;
        }
        // One serial port, one source: two pollers (or a node and a poller) on one port would
        // garble each other's frames, and the appliance would blame the meters.
        let mut ports: std::collections::HashMap<&str, String> = Default::default();
        let sections = self
            .node
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("node[{i}].port"), n.port.as_str()))
            .chain(self.modbus.iter().enumerate().map(|(i, b)| {
                let key = if b.transport == "rtu" {
                    "port"
                } else {
                    "address"
                };
                (format!("modbus[{i}].{key}"), b.endpoint())
            }))
            .chain(
                self.dlt645
                    .iter()
                    .enumerate()
                    .map(|(i, b)| (format!("dlt645[{i}].port"), b.port.as_str())),
            );
        for (key, port) in sections {
            if let Some(first) = ports.get(port.trim()) {
                return bad(
                    key,
                    format!(
                        "{port} is already used by `{first}`: each node and bus needs its own serial port (or gateway address)"
                    ),
                );
            }
            ports.insert(port.trim(), key);
        }
        if let Some(st) = &self.store {
            st.validate().map_err(|p| p.under("store"))?;
        }
        if let Some(d) = &self.delivery {
            d.validate().map_err(|p| p.under("delivery"))?;
        }
        let endpoints: Vec<&str> = self
            .delivery
            .iter()
            .flat_map(|d| d.endpoint.iter().map(|e| e.name()))
            .collect();
        self.routes
            .validate(&endpoints)
            .map_err(|p| p.under("routes"))?;
        // A configured site's supply failures are what kare is for: leaving them unrouted must
        // be written out (`repair = []`), never the result of a missing or misspelt key.
        if self.site.is_some() && self.routes.repair.is_none() {
            return bad(
                "routes.repair".into(),
                "is not set, so the site's repair tickets (P1 for a critical site) would be sent nowhere: \
                 route them to the 24-hour repair desk, e.g. `[routes]` `repair = [\"repair-desk\"]` naming a \
                 [[delivery.endpoint]], or write `repair = []` to keep them in the store only, on purpose"
                    .into(),
            );
        }
        if let Some(i) = &self.influx {
            // The backlog's place is the service's to choose (beside the store): any will do here.
            let check = i.clone().with_data_dir(".");
            if let Err(crate::sinks::influx::InfluxError::Config { key, message }) =
                check.validate()
            {
                return bad(format!("influx.{key}"), message);
            }
        }
        if let Some(s) = &self.demo.scenario {
            check::text("demo.scenario", s, false)?;
        }
        if let Some(s) = self.demo.speed {
            check_speed(s).map_err(|p| p.under("demo"))?;
        }
        Ok(())
    }

    /// What the configuration leaves undone, to be said at start (kinds of ticket routed
    /// nowhere).
    pub fn warnings(&self) -> Vec<String> {
        self.routes.warnings()
    }

    /// The InfluxDB sink as the service runs it: the backlog beside the store (in `data_dir`)
    /// unless `[influx] backlog_path` says otherwise.
    pub fn influx_for(&self, data_dir: &Path) -> Option<crate::sinks::influx::InfluxConfig> {
        self.influx.clone().map(|i| i.with_data_dir(data_dir))
    }

    /// The serial sources to start.
    pub fn sources(&self) -> Vec<PqlinkSourceConfig> {
        self.node.iter().map(NodeEntry::source_config).collect()
    }
}

/// Meter bus tasks to start, and the buses (with thresholds) whose voltages feed coarse detection.
pub type MeterBuses = (Vec<MeterBusTask>, Vec<(String, Thresholds)>);

impl Config {
    /// The meter buses to start, and the buses whose voltages feed the coarse outage detector.
    /// Profiles were checked at load; a profile file that changed since is reported here.
    pub fn meter_buses(&self) -> anyhow::Result<MeterBuses> {
        use crate::sources::meters::{dlt645, modbus};
        let mut tasks: Vec<MeterBusTask> = Vec::new();
        let mut coarse = Vec::new();
        for (i, b) in self.modbus.iter().enumerate() {
            let cfg = b
                .bus_config()
                .map_err(|p| anyhow::anyhow!("{}", p.under(&format!("modbus[{i}]"))))?;
            if let Some(udin) = b.udin {
                coarse.push((b.name.clone(), Thresholds::typical(udin)));
            }
            tasks.push(Box::new(move |tx, shutdown| {
                Box::pin(async move {
                    let name = cfg.name.clone();
                    if let Err(e) = modbus::run(cfg, tx, shutdown).await {
                        tracing::error!(bus = %name, "Modbus bus not started: {e}");
                    }
                })
            }));
        }
        for (i, b) in self.dlt645.iter().enumerate() {
            let cfg = b
                .bus_config()
                .map_err(|p| anyhow::anyhow!("{}", p.under(&format!("dlt645[{i}]"))))?;
            if let Some(udin) = b.udin {
                coarse.push((b.name.clone(), Thresholds::typical(udin)));
            }
            tasks.push(Box::new(move |tx, shutdown| {
                Box::pin(dlt645::run(cfg, tx, shutdown))
            }));
        }
        Ok((tasks, coarse))
    }

    /// The UPS watch, if configured (an error on a build without GPIO support).
    pub fn ups_task(&self) -> anyhow::Result<Option<UpsTask>> {
        self.ups.as_ref().map(UpsEntry::task).transpose()
    }
}

#[cfg(test)]
mod tests;
