//! The InfluxDB sink: a buffered writer that loses nothing.
//!
//! - [`point`]: the point model and the line-protocol encoder (pure).
//! - [`producers`]: the service's values → points (1-second aggregates of the half-cycle
//!   stream, meter readings, interval data, events and their profiles, tickets, health). The
//!   schema is documented in `dashboards/README.md`.
//! - [`writer`]: [`channel`] (never blocks the producer) and [`run`] (batches, HTTP, the
//!   store-and-forward [`backlog`], draining).
//! - [`transport`]: one write over the v1 (`/write`) or v2 (`/api/v2/write`, `influxdb2`) API.
//! - [`feed`]: the service's side: [`InfluxFeed`] (events, tickets, meters, health, handed over
//!   by the consumer) and [`aggregate_readings`] (the half-cycle stream, in its own task).
//!
//! The service (`service.rs`) starts [`run`] when `[influx]` is configured and stops it last,
//! after the consumer, so that the last events and tickets of a run are in its backlog.

pub mod backlog;
pub mod config;
pub mod error;
pub mod feed;
pub mod point;
pub mod producers;
pub mod transport;
pub mod writer;

pub use config::{Api, InfluxConfig, SiteTags};
pub use error::{EncodeError, InfluxError};
pub use feed::{aggregate_readings, InfluxFeed};
pub use point::{Class, FieldValue, Point};
pub use producers::{
    points_from_event, points_from_health, points_from_interval, points_from_meter_event,
    points_from_meter_readings, points_from_profile, points_from_readings, points_from_reported,
    points_from_ticket, DemandTracker, Health, SecondAggregator,
};
pub use writer::{channel, run, InfluxReceiver, InfluxSender, InfluxStats};
