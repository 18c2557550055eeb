//! The `kare` binary: command-line parsing and error reporting at the edge; the work is in the
//! library.

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use kare::recording;
use kare::replay::{self, output, ReplayOptions};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "kare", version, about = "kare: key-account reliability edge")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the detector over a recording (COMTRADE .cfg/.cff, or CSV) and print the events found.
    Replay(ReplayArgs),
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
    #[arg(long, allow_negative_numbers = true, default_value_t = 90.0)]
    dip: f64,
    /// Swell threshold, % of Udin.
    #[arg(long, allow_negative_numbers = true, default_value_t = 110.0)]
    swell: f64,
    /// Interruption threshold, % of Udin.
    #[arg(long, allow_negative_numbers = true, default_value_t = 10.0)]
    interruption: f64,
    /// Hysteresis, % of Udin.
    #[arg(long, allow_negative_numbers = true, default_value_t = 2.0)]
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KARE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Replay(args) => replay_cmd(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the reason, with its causes joined.
            eprintln!("kare: {e:#}");
            ExitCode::from(2)
        }
    }
}
