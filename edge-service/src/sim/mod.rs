//! The sensor simulator: the node loop on the host, fed by synthetic waveforms from a scenario.
//!
//! * [`scenario`]: the TOML scenario format ([`Scenario`]), validated with messages that name the
//!   key at fault; [`Scenario::demo`] is the built-in demonstration.
//! * [`waveform`]: [`ScenarioSource`], the simulated ADC (a `kare_firmware::node::SampleSource`),
//!   and [`node_config`], the node a scenario describes.
//! * [`runner`]: [`run`] drives the firmware's own `Node` loop and writes every pqlink frame to a
//!   port, paced in real time, accelerated, or unpaced; [`open_port`] opens a tty or pty for it.
//! * [`meters`]: simulated RS-485 meters (Modbus SDM630, DL/T 645) on pseudo-terminals, for
//!   `kare demo` and tests.
//! * [`pty`]: pseudo-terminal pairs for the demo and tests.
//! * [`conformance`]: the Class A conformance suite for dips, swells and interruptions
//!   (rectangular test signals of known construction, and the judge).
//! * [`cli`]: `kare simulate` ([`SimulateArgs`], [`run_cli`]).

pub mod cli;
pub mod conformance;
pub mod meters;
pub mod pty;
pub mod runner;
pub mod scenario;
pub mod waveform;

pub use cli::{run_cli, SimulateArgs};
pub use runner::{open_port, run, Ending, Pace, RunStats, SimNode};
pub use scenario::{Background, Drift, Event, EventKind, Phase, Scenario, ScenarioError};
pub use waveform::{node_config, ScenarioSource};
