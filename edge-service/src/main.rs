//! The `kare` binary: command-line parsing and error reporting at the edge; the work is in the
//! library.
//!
//! Exit status: 0 done, 2 refused (a bad configuration or flag, or a failure it explains),
//! 70 a panic in any thread or task (see [`install_panic_hook`]).

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use kare::config::Config;
use kare::recording;
use kare::replay::{self, output, ReplayOptions};
use kare_firmware::detector;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// `kare --version`: the package version, the commit it was built from and the target
/// (`kare 0.1.0 (commit 708997b, aarch64-unknown-linux-gnu)`), set by build.rs.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("KARE_GIT_COMMIT"),
    ", ",
    env!("KARE_TARGET"),
    ")"
);

#[derive(Parser)]
#[command(name = "kare", version = VERSION, about = "kare: key-account reliability edge")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole service on a simulated sensor node: no hardware, no configuration needed.
    #[cfg(feature = "sim")]
    Demo(DemoArgs),
    /// Run the service on the sensor nodes of a configuration file.
    Run(RunArgs),
    /// Run the detector over a recording (COMTRADE .cfg/.cff, or CSV) and print the events found.
    Replay(ReplayArgs),
    /// Be a sensor node: write pqlink frames of a simulated supply to a serial port.
    #[cfg(feature = "sim")]
    Simulate(kare::sim::SimulateArgs),
    /// The key-account service report for one site and a period, from the store.
    Report(ReportArgs),
    /// Commission an installation on site: check the box, ports, sensor nodes, meters, wiring
    /// and uplinks, and leave a signed record (`kare commission verify FILE` checks one).
    Commission(Box<CommissionArgs>),
    /// Set a password for the pages: `kare passwd USER --role viewer|admin` (argon2 hash in
    /// /etc/kare/secrets/users, or --file).
    Passwd(kare::cli::access::PasswdArgs),
    /// Make a self-signed TLS certificate and key for [tls] (at install).
    GenCert(kare::cli::access::GenCertArgs),
    /// Check a configuration file as `kare run` would at start, without running anything: every
    /// problem with its key and line (exit 1), or a one-line summary (exit 0).
    CheckConfig(CheckConfigArgs),
}

/// `kare check-config FILE` (issue 15): the package's installer and whoever edits
/// /etc/kare/kare.toml check it before `systemctl restart kare`.
#[derive(clap::Args)]
struct CheckConfigArgs {
    /// The configuration file (TOML), e.g. /etc/kare/kare.toml.
    file: PathBuf,
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct CommissionArgs {
    #[command(subcommand)]
    action: Option<CommissionAction>,
    /// Configuration file (TOML) of the installation [default: /etc/kare/kare.toml].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Ask nothing (for scripts): the crew's name from --crew or $USER.
    #[arg(long)]
    non_interactive: bool,
    /// Print only the signed record, as JSON, on standard output.
    #[arg(long)]
    json: bool,
    /// Language of the checks and the record: zh-CN or en [default: from LANG, else en].
    #[arg(long, value_name = "LANG")]
    lang: Option<String>,
    /// The crew's name(s), as they sign the record.
    #[arg(long, value_name = "NAME")]
    crew: Option<String>,
    /// Seconds to listen to each sensor node.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    node_seconds: f64,
    /// Seconds to wait for the meters to answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 15.0)]
    meter_seconds: f64,
    /// Send no test tickets and write nothing to InfluxDB.
    #[arg(long)]
    no_uplinks: bool,
    /// Where to write the signed record (its printable page goes beside it, .html)
    /// [default: commissioning-<time>.json in the state folder].
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Where the appliance's signing key lives [default: the store's folder].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Also write the sources that answered as a configuration `kare run` accepts.
    #[arg(long, value_name = "FILE")]
    write_config: Option<PathBuf>,
    /// Where the serial ports' stable names are (udev's /dev/serial/by-id, or the package's
    /// /dev/kare).
    #[arg(long, value_name = "DIR", default_value = "/dev/serial/by-id")]
    ports_dir: PathBuf,
    /// Search this serial port for meters: a Modbus RTU scan over bauds, parities and
    /// addresses, then the DL/T 645 address broadcast (repeat for several ports).
    #[arg(long, value_name = "PORT")]
    scan: Vec<String>,
    /// Search a Modbus TCP meter or gateway (host:port) for unit ids.
    #[arg(long, value_name = "HOST:PORT")]
    scan_tcp: Vec<String>,
    /// Search an RTU-over-TCP gateway (host:port).
    #[arg(long, value_name = "HOST:PORT")]
    scan_gateway: Vec<String>,
    /// Bauds to scan [default: 2400,4800,9600,19200].
    #[arg(long, value_name = "BAUDS", value_delimiter = ',')]
    scan_bauds: Vec<u32>,
    /// Parities to scan: none, even, odd [default: none,even and the profiles'].
    #[arg(long, value_name = "PARITIES", value_delimiter = ',')]
    scan_parities: Vec<String>,
    /// Addresses to probe, e.g. 1-32 [default: 1-247].
    #[arg(long, value_name = "RANGE")]
    scan_addresses: Option<String>,
    /// How long to wait for a reply to begin, ms [default: 200 serial, 500 TCP].
    #[arg(long, value_name = "MS")]
    scan_timeout_ms: Option<u64>,
}

#[derive(Subcommand)]
enum CommissionAction {
    /// Check a signed commissioning record: exit 0 if it is intact and signed, 1 if not.
    Verify {
        /// The record (JSON).
        file: PathBuf,
        /// Also require this public key (hex), the appliance's.
        #[arg(long, value_name = "HEX")]
        key: Option<String>,
        /// Language of the answer: zh-CN or en.
        #[arg(long, value_name = "LANG")]
        lang: Option<String>,
    },
}

fn commission_cmd(args: CommissionArgs) -> anyhow::Result<u8> {
    use kare::cli::commission as c;
    if let Some(CommissionAction::Verify { file, key, lang }) = args.action {
        return c::verify(&file, key.as_deref(), c::language(lang.as_deref())?);
    }
    let flags = c::CommissionFlags {
        config: args.config,
        non_interactive: args.non_interactive,
        json: args.json,
        lang: args.lang,
        crew: args.crew,
        node_seconds: args.node_seconds,
        meter_seconds: args.meter_seconds,
        no_uplinks: args.no_uplinks,
        record: args.record,
        state_dir: args.state_dir,
        write_config: args.write_config,
        ports_dir: args.ports_dir,
        scan: args.scan,
        scan_tcp: args.scan_tcp,
        scan_gateway: args.scan_gateway,
        scan_bauds: args.scan_bauds,
        scan_parities: args.scan_parities,
        scan_addresses: args.scan_addresses,
        scan_timeout_ms: args.scan_timeout_ms,
    };
    c::run(flags, &runtime()?)
}

#[derive(Clone, Copy, ValueEnum)]
enum ReportFormatArg {
    Html,
    Json,
    Csv,
}

#[derive(clap::Args)]
struct ReportArgs {
    /// Configuration file (TOML): the report reads its `[store]`.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The store file, or the folder holding it (a `kare demo --data-dir` folder works).
    #[arg(long, value_name = "PATH")]
    store: Option<PathBuf>,
    /// Start of the period, inclusive: RFC 3339 or a date (its midnight UTC) [default: the
    /// first day of last month].
    #[arg(long, value_name = "DATE")]
    from: Option<String>,
    /// End of the period, exclusive [default: the first day of this month].
    #[arg(long, value_name = "DATE")]
    to: Option<String>,
    /// Language of the HTML report: zh-CN or en [default: en].
    #[arg(long, value_name = "LANG")]
    lang: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormatArg::Html)]
    format: ReportFormatArg,
    /// Where to write: a file (html, json; default standard output) or a folder (csv, required).
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
}

fn report_cmd(args: ReportArgs) -> anyhow::Result<()> {
    use kare::cli::report::{ReportFormat, ReportOptions};
    kare::cli::report::run(&ReportOptions {
        config: args.config,
        store: args.store,
        from: args.from,
        to: args.to,
        lang: args.lang,
        format: match args.format {
            ReportFormatArg::Html => ReportFormat::Html,
            ReportFormatArg::Json => ReportFormat::Json,
            ReportFormatArg::Csv => ReportFormat::Csv,
        },
        out: args.out,
    })
}

#[cfg(feature = "sim")]
#[derive(clap::Args)]
struct DemoArgs {
    /// Address of the JSON API [default: 127.0.0.1:8080, or the configuration's `listen`].
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// Configuration file (TOML): `listen`, `[demo]` scenario and speed, extra `[[node]]`s.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Scenario for the simulated node [default: the built-in demo: a dip, a swell, a short
    /// interruption and a longer outage within the first minute].
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Scenario seconds per wall-clock second (1 = real time, 0 = as fast as possible).
    #[arg(long, value_name = "FACTOR")]
    speed: Option<f64>,
    /// Stop after this many seconds [default: run until Ctrl-C].
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// Folder for the demo's store [default: a new temporary folder]; reuse one to see tickets
    /// survive a restart.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Also write to this InfluxDB (1.x `/write` API, database `kare`, created if missing), as
    /// `[influx] url = …` would; an `[influx]` section in --config keeps its other settings.
    #[arg(long, value_name = "URL")]
    influx: Option<String>,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Configuration file (TOML) with the sensor nodes to read.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Address of the JSON API, overriding the configuration's `listen`.
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// Stop after this many seconds [default: run until stopped].
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
    Csv,
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// Recording: COMTRADE `.cfg` (with its `.dat`) or `.cff`, or CSV (time in seconds, one column per channel).
    file: PathBuf,
    /// Analog channel names as written in the file, one per phase, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    channels: Vec<String>,
    /// Declared voltage Udin, in the unit of the channels' scaled values.
    #[arg(long, allow_negative_numbers = true)]
    udin: f64,
    /// Nominal frequency, 50 or 60 Hz [default: the file's own line frequency].
    #[arg(long, allow_negative_numbers = true)]
    frequency: Option<f64>,
    /// Dip threshold, % of Udin.
    #[arg(long, allow_negative_numbers = true, default_value_t = f64::from(detector::DEFAULT_DIP_PCT))]
    dip: f64,
    /// Swell threshold, % of Udin.
    #[arg(long, allow_negative_numbers = true, default_value_t = f64::from(detector::DEFAULT_SWELL_PCT))]
    swell: f64,
    /// Interruption threshold, % of Udin.
    #[arg(long, allow_negative_numbers = true, default_value_t = f64::from(detector::DEFAULT_INTERRUPTION_PCT))]
    interruption: f64,
    /// Hysteresis, % of Udin.
    #[arg(long, allow_negative_numbers = true, default_value_t = f64::from(detector::DEFAULT_HYSTERESIS_PCT))]
    hysteresis: f64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Also write every Urms(1/2) record (the RMS profile) to this CSV file.
    #[arg(long, value_name = "CSV")]
    rms: Option<PathBuf>,
}

fn replay_cmd(args: ReplayArgs) -> anyhow::Result<()> {
    let rec = recording::read(&args.file)?;
    let opts = ReplayOptions {
        channels: args.channels,
        udin: args.udin,
        frequency_hz: args.frequency,
        dip_pct: args.dip,
        swell_pct: args.swell,
        interruption_pct: args.interruption,
        hysteresis_pct: args.hysteresis,
        keep_rms: args.rms.is_some(),
    };
    let report =
        replay::analyse(&rec, &opts).with_context(|| format!("{}", args.file.display()))?;
    // Truncation, flagged data, an impossible date: said on stderr whatever the format, so a
    // script reading stdout still leaves a trace for the person running it.
    for w in report.warnings() {
        eprintln!(
            "kare: warning: {}: {}",
            recording::printable(&args.file.display().to_string()),
            w
        );
    }
    if let Some(path) = &args.rms {
        std::fs::write(path, output::rms_csv(&report))
            .with_context(|| format!("cannot write the RMS profile to {}", path.display()))?;
    }
    let text = match args.format {
        Format::Json => format!("{}\n", output::json(&report)),
        Format::Csv => output::csv(&report),
        Format::Table => output::table(&report),
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
        .context("cannot write the report to standard output")?;
    Ok(())
}

/// Exit status when a panic ends the process: 70, `EX_SOFTWARE` of sysexits.h ("internal
/// software error"), distinct from 2 (refused) and from a signal.
const PANIC_EXIT: i32 = 70;

/// Any panic, in any thread (tokio workers and blocking threads, the store's writer, the
/// simulator), ends the process at once with [`PANIC_EXIT`]. A task that dies alone leaves a
/// zombie: the API still answers 200 while nothing is watched, and systemd (`Restart=always`)
/// never learns. Dying whole, kare is restarted in seconds and its restart logic (open events
/// closed, tickets restored) takes over. Logged through tracing (the journal) and written to
/// stderr (in case the subscriber is what failed).
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let thread = thread.name().unwrap_or("unnamed");
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        let place = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(
            thread,
            place,
            "panic: {what}; kare stops with status {PANIC_EXIT}"
        );
        eprintln!(
            "kare: panic in thread '{thread}' at {place}: {what}\n\
             kare: stopping with status {PANIC_EXIT} (internal error) so that it is restarted; please report this"
        );
        let bt = std::backtrace::Backtrace::capture();
        if bt.status() == std::backtrace::BacktraceStatus::Captured {
            eprintln!("{bt}");
        }
        std::process::exit(PANIC_EXIT);
    }));
}

/// A `--duration`: more than 0 and at most ten years of seconds (`Duration` overflows beyond).
fn seconds(s: Option<f64>, flag: &str) -> anyhow::Result<Option<std::time::Duration>> {
    match s {
        None => Ok(None),
        Some(v) if kare::config::check_duration(v).is_ok() => {
            Ok(Some(std::time::Duration::from_secs_f64(v)))
        }
        Some(v) => anyhow::bail!(
            "{flag} must be more than 0 and at most {} seconds (ten years), e.g. {flag} 60; not {v}",
            kare::config::MAX_DURATION_S
        ),
    }
}

/// A `--speed`: 0 (as fast as possible) to [`kare::config::MAX_SPEED`].
#[cfg(feature = "sim")]
fn speed(s: Option<f64>) -> anyhow::Result<Option<f64>> {
    match s {
        Some(v) if kare::config::check_speed(v).is_err() => anyhow::bail!(
            "--speed must be from 0 (as fast as possible) to {} (1 is real time), e.g. --speed 10; not {v}",
            kare::config::MAX_SPEED
        ),
        s => Ok(s),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

#[cfg(feature = "sim")]
fn demo_cmd(args: DemoArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(url) = args.influx {
        let mut i = config.influx.take().unwrap_or_else(|| {
            let mut i = kare::sinks::influx::InfluxConfig::v1("", "kare");
            i.create_database = true;
            // A demo wants to see its points in Grafana at once.
            i.flush_interval_s = 1.0;
            i
        });
        i.url = url;
        i.clone()
            .with_data_dir(".")
            .validate()
            .map_err(|e| anyhow::anyhow!("--influx: {e}"))?;
        config.influx = Some(i);
    }
    let opts = kare::cli::demo::DemoOptions {
        config,
        scenario: args.scenario,
        speed: speed(args.speed)?,
        duration: seconds(args.duration, "--duration")?,
        data_dir: args.data_dir,
    };
    runtime()?.block_on(kare::cli::demo::demo(opts))
}

fn run_cmd(args: RunArgs) -> anyhow::Result<()> {
    let mut config = Config::load(&args.config)?;
    if let Some(l) = args.listen {
        config.listen = l;
    }
    let until = seconds(args.duration, "--duration")?;
    runtime()?.block_on(kare::cli::run::run(config, until))
}

/// Whether standard error is the journal systemd connected (`JOURNAL_STREAM` names its device
/// and inode, as systemd.exec(5) says to check).
fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(stream) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.split_once(':') else {
        return false;
    };
    std::fs::metadata("/proc/self/fd/2")
        .map(|m| m.dev().to_string() == dev && m.ino().to_string() == ino)
        .unwrap_or(false)
}

/// Logs to the journal, with levels as priorities, when systemd runs kare; else to stderr.
fn init_logging(default_filter: &str) {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_env("KARE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    if stderr_is_journal() {
        if let Ok(journal) = tracing_journald::layer() {
            tracing_subscriber::registry()
                .with(filter)
                .with(journal.with_syslog_identifier("kare".into()))
                .init();
            return;
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn main() -> ExitCode {
    install_panic_hook();
    let cli = Cli::parse();
    // A one-shot command keeps stderr for its one-line error; the service says what it does.
    let default_filter = match cli.command {
        Command::Replay(_)
        | Command::Report(_)
        | Command::Commission(_)
        | Command::CheckConfig(_)
        | Command::Passwd(_)
        | Command::GenCert(_) => "warn",
        _ => "warn,kare=info",
    };
    init_logging(default_filter);
    let result = match cli.command {
        Command::Replay(args) => replay_cmd(args),
        #[cfg(feature = "sim")]
        Command::Demo(args) => demo_cmd(args),
        Command::Run(args) => run_cmd(args),
        #[cfg(feature = "sim")]
        Command::Simulate(args) => kare::sim::run_cli(args),
        Command::Report(args) => report_cmd(args),
        Command::Passwd(args) => kare::cli::access::passwd(args),
        Command::GenCert(args) => kare::cli::access::gen_cert(args),
        Command::Commission(args) => commission_cmd(*args).map(|code| {
            if code != 0 {
                std::process::exit(i32::from(code));
            }
        }),
        Command::CheckConfig(args) => match kare::cli::check_config::run(&args.file) {
            0 => Ok(()),
            code => return ExitCode::from(code),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the reason, with its causes joined; anything quoted from a file is
            // escaped so that it cannot drive the terminal.
            eprintln!("kare: {}", recording::printable(&format!("{e:#}")));
            ExitCode::from(2)
        }
    }
}
