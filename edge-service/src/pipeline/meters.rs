//! What the service makes of its meter buses: latest values and counters for the status page,
//! and a coarse outage detector per bus that has a declared voltage.

use crate::actions::rules::RuleInput;
use crate::pipeline::coarse::{CoarseDetector, CoarseKind};
use crate::pipeline::consumer::Outputs;
use crate::pipeline::event_log::LoggedEvent;
use crate::sinks::Sink;
use crate::sources::meters::readings::{MeterEvent, MeterMessage, Quantity};
use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeMap, BTreeSet};

/// How far a meter's time stamp may trail the supply it read (the reply comes after the read;
/// DL/T 645 reads phase by phase), in the data clock's time.
const STAMP_SLACK: Duration = Duration::seconds(1);

/// What the service knows of its meter buses: a coarse detector per bus that has a declared
/// voltage, and the latest values and counters for the status page.
#[derive(Debug, Default)]
pub struct MeterDesk {
    coarse: BTreeMap<String, CoarseDetector>,
    /// Half-cycle witnesses (sensor nodes) that now see the supply gone.
    half_cycle_down: BTreeSet<String>,
    /// When a half-cycle witness last saw the supply back.
    half_cycle_back: Option<DateTime<Utc>>,
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
            ..Default::default()
        }
    }

    /// Hears what a sensor node (a half-cycle witness) told the rules about the supply.
    pub(crate) fn half_cycle(&mut self, input: &RuleInput) {
        match input {
            RuleInput::SupplyLost { source, .. } => {
                self.half_cycle_down.insert(source.clone());
            }
            RuleInput::SupplyBack { source, at } if self.half_cycle_down.remove(source) => {
                self.half_cycle_back = Some(self.half_cycle_back.map_or(*at, |b| b.max(*at)));
            }
            _ => {}
        }
    }

    /// A meter's coarse outage as the rules should hear it, given what the sensor nodes saw.
    /// A poll only brackets a change: the supply went (or came back) between the poll before
    /// and this one, `resolution_s` earlier. When a node, which times it to the half cycle, saw
    /// the supply come back within that bracket and sees it present now, the meter saw the
    /// same outage late: its restoration is the node's (one outage, one end, so the ticket's
    /// duration is the outage's and not the poll phase's), and a loss it reports only now is
    /// one that already ended (`None`: the rules would count it as a new failure). Without a
    /// node, or when no node restoration falls in the bracket, the meter's own time stands.
    fn coarse_input(&self, input: RuleInput, resolution_s: f64) -> Option<RuleInput> {
        let (Some(back), true) = (self.half_cycle_back, self.half_cycle_down.is_empty()) else {
            return Some(input);
        };
        let bracket = Duration::milliseconds((resolution_s * 1000.0) as i64) + STAMP_SLACK;
        match input {
            RuleInput::SupplyLost { at, .. } if back >= at - bracket => None,
            RuleInput::SupplyBack { source, at }
                if back >= at - bracket && back <= at + STAMP_SLACK =>
            {
                Some(RuleInput::SupplyBack { source, at: back })
            }
            other => Some(other),
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
                            let input = match c.end {
                                None => RuleInput::SupplyLost {
                                    source: who,
                                    at: c.start,
                                    via: format!("meter (coarse, {:.0} s polls)", c.resolution_s),
                                },
                                Some(end) => RuleInput::SupplyBack {
                                    source: who,
                                    at: end,
                                },
                            };
                            inputs.extend(self.coarse_input(input, c.resolution_s));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_000_000 + s, 0).unwrap_or_default()
    }

    fn lost(at: DateTime<Utc>) -> RuleInput {
        RuleInput::SupplyLost {
            source: "bus/meter".into(),
            at,
            via: "meter".into(),
        }
    }

    fn back(source: &str, at: DateTime<Utc>) -> RuleInput {
        RuleInput::SupplyBack {
            source: source.into(),
            at,
        }
    }

    #[test]
    fn a_meter_is_timed_by_the_node_that_saw_the_same_outage() {
        let mut desk = MeterDesk::default();
        // No node has spoken: the meter's own times stand.
        assert_eq!(
            desk.coarse_input(back("bus/meter", t(12)), 2.0),
            Some(back("bus/meter", t(12)))
        );
        desk.half_cycle(&RuleInput::SupplyLost {
            source: "node".into(),
            at: t(1),
            via: "half-cycle".into(),
        });
        // While the node sees the supply gone, a meter's loss is a witness.
        assert_eq!(desk.coarse_input(lost(t(2)), 2.0), Some(lost(t(2))));
        desk.half_cycle(&back("node", t(10)));
        // The meter polled the supply back at 11 (polls 2 s apart): the node's 10 it is.
        assert_eq!(
            desk.coarse_input(back("bus/meter", t(11)), 2.0),
            Some(back("bus/meter", t(10)))
        );
        // A loss polled at 10 (before the node's restoration) but heard after it: not a new failure.
        assert_eq!(desk.coarse_input(lost(t(10)), 2.0), None);
        // Long after: a meter's restoration the node did not bracket keeps its time, and so
        // does a loss.
        assert_eq!(
            desk.coarse_input(back("bus/meter", t(30)), 2.0),
            Some(back("bus/meter", t(30)))
        );
        assert_eq!(desk.coarse_input(lost(t(30)), 2.0), Some(lost(t(30))));
    }
}
