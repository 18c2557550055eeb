//! kare edge service: sources → readings → detector → events → store → actions / sinks.

pub mod clock;
pub mod coarse;
pub mod config;
pub mod daemon;
pub mod delivery;
pub mod desk;
pub mod dlt645;
pub mod events;
pub mod pty;
pub mod readings;
pub mod recording;
pub mod replay;
pub mod rules;
pub mod service;
pub mod sim;
pub mod sinks;
pub mod site;
pub mod sources;
pub mod store;
pub mod web;
