//! The middle of the flow: the consumer that takes every source's news, characterises events,
//! detects coarse outages from meter voltages, keeps the event log and reports health.
pub mod clock;
pub mod coarse;
pub mod events;
pub mod service;
