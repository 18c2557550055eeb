//! Sinks: where readings, events and tickets go besides the store and the live API.
//!
//! The InfluxDB sink feeds the utility's central time-series database, from which Grafana draws
//! the fleet, reliability and power-quality dashboards (`dashboards/`).

pub mod influx;
