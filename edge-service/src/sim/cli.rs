//! `kare simulate`: a simulated sensor node writing pqlink to a serial port or pseudo-terminal.
//!
//! For a bench setup without hardware, make a linked pair of pseudo-terminals and point the
//! simulator at one end and the service at the other:
//!
//! ```text
//! socat -d -d pty,raw,echo=0,link=/tmp/node-sim pty,raw,echo=0,link=/tmp/node-edge &
//! kare simulate --port /tmp/node-sim --scenario systemd/scenarios/demo.toml
//! ```

use super::runner::{open_port, run, Ending, Pace, RunStats};
use super::scenario::Scenario;
use anyhow::{bail, Context};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Arguments of `kare simulate`.
#[derive(Clone, Debug, clap::Args)]
pub struct SimulateArgs {
    /// Scenario file (TOML) [default: the built-in demo, systemd/scenarios/demo.toml].
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Serial port or pseudo-terminal to write pqlink frames to (e.g. /dev/ttyUSB0, /dev/pts/3).
    #[arg(long, value_name = "PATH")]
    pub port: String,
    /// Scenario seconds per wall-clock second: 1 is real time, 0 as fast as possible.
    #[arg(
        long,
        value_name = "FACTOR",
        default_value_t = 1.0,
        allow_negative_numbers = true
    )]
    pub speed: f64,
    /// Stop after this many seconds of scenario time [default: the scenario's duration_s, or
    /// run until interrupted].
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub duration: Option<f64>,
}

/// Runs `kare simulate`: loads the scenario, opens the port, and runs until the duration is over
/// or the process gets Ctrl-C / SIGTERM; prints one line when it starts and one when it ends.
pub fn run_cli(args: SimulateArgs) -> anyhow::Result<()> {
    let (mut scenario, name) = match &args.scenario {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read scenario {}", path.display()))?;
            let scenario = Scenario::from_toml(&text)
                .with_context(|| format!("scenario {}", path.display()))?;
            (scenario, path.display().to_string())
        }
        None => (Scenario::demo(), "built-in demo".to_string()),
    };
    if let Some(d) = args.duration {
        if !(d.is_finite() && d > 0.0) {
            bail!("--duration must be a positive number of seconds, got {d}");
        }
        scenario.duration_s = Some(d);
    }
    let Some(pace) = Pace::from_speed(args.speed) else {
        bail!(
            "--speed must be 0 (as fast as possible) or a positive factor (1 = real time), got {}",
            args.speed
        );
    };
    let port = open_port(&args.port).map_err(|e| {
        anyhow::anyhow!(
            "cannot open serial port {}: {e}: check the path and that no other program holds it",
            args.port
        )
    })?;

    let stop = Arc::new(AtomicBool::new(false));
    watch_signals(Arc::clone(&stop));
    eprintln!(
        "kare simulate: node {} ({name}) on {}, {}, {}; Ctrl-C to stop",
        scenario.node_id,
        args.port,
        describe(pace),
        match scenario.duration_s {
            Some(d) => format!("{d} s"),
            None => "until stopped".to_string(),
        },
    );
    let stats = run(&scenario, port, pace, &stop)
        .with_context(|| format!("writing to serial port {}", args.port))?;
    eprintln!("kare simulate: {}", summary(&stats));
    Ok(())
}

fn describe(pace: Pace) -> String {
    match pace {
        Pace::RealTime => "real time".into(),
        Pace::Accelerated(f) => format!("{f}× real time"),
        Pace::Unpaced => "as fast as possible".into(),
    }
}

fn summary(s: &RunStats) -> String {
    format!(
        "{} after {:.1} s of scenario in {:.1} s: {} frames ({} bytes) written, {} dropped \
         (port full), {} half cycles dropped by the node, {} captures dropped",
        match s.ending {
            Ending::Duration => "done",
            Ending::Stopped => "stopped",
        },
        s.scenario_s,
        s.wall.as_secs_f64(),
        s.frames_written,
        s.bytes_written,
        s.frames_dropped,
        s.node.half_cycles_dropped,
        s.node.captures_dropped,
    )
}

/// Sets `stop` on Ctrl-C or SIGTERM (systemd's stop), so that the run ends between two chunks
/// and prints its summary. A small current-thread runtime on its own thread does the waiting,
/// so this works whether or not the caller runs inside a tokio runtime.
fn watch_signals(stop: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("kare-simulate-signals".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                use tokio::signal::unix::{signal, SignalKind};
                let Ok(mut term) = signal(SignalKind::terminate()) else {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            });
            stop.store(true, Ordering::Relaxed);
        });
    // Without the watcher the default signal handling still ends the process; only the
    // summary line is lost.
    if let Err(e) = spawned {
        tracing::warn!("cannot watch for Ctrl-C: {e}");
    }
}
