//! Readings from meters on the RS-485 bus (Modbus RTU, DL/T 645), in one vocabulary whatever the
//! protocol, so that detection, reports and sinks need not know where a number came from.
//!
//! Half-cycle readings from sensor nodes are `sources::pqlink::Reading`; these are the slower,
//! polled ones: seconds for instantaneous values, 15 minutes for interval data.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What a polled number means. Profile files name these in snake_case (`voltage_a`, `thd_u_a`…).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantity {
    /// Phase A to neutral voltage, V.
    VoltageA,
    /// Phase B to neutral voltage, V.
    VoltageB,
    /// Phase C to neutral voltage, V.
    VoltageC,
    /// Line voltage A–B, V.
    VoltageAb,
    /// Line voltage B–C, V.
    VoltageBc,
    /// Line voltage C–A, V.
    VoltageCa,
    /// Phase A current, A.
    CurrentA,
    /// Phase B current, A.
    CurrentB,
    /// Phase C current, A.
    CurrentC,
    /// Neutral current, A.
    CurrentN,
    /// Frequency, Hz.
    Frequency,
    /// Total active power, kW (positive: import).
    ActivePowerTotal,
    /// Phase A active power, kW.
    ActivePowerA,
    /// Phase B active power, kW.
    ActivePowerB,
    /// Phase C active power, kW.
    ActivePowerC,
    /// Total reactive power, kvar.
    ReactivePowerTotal,
    /// Total apparent power, kVA.
    ApparentPowerTotal,
    /// Total power factor (signed as the meter gives it).
    PowerFactorTotal,
    /// Phase A power factor.
    PowerFactorA,
    /// Phase B power factor.
    PowerFactorB,
    /// Phase C power factor.
    PowerFactorC,
    /// Voltage THD phase A, %.
    ThdUA,
    /// Voltage THD phase B, %.
    ThdUB,
    /// Voltage THD phase C, %.
    ThdUC,
    /// Current THD phase A, %.
    ThdIA,
    /// Current THD phase B, %.
    ThdIB,
    /// Current THD phase C, %.
    ThdIC,
    /// Voltage unbalance, %.
    VoltageUnbalance,
    /// Forward (import) active energy total, kWh.
    EnergyImportKwh,
    /// Reverse (export) active energy total, kWh.
    EnergyExportKwh,
    /// Forward reactive energy total, kvarh.
    EnergyReactiveImportKvarh,
    /// Reverse reactive energy total, kvarh.
    EnergyReactiveExportKvarh,
    /// Present active demand, kW.
    DemandKw,
    /// Maximum active demand this billing period, kW.
    MaxDemandKw,
    /// Number of power-down events the meter has counted.
    PowerDownCount,
}

impl Quantity {
    /// The unit the value is in.
    pub fn unit(self) -> &'static str {
        use Quantity::*;
        match self {
            VoltageA | VoltageB | VoltageC | VoltageAb | VoltageBc | VoltageCa => "V",
            CurrentA | CurrentB | CurrentC | CurrentN => "A",
            Frequency => "Hz",
            ActivePowerTotal | ActivePowerA | ActivePowerB | ActivePowerC | DemandKw
            | MaxDemandKw => "kW",
            ReactivePowerTotal => "kvar",
            ApparentPowerTotal => "kVA",
            PowerFactorTotal | PowerFactorA | PowerFactorB | PowerFactorC | PowerDownCount => "",
            ThdUA | ThdUB | ThdUC | ThdIA | ThdIB | ThdIC | VoltageUnbalance => "%",
            EnergyImportKwh | EnergyExportKwh => "kWh",
            EnergyReactiveImportKvarh | EnergyReactiveExportKvarh => "kvarh",
        }
    }

    /// Phase-to-neutral voltages, which the coarse outage detector watches.
    pub fn is_phase_voltage(self) -> bool {
        matches!(
            self,
            Quantity::VoltageA | Quantity::VoltageB | Quantity::VoltageC
        )
    }

    /// The snake_case name used in profile files, the API and InfluxDB (the serde name; a test
    /// checks the two agree).
    pub fn as_str(self) -> &'static str {
        use Quantity::*;
        match self {
            VoltageA => "voltage_a",
            VoltageB => "voltage_b",
            VoltageC => "voltage_c",
            VoltageAb => "voltage_ab",
            VoltageBc => "voltage_bc",
            VoltageCa => "voltage_ca",
            CurrentA => "current_a",
            CurrentB => "current_b",
            CurrentC => "current_c",
            CurrentN => "current_n",
            Frequency => "frequency",
            ActivePowerTotal => "active_power_total",
            ActivePowerA => "active_power_a",
            ActivePowerB => "active_power_b",
            ActivePowerC => "active_power_c",
            ReactivePowerTotal => "reactive_power_total",
            ApparentPowerTotal => "apparent_power_total",
            PowerFactorTotal => "power_factor_total",
            PowerFactorA => "power_factor_a",
            PowerFactorB => "power_factor_b",
            PowerFactorC => "power_factor_c",
            ThdUA => "thd_u_a",
            ThdUB => "thd_u_b",
            ThdUC => "thd_u_c",
            ThdIA => "thd_i_a",
            ThdIB => "thd_i_b",
            ThdIC => "thd_i_c",
            VoltageUnbalance => "voltage_unbalance",
            EnergyImportKwh => "energy_import_kwh",
            EnergyExportKwh => "energy_export_kwh",
            EnergyReactiveImportKvarh => "energy_reactive_import_kvarh",
            EnergyReactiveExportKvarh => "energy_reactive_export_kvarh",
            DemandKw => "demand_kw",
            MaxDemandKw => "max_demand_kw",
            PowerDownCount => "power_down_count",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Quantity;

    #[test]
    fn names_are_the_serde_names() {
        for q in [
            Quantity::VoltageA,
            Quantity::ThdUA,
            Quantity::EnergyImportKwh,
            Quantity::PowerDownCount,
            Quantity::VoltageAb,
        ] {
            assert_eq!(serde_json::to_value(q).unwrap(), q.as_str());
        }
    }
}

/// One polled value.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MeterReading {
    /// The bus (source) name from the configuration.
    pub source: Arc<str>,
    /// The device name on that bus.
    pub device: Arc<str>,
    /// When the value was read (the edge's clock), or the interval's end for interval data.
    pub at: DateTime<Utc>,
    /// What it is.
    pub quantity: Quantity,
    /// The value, in `quantity.unit()`.
    pub value: f64,
}

/// Something that happened to or at a meter.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MeterEvent {
    /// The device stopped answering (after its retries).
    Offline {
        /// Bus name.
        source: Arc<str>,
        /// Device name.
        device: Arc<str>,
        /// Last good answer.
        since: DateTime<Utc>,
        /// What went wrong: timeout, CRC, exception code…
        reason: String,
    },
    /// The device answers again.
    Online {
        /// Bus name.
        source: Arc<str>,
        /// Device name.
        device: Arc<str>,
        /// When.
        at: DateTime<Utc>,
    },
    /// A power-down the meter recorded itself (DL/T 645 `03 11 00 01`…), with the meter's times.
    PowerDown {
        /// Bus name.
        source: Arc<str>,
        /// Device name.
        device: Arc<str>,
        /// Start, by the meter's clock.
        start: DateTime<Utc>,
        /// End, by the meter's clock; `None` if the meter has not recorded it.
        end: Option<DateTime<Utc>>,
    },
}

/// Bus counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BusStats {
    /// Requests sent.
    pub requests: u64,
    /// Good replies.
    pub replies: u64,
    /// Requests that timed out.
    pub timeouts: u64,
    /// Replies with a bad checksum / CRC or malformed.
    pub bad_frames: u64,
    /// Exception or error replies from a device.
    pub error_replies: u64,
    /// Last full poll cycle over every device, milliseconds.
    pub last_cycle_ms: f64,
    /// Readings dropped, oldest first, because the service was too slow to take them.
    pub readings_dropped: u64,
}

/// What a meter-bus task sends to the service.
#[derive(Clone, Debug, PartialEq)]
pub enum MeterMessage {
    /// Values from one poll of one device: the present.
    Readings(Vec<MeterReading>),
    /// Interval records a meter kept (a DL/T 645 load profile), each stamped with its interval:
    /// history, so never judged by the coarse detector nor shown as a latest value. Not
    /// dropped when the service is slow (a few per quarter hour, and energy data).
    Interval(Vec<MeterReading>),
    /// Something that happened (never dropped).
    Event(MeterEvent),
    /// Fresh bus counters.
    Stats(Arc<str>, BusStats),
}

impl crate::sources::outbox::Classify for MeterMessage {
    fn class(&self) -> crate::sources::outbox::MessageClass {
        use crate::sources::outbox::MessageClass;
        match self {
            MeterMessage::Readings(_) => MessageClass::Reading,
            // A few per quarter hour, energy data, and not read again by the next poll: kept.
            MeterMessage::Interval(_) | MeterMessage::Event(_) => MessageClass::Event,
            MeterMessage::Stats(..) => MessageClass::Stats,
        }
    }
}
