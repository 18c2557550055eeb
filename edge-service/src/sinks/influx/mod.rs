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
//! [`start`] runs it all for the service (`pipeline/service.rs`) when `[influx]` is configured;
//! the writer is stopped last, after the consumer, so that the last events and tickets of a run
//! are in its backlog.

pub mod backlog;
pub mod channel;
pub mod config;
pub mod error;
pub mod feed;
pub mod point;
pub mod producers;
pub mod transport;
pub mod writer;

/// The health report's type, from the pipeline (kept here too for the sink's users).
pub use crate::pipeline::health::Health;
pub use channel::{channel, InfluxReceiver, InfluxSender, InfluxStats};
pub use config::{Api, InfluxConfig, SiteTags};
pub use error::{EncodeError, InfluxError};
pub use feed::{aggregate_readings, InfluxFeed};
pub use point::{Class, FieldValue, Point};
pub use producers::{
    points_from_event, points_from_health, points_from_interval, points_from_meter_event,
    points_from_meter_readings, points_from_profile, points_from_readings, points_from_reported,
    points_from_ticket, DemandTracker, SecondAggregator,
};
pub use writer::run;

use crate::sinks::{SinkContext, StartedSink};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Starts the sink: the writer (batches, HTTP, backlog), the 1-s aggregation of the half-cycle
/// stream, and the feed the consumer hands events, tickets and meter values to. Returns the
/// writer's counters too, for `/api/v1/status`. A writer that cannot start (a backlog that
/// cannot be opened) says so in the log and in those counters; the service runs on.
pub fn start(cfg: InfluxConfig, ctx: &SinkContext) -> (StartedSink, Arc<Mutex<InfluxStats>>) {
    let stats = Arc::new(Mutex::new(InfluxStats::default()));
    let (tx, rx) = channel(cfg.channel_capacity, stats.clone());
    let stop = CancellationToken::new();
    let health_every = Duration::from_secs_f64(cfg.health_interval_s);
    let writer_stats = stats.clone();
    let writer_stop = stop.clone();
    let writer = tokio::spawn(async move {
        if let Err(e) = run(cfg, rx, writer_stop, writer_stats.clone()).await {
            // Not silent: the log, /api/v1/status and the health points say so.
            tracing::error!("InfluxDB sink not started: {e}");
            writer_stats
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .last_error = Some(format!("not started: {e}"));
        }
    });
    let aggregate = tokio::spawn(aggregate_readings(
        tx.clone(),
        ctx.readings.subscribe(),
        ctx.updates.subscribe(),
        ctx.log.clone(),
        ctx.udin.clone(),
        stats.clone(),
        ctx.shutdown.clone(),
    ));
    let started = StartedSink {
        feed: Arc::new(InfluxFeed::new(tx, stats.clone())),
        tasks: vec![aggregate],
        stop,
        writer,
        health_every: Some(health_every),
    };
    (started, stats)
}
