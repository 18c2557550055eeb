//! `kare commission` at the binary's edge: flags to [`commission::Options`], the view chosen by
//! the terminal, the crew's name asked for when a person is there, exit status 1 when a check
//! failed; and `kare commission verify FILE`.

use crate::commission::{self, check::Status, view};
use crate::config::Config;
use crate::web::i18n::Lang;
use anyhow::Context;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

/// Where an appliance installed from the package keeps its configuration.
pub const DEFAULT_CONFIG: &str = "/etc/kare/kare.toml";

/// The flags of a commissioning run.
#[derive(Clone, Debug)]
pub struct CommissionFlags {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--non-interactive`.
    pub non_interactive: bool,
    /// `--json`.
    pub json: bool,
    /// `--lang`.
    pub lang: Option<String>,
    /// `--crew`.
    pub crew: Option<String>,
    /// `--node-seconds`.
    pub node_seconds: f64,
    /// `--meter-seconds`.
    pub meter_seconds: f64,
    /// `--no-uplinks`.
    pub no_uplinks: bool,
    /// `--record`.
    pub record: Option<PathBuf>,
    /// `--state-dir`.
    pub state_dir: Option<PathBuf>,
    /// `--write-config`.
    pub write_config: Option<PathBuf>,
    /// `--ports-dir`.
    pub ports_dir: PathBuf,
    /// `--scan`.
    pub scan: Vec<String>,
    /// `--scan-tcp`.
    pub scan_tcp: Vec<String>,
    /// `--scan-gateway`.
    pub scan_gateway: Vec<String>,
    /// `--scan-bauds`.
    pub scan_bauds: Vec<u32>,
    /// `--scan-parities`.
    pub scan_parities: Vec<String>,
    /// `--scan-addresses`.
    pub scan_addresses: Option<String>,
    /// `--scan-timeout-ms`.
    pub scan_timeout_ms: Option<u64>,
}

/// `--scan-addresses`: `17` or `1-32`, within 0–255.
pub fn address_range(text: &str) -> anyhow::Result<std::ops::RangeInclusive<u8>> {
    let bad = || {
        anyhow::anyhow!(
            "--scan-addresses must be an address or a range such as 1-32 (0 to 255), not {text:?}"
        )
    };
    let (a, b) = match text.split_once('-') {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (text.trim(), text.trim()),
    };
    let (a, b): (u8, u8) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if a > b {
        return Err(bad());
    }
    Ok(a..=b)
}

fn scan_request(flags: &CommissionFlags) -> anyhow::Result<commission::scan::ScanRequest> {
    let parities = flags
        .scan_parities
        .iter()
        .map(|p| {
            crate::sources::meters::modbus::Parity::parse(p).ok_or_else(|| {
                anyhow::anyhow!("--scan-parities takes none, even or odd, not {p:?}")
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(b) = flags
        .scan_bauds
        .iter()
        .find(|b| !(300..=115_200).contains(*b))
    {
        anyhow::bail!("--scan-bauds must be from 300 to 115200, not {b}");
    }
    if let Some(t) = flags.scan_timeout_ms.filter(|t| !(1..=10_000).contains(t)) {
        anyhow::bail!("--scan-timeout-ms must be from 1 to 10000, not {t}");
    }
    Ok(commission::scan::ScanRequest {
        serial: flags.scan.clone(),
        tcp: flags.scan_tcp.clone(),
        gateways: flags.scan_gateway.clone(),
        bauds: (!flags.scan_bauds.is_empty()).then(|| flags.scan_bauds.clone()),
        parities: (!parities.is_empty()).then_some(parities),
        addresses: flags
            .scan_addresses
            .as_deref()
            .map(address_range)
            .transpose()?,
        timeout: flags.scan_timeout_ms.map(Duration::from_millis),
    })
}

/// The language: `--lang`, else the environment's (`LANG=zh_CN.UTF-8` → 简体中文), else English.
pub fn language(flag: Option<&str>) -> anyhow::Result<Lang> {
    if let Some(l) = flag {
        return Lang::parse(l)
            .ok_or_else(|| anyhow::anyhow!("--lang must be zh-CN or en, not {l:?}"));
    }
    for var in ["LC_ALL", "LC_MESSAGES", "LANG"] {
        if let Ok(v) = std::env::var(var) {
            if !v.is_empty() {
                return Ok(if v.to_lowercase().starts_with("zh") {
                    Lang::ZhCn
                } else {
                    Lang::En
                });
            }
        }
    }
    Ok(Lang::En)
}

fn seconds(v: f64, flag: &str) -> anyhow::Result<Duration> {
    if v.is_finite() && v > 0.0 && v <= 3600.0 {
        Ok(Duration::from_secs_f64(v))
    } else {
        anyhow::bail!(
            "{flag} must be more than 0 and at most 3600 seconds, e.g. {flag} 10; not {v}"
        )
    }
}

/// Whether systemd runs the kare service now (false where there is no systemd).
fn service_running() -> bool {
    std::process::Command::new("systemctl")
        .args(["is-active", "--quiet", "kare.service"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn ask(prompt: &str) -> Option<String> {
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "{prompt} ");
    let _ = out.flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).ok()?;
    Some(line.trim().to_string())
}

/// Runs a commissioning; returns the exit status (0: no check failed, 1: one did).
pub fn run(flags: CommissionFlags, rt: &tokio::runtime::Runtime) -> anyhow::Result<u8> {
    let lang = language(flags.lang.as_deref())?;
    // Beside a running service, two readers would split the node's bytes and collide on the
    // meter bus, and every finding would blame the wiring.
    if service_running() {
        anyhow::bail!(
            "the kare service is running and holds the serial ports: stop it first (`sudo systemctl stop kare`), commission, then start it again (`sudo systemctl start kare`)"
        );
    }
    let path = match &flags.config {
        Some(p) => p.clone(),
        None if std::path::Path::new(DEFAULT_CONFIG).exists() => PathBuf::from(DEFAULT_CONFIG),
        None => anyhow::bail!(
            "no configuration: give --config FILE (an installed appliance has {DEFAULT_CONFIG}; `systemd/kare.toml` is a commented example)"
        ),
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read configuration {}", path.display()))?;
    let config = Config::parse(&text, &path.display().to_string())?;
    let interactive = !flags.non_interactive
        && !flags.json
        && std::io::stdin().is_terminal()
        && std::io::stdout().is_terminal();
    let crew = match flags.crew.clone().filter(|c| !c.trim().is_empty()) {
        Some(c) => c,
        None if interactive => loop {
            match ask(&lang.t("cm-ask-crew")) {
                Some(name) if !name.is_empty() => break name,
                Some(_) => continue,
                None => anyhow::bail!("no crew name given (standard input closed)"),
            }
        },
        None => std::env::var("USER").unwrap_or_else(|_| "unknown".into()),
    };
    let state_dir = flags
        .state_dir
        .clone()
        .unwrap_or_else(|| commission::default_state_dir(&config));
    let record_path = flags.record.clone().unwrap_or_else(|| {
        state_dir.join(format!(
            "commissioning-{}.json",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        ))
    });
    let opts = commission::Options {
        config,
        config_path: path.display().to_string(),
        crew,
        lang,
        node_listen: seconds(flags.node_seconds, "--node-seconds")?,
        meter_listen: seconds(flags.meter_seconds, "--meter-seconds")?,
        uplinks: !flags.no_uplinks,
        state_dir,
        record_path,
        by_id_dir: flags.ports_dir.clone(),
        scan: scan_request(&flags)?,
        sys_class_tty: PathBuf::from("/sys/class/tty"),
    };
    let mut ui: Box<dyn view::Ui> = if flags.json {
        Box::new(view::Quiet)
    } else if std::io::stdout().is_terminal() {
        Box::new(view::Terminal::new(lang))
    } else {
        Box::new(view::Plain::new(lang, std::io::stdout()))
    };
    if !flags.json {
        ui.note(&lang.ta(
            "cm-start",
            &[("config", &opts.config_path), ("crew", &opts.crew)],
        ));
    }
    let outcome = rt.block_on(commission::run(&opts, ui.as_mut()))?;
    let (p, w, f) = outcome.record.counts();
    if !flags.json {
        ui.note("");
        ui.note(&format!(
            "{} {}",
            outcome.record.verdict.word(),
            lang.ta(
                "cm-summary-counts",
                &[
                    ("pass", &p.to_string()),
                    ("warn", &w.to_string()),
                    ("fail", &f.to_string())
                ]
            )
        ));
    }
    let filed = rt.block_on(commission::file_record(&opts, &outcome));
    let mut write_failed = false;
    if let Some(out) = &flags.write_config {
        let header = vec![
            format!(
                "Written by `kare commission --write-config` on {} (crew: {}).",
                outcome.record.finished_at, outcome.record.crew
            ),
            format!(
                "The sources below answered during commissioning; the rest is as in {}.",
                opts.config_path
            ),
        ];
        let written = commission::config_out::render(&text, &outcome.found, &header)
            .map_err(|e| anyhow::anyhow!("cannot write the configuration: {e}"))
            .and_then(|t| {
                std::fs::write(out, t).with_context(|| {
                    format!("cannot write the configuration to {}", out.display())
                })?;
                // It carries the base file's secrets (endpoint passwords): its mode too.
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&path)
                    .map(|m| m.permissions().mode() & 0o777)
                    .unwrap_or(0o600);
                std::fs::set_permissions(out, std::fs::Permissions::from_mode(mode))
                    .with_context(|| format!("cannot set the mode of {}", out.display()))
            });
        match written {
            Ok(()) => {
                if !flags.json {
                    ui.note(&lang.ta("cm-config-written", &[("path", &out.display().to_string())]));
                }
            }
            Err(e) => {
                eprintln!("kare: {e:#}");
                write_failed = true;
            }
        }
    }
    if flags.json {
        crate::cli::outln!("{}", outcome.signed.trim_end());
        for l in &filed {
            eprintln!("kare commission: {l}");
        }
    } else {
        for l in &filed {
            ui.note(l);
        }
    }
    // A failed check, or a record or configuration that could not be written: the crew must
    // not leave believing it is done.
    let record_written = opts.record_path.exists();
    Ok(
        if outcome.record.verdict == Status::Fail || write_failed || !record_written {
            1
        } else {
            0
        },
    )
}

/// `kare commission verify FILE [--key HEX]`: 0 valid, 1 not.
pub fn verify(file: &std::path::Path, key: Option<&str>, lang: Lang) -> anyhow::Result<u8> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    match commission::record::verify(&text, key) {
        Ok((rec, by)) => {
            let (p, w, f) = rec.counts();
            crate::cli::outln!(
                "{}",
                lang.ta(
                    "cm-verify-ok",
                    &[
                        ("file", &file.display().to_string()),
                        ("key", &by),
                        ("site", &rec.site_id),
                        ("crew", &rec.crew),
                        ("when", &rec.finished_at),
                        ("verdict", rec.verdict.word()),
                        ("pass", &p.to_string()),
                        ("warn", &w.to_string()),
                        ("fail", &f.to_string()),
                    ]
                )
            );
            Ok(0)
        }
        Err(e) => {
            crate::cli::outln!(
                "{}",
                lang.ta(
                    "cm-verify-bad",
                    &[
                        ("file", &file.display().to_string()),
                        ("why", &e.to_string())
                    ]
                )
            );
            Ok(1)
        }
    }
}
