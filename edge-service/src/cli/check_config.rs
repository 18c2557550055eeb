//! `kare check-config FILE`: the configuration checks of `kare run`, without running anything:
//! for an installer editing `/etc/kare/kare.toml` before `systemctl restart kare`, and for the
//! package's tests. Every problem it finds is one line with the key, its line and what to write
//! instead; nothing is opened for writing (the store, serial ports, GPIO are left alone).

use crate::config::{line_of, Config, ConfigError};
use std::path::Path;

/// One thing `kare run` would refuse.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// The key (`node[0].udin`, `site`), when the problem has one.
    pub key: Option<String>,
    /// The 1-based line of the key (or of the section it belongs in), when it is written.
    pub line: Option<usize>,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// What a check found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Problems: `kare run` would refuse to start (exit 1).
    pub problems: Vec<Problem>,
    /// What `kare run` would say at start but accept.
    pub warnings: Vec<String>,
    /// On success, the one-line summary (nodes, buses, endpoints).
    pub summary: Option<String>,
}

/// Checks the file as `kare run` does at start: `Config::load` (syntax, types, unknown keys,
/// ranges; it stops at the first of these), then what `kare run` requires beyond it, all
/// collected: a `[[node]]`, a `[site]`, the store's folder, the meter profiles, the UPS.
pub fn check(path: &Path) -> Outcome {
    let mut out = Outcome::default();
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            out.problems.push(Problem {
                key: e.key().map(str::to_string),
                line: e.line(),
                message: match &e {
                    ConfigError::Read { .. } => format!(
                        "{e}: give the path of the configuration (the package's is /etc/kare/kare.toml)"
                    ),
                    _ => e.to_string(),
                },
            });
            return out;
        }
    };
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let file = path.display().to_string();
    let mut problem = |key: &str, message: String| {
        let line = line_of(&text, key);
        let place = line.map(|l| format!(", line {l}")).unwrap_or_default();
        out.problems.push(Problem {
            key: Some(key.to_string()),
            line,
            message: format!("configuration {file}{place}: `{key}`: {message}"),
        });
    };
    if config.node.is_empty() {
        problem(
            "node",
            "no [[node]]: add one with its serial port and udin (see the sample, systemd/kare.toml)"
                .into(),
        );
    }
    if config.site.is_none() {
        problem(
            "site",
            "no [site]: tickets need the customer, tier and contacts (see the sample, systemd/kare.toml)"
                .into(),
        );
    }
    let store = config.store.clone().unwrap_or_default();
    let folder = store
        .path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !folder.is_dir() {
        problem(
            "store.path",
            format!(
                "the store's folder {} does not exist: create it (the package makes /var/lib/kare) or set [store] path",
                folder.display()
            ),
        );
    } else if store.path.is_dir() {
        problem(
            "store.path",
            format!(
                "{} is a folder: name the database file in it, e.g. path = \"{}\"",
                store.path.display(),
                store.path.join("kare.db").display()
            ),
        );
    }
    if let Err(e) = config.meter_buses() {
        // A profile file that changed or vanished since it was read.
        problem("modbus", format!("{e:#}"));
    }
    // Without GPIO support an [ups] is refused here as at start; with it (`--features rpi`),
    // opening the pins is left to `kare run`: a check touches no hardware.
    if !cfg!(feature = "rpi") {
        if let Err(e) = config.ups_task() {
            problem("ups", format!("{e:#}"));
        }
    }
    // The doors: a listen beyond loopback needs [auth], secret files must be 0600 and read.
    if let Err(e) = crate::web::auth::Access::for_listen(
        config.listen,
        config.auth.as_ref(),
        config.tls.as_ref(),
    ) {
        problem(
            if config.auth.is_none() {
                "listen"
            } else {
                "auth"
            },
            e.to_string(),
        );
    }
    if config.delivery.is_none() {
        out.warnings
            .push("no [delivery] endpoints: tickets are stored and shown, but sent nowhere".into());
    }
    out.warnings.extend(config.warnings());
    if out.problems.is_empty() {
        let endpoints = config.delivery.as_ref().map_or(0, |d| d.endpoint.len());
        out.summary = Some(format!(
            "ok: {file}: {} node(s), {} Modbus bus(es), {} DL/T 645 bus(es), {} delivery endpoint(s), store {}",
            config.node.len(),
            config.modbus.len(),
            config.dlt645.len(),
            endpoints,
            store.path.display()
        ));
    }
    out
}

/// Runs the check and prints it: problems and warnings on stderr, the summary on stdout. Exit
/// status 0 when `kare run` would start, 1 when not.
pub fn run(path: &Path) -> u8 {
    let out = check(path);
    for w in &out.warnings {
        eprintln!("kare: warning: {}", crate::config::check::printable(w));
    }
    for p in &out.problems {
        eprintln!("kare: {}", crate::config::check::printable(&p.message));
    }
    match &out.summary {
        Some(s) => {
            crate::cli::outln!("{}", crate::config::check::printable(s));
            0
        }
        None => {
            eprintln!(
                "kare: {} problem(s) in {}: `kare run` would refuse it",
                out.problems.len(),
                path.display()
            );
            1
        }
    }
}
