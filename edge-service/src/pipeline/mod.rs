//! The middle of the flow: the consumer that takes every source's news, characterises events,
//! detects coarse outages from meter voltages, keeps the event log and reports health.
pub mod clock;
pub mod coarse;
pub mod consumer;
mod durable;
pub mod event_log;
pub mod events;
pub mod health;
pub mod heartbeat;
pub mod meters;
pub mod pending;
pub mod service;
pub mod status;
mod store_alarm;
