//! kare edge service. The folders are the pipeline:
//! sources → pipeline (detection, event log) → actions (rules, tickets, delivery) → store / sinks → web.
//! The offline path is recording → replay; `sim` is the simulated sensor node and meters; `cli` the
//! commands. ARCHITECTURE.md has the map and what each folder may never do.

pub mod actions;
pub mod cli;
pub mod commission;
pub mod config;
pub mod fault;
pub mod pipeline;
pub mod recording;
pub mod replay;
pub mod report;
#[cfg(feature = "sim")]
pub mod sim;
pub mod sinks;
pub mod sources;
pub mod store;
pub mod watchdog;
pub mod web;
