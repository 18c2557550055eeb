//! kare edge service: sources → readings → detector → events → store → actions / sinks.

pub mod recording;
pub mod replay;
pub mod sim;
pub mod sources;
