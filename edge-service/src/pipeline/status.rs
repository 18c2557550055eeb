//! What the status page shows of each source and meter bus, kept current by the consumer.

use crate::sources::meters::readings::Quantity;
use crate::sources::pqlink::StreamStats;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// What the status endpoint shows of one source.
#[derive(Clone, Debug, Default)]
pub struct SourceStatus {
    /// Node id from its hello.
    pub node_id: Option<u32>,
    /// Channel names.
    pub channels: Vec<String>,
    /// Sample rate.
    pub sample_rate_hz: Option<u32>,
    /// Nominal frequency.
    pub nominal_hz: Option<u8>,
    /// Whether the source is heard.
    pub connected: bool,
    /// Declared lost (`sensor_lost`) and not heard since: counters that arrive late (queued
    /// behind the loss) must not make it look connected; only `sensor_back` or a hello do.
    pub lost: bool,
    /// Counters.
    pub stats: StreamStats,
    /// Port path.
    pub port: String,
}

/// A meter bus as the status page shows it.
#[derive(Clone, Debug, Default)]
pub struct MeterBusStatus {
    /// Bus counters.
    pub stats: crate::sources::meters::readings::BusStats,
    /// Devices by name.
    pub devices: BTreeMap<String, MeterDeviceStatus>,
}

/// A meter as the status page shows it.
#[derive(Clone, Debug, Default)]
pub struct MeterDeviceStatus {
    /// Whether it answers.
    pub online: bool,
    /// Latest value of each quantity, with when it was read.
    pub values: BTreeMap<Quantity, (f64, DateTime<Utc>)>,
}
