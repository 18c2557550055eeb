//! What the service makes of its meter buses: latest values and counters for the status page,
//! and a coarse outage detector per bus that has a declared voltage.

use crate::actions::rules::RuleInput;
use crate::pipeline::coarse::{CoarseDetector, CoarseKind};
use crate::pipeline::consumer::Outputs;
use crate::pipeline::event_log::LoggedEvent;
use crate::sinks::Sink;
use crate::sources::meters::readings::{MeterEvent, MeterMessage, Quantity};
use std::collections::BTreeMap;

/// What the service knows of its meter buses: a coarse detector per bus that has a declared
/// voltage, and the latest values and counters for the status page.
#[derive(Debug, Default)]
pub struct MeterDesk {
    coarse: BTreeMap<String, CoarseDetector>,
}

impl MeterDesk {
    /// Coarse detection on the buses given with their thresholds (Udin phase-neutral, volts).
    pub fn new(
        coarse: impl IntoIterator<Item = (String, kare_firmware::detector::Thresholds)>,
    ) -> Self {
        MeterDesk {
            coarse: coarse
                .into_iter()
                .map(|(bus, t)| (bus, CoarseDetector::new(t)))
                .collect(),
        }
    }

    /// Logs what a meter message means and says what the rules should hear.
    pub(crate) fn handle(
        &mut self,
        m: &MeterMessage,
        out: &Outputs,
    ) -> (Vec<LoggedEvent>, Vec<RuleInput>) {
        let mut logged = Vec::new();
        let mut inputs = Vec::new();
        if let MeterMessage::Event(e) = m {
            out.sinks.meter_event(e);
        }
        match m {
            MeterMessage::Readings(rs) => {
                let Some(first) = rs.first() else {
                    return (logged, inputs);
                };
                {
                    let mut st = out.meters.lock().unwrap_or_else(|p| p.into_inner());
                    let dev = st
                        .entry(first.source.to_string())
                        .or_default()
                        .devices
                        .entry(first.device.to_string())
                        .or_default();
                    dev.online = true;
                    for r in rs {
                        dev.values.insert(r.quantity, (r.value, r.at));
                    }
                }
                for r in rs {
                    let _ = out.meter_readings.send(r.clone());
                }
                out.sinks.meter_readings(rs);
                // Demand for generator sizing: the meter's demand register, else its power.
                let demand = rs
                    .iter()
                    .find(|r| r.quantity == Quantity::DemandKw)
                    .or_else(|| rs.iter().find(|r| r.quantity == Quantity::ActivePowerTotal));
                if let Some(d) = demand {
                    inputs.push(RuleInput::Demand {
                        at: d.at,
                        kw: d.value.abs(),
                    });
                }
                if let Some(det) = self.coarse.get_mut(&*first.source) {
                    for c in det.observe(rs) {
                        let who = format!("{}/{}", c.source, c.device);
                        if c.kind == CoarseKind::Outage {
                            inputs.push(match c.end {
                                None => RuleInput::SupplyLost {
                                    source: who,
                                    at: c.start,
                                    via: format!("meter (coarse, {:.0} s polls)", c.resolution_s),
                                },
                                Some(end) => RuleInput::SupplyBack {
                                    source: who,
                                    at: end,
                                },
                            });
                        }
                        logged.push(out.log.coarse(c));
                    }
                }
            }
            // History: to InfluxDB (and, through it, to the demand before an outage) only.
            MeterMessage::Interval(rs) => {
                out.sinks.interval(rs);
            }
            MeterMessage::Event(e) => match e {
                MeterEvent::Offline {
                    source,
                    device,
                    since,
                    reason,
                } => {
                    let who = format!("{source}/{device}");
                    if let Some(dev) = out
                        .meters
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .entry(source.to_string())
                        .or_default()
                        .devices
                        .get_mut(&**device)
                    {
                        dev.online = false;
                    }
                    logged.extend(out.log.sensor_lost(&who, *since, reason.clone()));
                    inputs.push(RuleInput::SensorLost {
                        source: who,
                        since: *since,
                        reason: reason.clone(),
                    });
                }
                MeterEvent::Online { source, device, at } => {
                    let who = format!("{source}/{device}");
                    logged.extend(out.log.sensor_back(&who, *at));
                    inputs.push(RuleInput::SensorBack {
                        source: who,
                        at: *at,
                    });
                }
                MeterEvent::PowerDown {
                    source,
                    device,
                    start,
                    end,
                } => {
                    let who = format!("{source}/{device}");
                    logged.extend(out.log.meter_power_down(&who, *start, *end));
                }
            },
            MeterMessage::Stats(bus, stats) => {
                out.meters
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(bus.to_string())
                    .or_default()
                    .stats = stats.clone();
            }
        }
        (logged, inputs)
    }
}
