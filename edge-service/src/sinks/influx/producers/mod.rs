//! What kare writes to InfluxDB: pure conversions from the service's values to [`Point`]s.
//! The schema (every measurement, tag and field, and its cardinality) is in
//! `dashboards/README.md`; keep the two together.
//!
//! Site tags (`site`, `customer`, `tier`) are added by the writer to every point. Tags here are
//! bounded by construction: `source` and `device` come from the configuration, `phase` is one
//! of [`PHASES`], and `kind`, `itic`, `semi_f47`, `en50160_row`, `en50160_col`, `ieee1159`,
//! `priority` come from fixed vocabularies. Anything unbounded (event ids, ticket keys, titles,
//! reasons) is a field.

mod aggregate;

pub use aggregate::{points_from_readings, SecondAggregator};

use super::point::{Class, Point};
use crate::actions::tickets::TicketRecord;
use crate::pipeline::event_log::{EventBody, LoggedEvent};
use crate::pipeline::events::ReportedEvent;
use crate::pipeline::health::Health;
use crate::sources::meters::readings::{MeterEvent, MeterReading};
use crate::sources::pqlink::RmsProfile;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// `phase` tag values by channel index (pqlink carries at most four channels; the fourth is
/// whatever the node wires to it: `d`).
pub const PHASES: [&str; 4] = ["a", "b", "c", "d"];

fn phase(i: usize) -> String {
    PHASES
        .get(i)
        .map(|s| s.to_string())
        .unwrap_or_else(|| format!("ch{i}"))
}

/// Polled meter values → `meter`: one point per (bus, device, time), one field per quantity
/// (`voltage_a`, `thd_u_a`, `power_factor_total`… as `Quantity::as_str`).
pub fn points_from_meter_readings(readings: &[MeterReading]) -> Vec<Point> {
    group_meter(readings, "meter", Class::Readings)
}

/// Interval-meter data (DL/T 645 load profile, 15-minute energy and demand) → `meter_interval`,
/// stamped with the interval's end; evicted from the backlog only after every fine reading.
pub fn points_from_interval(readings: &[MeterReading]) -> Vec<Point> {
    group_meter(readings, "meter_interval", Class::Interval)
}

fn group_meter(readings: &[MeterReading], measurement: &'static str, class: Class) -> Vec<Point> {
    let mut groups: BTreeMap<(&str, &str, DateTime<Utc>), Point> = BTreeMap::new();
    for r in readings {
        let key = (r.source.as_ref(), r.device.as_ref(), r.at);
        let p = groups.entry(key).or_insert_with(|| {
            Point::new(measurement, class, r.at)
                .tag("source", r.source.as_ref())
                .tag("device", r.device.as_ref())
        });
        p.fields.push((r.quantity.as_str().into(), r.value.into()));
    }
    groups.into_values().collect()
}

/// A meter's own event (offline, back online, a power-down it recorded) → `meter_event`.
pub fn points_from_meter_event(e: &MeterEvent) -> Point {
    match e {
        MeterEvent::Offline {
            source,
            device,
            since,
            reason,
        } => Point::new("meter_event", Class::Events, *since)
            .tag("source", source.as_ref())
            .tag("device", device.as_ref())
            .tag("kind", "offline")
            .field("reason", reason.as_str()),
        MeterEvent::Online { source, device, at } => Point::new("meter_event", Class::Events, *at)
            .tag("source", source.as_ref())
            .tag("device", device.as_ref())
            .tag("kind", "online")
            .field("reason", ""),
        MeterEvent::PowerDown {
            source,
            device,
            start,
            end,
        } => Point::new("meter_event", Class::Events, *start)
            .tag("source", source.as_ref())
            .tag("device", device.as_ref())
            .tag("kind", "power_down")
            .field("open", end.is_none())
            .field_opt("duration_s", end.map(|e| seconds(e - *start))),
    }
}

fn seconds(d: chrono::Duration) -> f64 {
    d.num_microseconds()
        .map(|us| us as f64 / 1e6)
        .unwrap_or(d.num_seconds() as f64)
}

/// A voltage event's characteristics → `event` (once it has ended) and `event_start`.
///
/// `event_start` (tags `source`, `kind`) is written at the start, with `open = true`, and
/// written again at the end with `open = false`: same series, same time stamp, so the second
/// replaces the first and "events in progress" is `open = true`. `event` carries the final
/// classification as tags, so it is written only once the event is over: tags written at the
/// start (judged on the duration so far) would leave a second series behind.
pub fn points_from_reported(source: &str, id: u64, e: &ReportedEvent) -> Vec<Point> {
    let open = e.duration_s.is_none();
    let mut out = vec![Point::new("event_start", Class::Events, e.start)
        .tag("source", source)
        .tag("kind", e.kind.as_str())
        .field("id", id)
        .field("open", open)
        .field("extreme_pct", e.extreme_pct)
        .field_opt("duration_s", e.duration_s)];
    let Some(duration) = e.duration_s else {
        return out;
    };
    let mut p = Point::new("event", Class::Events, e.start)
        .tag("source", source)
        .tag("kind", e.kind.as_str())
        .tag("itic", e.itic.as_str())
        .tag("ieee1159", e.ieee1159.as_str())
        .field("id", id)
        .field("duration_s", duration)
        .field("extreme_pct", e.extreme_pct)
        .field("worst_channel", e.worst_channel.as_str());
    if let Some(f) = e.semi_f47 {
        p = p.tag("semi_f47", f.as_str());
    }
    if let Some(c) = e.en50160 {
        p = p.tag("en50160_row", c.row).tag("en50160_col", c.column);
    }
    for (i, (_, v)) in e.channel_extremes_pct.iter().enumerate() {
        if let Some(v) = v {
            p = p.field(format!("extreme_{}_pct", phase(i)), *v);
        }
    }
    out.push(p);
    out
}

/// An event from the service's log → `event_start`, `event` and, when its Urms(1/2) profile is
/// attached, `event_profile`. Writing the same event again (at its end, when its profile
/// arrives) overwrites the same points: safe to call on every update.
pub fn points_from_event(ev: &LoggedEvent) -> Vec<Point> {
    match &ev.body {
        EventBody::Voltage(e) => {
            let mut out = points_from_reported(&ev.source, ev.id, e);
            if let (Some(profile), false) = (&ev.profile, e.duration_s.is_none()) {
                out.extend(points_from_profile(&ev.source, ev.id, profile));
            }
            out
        }
        EventBody::Coarse(c) => {
            let kind = c.kind.as_str();
            let extra = |p: Point| {
                p.tag("device", c.device.as_ref())
                    .field("extreme_pct", c.extreme_pct)
                    .field("resolution_s", c.resolution_s)
            };
            span_points(ev, kind, c.start, c.end, extra)
        }
        EventBody::MeterPowerDown { start, end } => {
            span_points(ev, ev.body.kind(), *start, *end, |p| p)
        }
        EventBody::SensorLost { start, end, reason } => {
            let duration = end.map(|e| seconds(e - *start));
            let mut out = vec![Point::new("event_start", Class::Events, *start)
                .tag("source", ev.source.as_str())
                .tag("kind", ev.body.kind())
                .field("id", ev.id)
                .field("open", end.is_none())
                .field_opt("duration_s", duration)];
            if let Some(d) = duration {
                out.push(
                    Point::new("event", Class::Events, *start)
                        .tag("source", ev.source.as_str())
                        .tag("kind", ev.body.kind())
                        .field("id", ev.id)
                        .field("duration_s", d)
                        .field("reason", reason.as_str()),
                );
            }
            out
        }
    }
}

/// `event_start` and (once over) `event` for an event known only by its span.
fn span_points(
    ev: &LoggedEvent,
    kind: &'static str,
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
    extra: impl Fn(Point) -> Point,
) -> Vec<Point> {
    let duration = end.map(|e| seconds(e - start));
    let mut out = vec![extra(
        Point::new("event_start", Class::Events, start)
            .tag("source", ev.source.as_str())
            .tag("kind", kind)
            .field("id", ev.id)
            .field("open", end.is_none())
            .field_opt("duration_s", duration),
    )];
    if let Some(d) = duration {
        out.push(extra(
            Point::new("event", Class::Events, start)
                .tag("source", ev.source.as_str())
                .tag("kind", kind)
                .field("id", ev.id)
                .field("duration_s", d),
        ));
    }
    out
}

/// An event's Urms(1/2) profile → `event_profile`: one point per record and phase, % of Udin.
/// (Overlapping events share records; the later one's `event_id` then wins on shared points.)
pub fn points_from_profile(source: &str, event_id: u64, profile: &RmsProfile) -> Vec<Point> {
    let mut out = Vec::with_capacity(profile.records.len() * 3);
    for r in &profile.records {
        for (i, v) in r.pct.iter().enumerate() {
            out.push(
                Point::new("event_profile", Class::Profile, r.start)
                    .tag("source", source)
                    .tag("phase", phase(i))
                    .field("pct", *v)
                    .field("event_id", event_id),
            );
        }
    }
    out
}

/// A ticket as last changed → `ticket`, stamped with its `opened_at`, so every revision of a
/// ticket overwrites the one point (same series, same time): counting points counts tickets,
/// and the last state is the one stored. For the same reason `state` is a field, not a tag
/// (tags are `kind` and `priority`, which do not change over a ticket's life).
///
/// `demand_before_kw`: active demand just before the outage (from an interval meter), for
/// `ens_kwh`, the energy not supplied, on a closed repair ticket.
pub fn points_from_ticket(t: &TicketRecord, demand_before_kw: Option<f64>) -> Point {
    let op = &t.op;
    let state = op.state.as_str();
    let outage = match &op.detail {
        crate::actions::rules::TicketDetail::Outage(o) => Some(o),
        _ => None,
    };
    let ens = match (op.kind, op.duration_s, demand_before_kw) {
        (crate::actions::rules::TicketKind::Repair, Some(d), Some(kw))
            if kw.is_finite() && kw >= 0.0 =>
        {
            Some(kw * d / 3600.0)
        }
        _ => None,
    };
    Point::new("ticket", Class::Events, op.opened_at)
        .tag("kind", op.kind.as_str())
        .tag("priority", op.priority.as_str())
        .field("key", op.key.as_str())
        .field("state", state)
        .field("open", (state == "open") as i64)
        .field("revision", t.revision)
        .field("title", op.title.as_str())
        .field(
            "updated_ns",
            t.updated_at.timestamp_nanos_opt().unwrap_or(0),
        )
        .field_opt("duration_s", op.duration_s)
        .field_opt(
            "classification",
            outage.and_then(|o| o.classification.map(|c| c.as_str())),
        )
        .field_opt("failures", outage.map(|o| i64::from(o.failures)))
        .field_opt("on_battery", outage.map(|o| o.on_battery))
        .field_opt(
            "planned_reference",
            outage.and_then(|o| o.planned_reference.as_deref()),
        )
        .field_opt("ens_kwh", ens)
}

/// Remembers recent active demand, for energy not supplied: the last value of `demand_kw`
/// (or `active_power_total`) before a time. Keeps the first value of each minute for 12 hours
/// (at most 720 values, whatever the poll rate): the first, so that readings taken after the
/// supply failed (zero) in the same minute cannot replace the demand before it.
#[derive(Debug, Default)]
pub struct DemandTracker {
    recent: std::collections::VecDeque<(DateTime<Utc>, f64)>,
}

impl DemandTracker {
    const HORIZON_S: i64 = 12 * 3600;

    /// Watches meter readings for demand.
    pub fn observe(&mut self, r: &MeterReading) {
        use crate::sources::meters::readings::Quantity;
        if !matches!(r.quantity, Quantity::DemandKw | Quantity::ActivePowerTotal)
            || !r.value.is_finite()
        {
            return;
        }
        let minute = r.at.timestamp().div_euclid(60);
        match self.recent.back() {
            Some((t, _)) if t.timestamp().div_euclid(60) >= minute => {}
            _ => self.recent.push_back((r.at, r.value)),
        }
        while self
            .recent
            .front()
            .is_some_and(|(t, _)| r.at.timestamp() - t.timestamp() > Self::HORIZON_S)
        {
            self.recent.pop_front();
        }
    }

    /// The last demand seen before `at`.
    pub fn before(&self, at: DateTime<Utc>) -> Option<f64> {
        self.recent
            .iter()
            .rev()
            .find(|(t, _)| *t <= at)
            .map(|(_, v)| *v)
    }
}

/// The appliance's health → `kare_health` (one point; no tags but the site's). The fleet board
/// reads "heard from" and "supply now" from it, so the service should write it every 10–60 s.
pub fn points_from_health(h: &Health) -> Point {
    Point::new("kare_health", Class::Readings, h.at)
        .field("uptime_s", h.uptime_s)
        .field_opt("supply_ok", h.supply_ok.map(|b| b as i64))
        .field("outage_open", h.outage_open as i64)
        .field("sources", h.sources)
        .field("sources_connected", h.sources_connected)
        .field("buffer_depth", h.buffer_depth)
        .field("serial_errors", h.serial_errors)
        .field_opt("clock_synced", h.clock_synced.map(|b| b as i64))
        .field_opt("clock_offset_ms", h.clock_offset_ms)
        .field_opt("on_battery", h.on_battery.map(|b| b as i64))
        // The store (issue 11): a full disk shows on the fleet board, not only on site.
        .field_opt(
            "store_writable",
            h.store.as_ref().map(|s| s.writable as i64),
        )
        .field_opt(
            "store_free_bytes",
            h.store.as_ref().and_then(|s| s.free_bytes),
        )
        .field("store_pending_events", h.pending.events as u64)
        .field(
            "store_pending_ticket_changes",
            h.pending.ticket_changes as u64,
        )
        .field_opt(
            "version",
            (!h.version.is_empty()).then_some(h.version.as_str()),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::influx::point::{to_line, FieldValue};
    use crate::sources::pqlink::Reading;
    use chrono::Duration;
    use chrono::TimeZone;
    use std::sync::Arc;

    fn reading(source: &str, start: DateTime<Utc>, volts: [f32; 3], locked: bool) -> Reading {
        Reading {
            source: Arc::from(source),
            seq: 0,
            start,
            end: start + Duration::milliseconds(20),
            frequency_hz: 50.0,
            volts: [volts[0], volts[1], volts[2], 0.0],
            channels: 3,
            locked,
        }
    }

    fn f(p: &Point, k: &str) -> f64 {
        match p.field_value(k) {
            Some(FieldValue::Float(v)) => *v,
            Some(FieldValue::Int(v)) => *v as f64,
            other => panic!("{k}: {other:?}"),
        }
    }

    #[test]
    fn one_point_per_source_phase_and_second() {
        let t0 = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        let mut agg = SecondAggregator::new();
        agg.set_udin("n1", 100.0);
        let mut rs = Vec::new();
        // 100 half cycles in second 0, then one in second 1.
        for i in 0..100 {
            let v = if i == 50 {
                80.0
            } else {
                100.0 + (i % 2) as f32
            };
            rs.push(reading(
                "n1",
                t0 + Duration::milliseconds(i * 10),
                [v, 99.0, 101.0],
                true,
            ));
        }
        rs.push(reading("n1", t0 + Duration::seconds(1), [100.0; 3], true));
        let pts = points_from_readings(&mut agg, &rs);
        // 3 phases + frequency for second 0 only.
        assert_eq!(pts.len(), 4);
        let a = &pts[0];
        assert_eq!(a.measurement, "urms");
        assert_eq!(a.time, t0);
        assert_eq!(a.tag_value("phase"), Some("a"));
        assert_eq!(a.tag_value("source"), Some("n1"));
        assert_eq!(f(a, "min"), 80.0);
        assert_eq!(f(a, "max"), 101.0);
        assert_eq!(f(a, "count"), 100.0);
        assert!((f(a, "mean") - (49.0 * 100.0 + 50.0 * 101.0 + 80.0) / 100.0).abs() < 1e-9);
        assert_eq!(f(a, "min_pct"), 80.0);
        assert_eq!(a.field_value("flagged"), Some(&FieldValue::Bool(false)));
        assert_eq!(pts[3].measurement, "frequency");
        assert_eq!(f(&pts[3], "mean"), 50.0);
        // The quiet source's last second comes out on flush.
        let mut out = Vec::new();
        agg.flush_before(t0 + Duration::seconds(3), &mut out);
        assert_eq!(out.len(), 4);
        assert_eq!(out[0].time, t0 + Duration::seconds(1));
    }

    #[test]
    fn unlocked_windows_and_events_flag_the_second_and_skip_frequency() {
        let t0 = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        let mut agg = SecondAggregator::new();
        let mut out = Vec::new();
        agg.push(&reading("n1", t0, [1.0; 3], false), &mut out);
        agg.finish(&mut out);
        assert_eq!(out.len(), 3, "no frequency from unlocked windows");
        assert_eq!(out[0].field_value("flagged"), Some(&FieldValue::Bool(true)));
        assert_eq!(f(&out[0], "unlocked"), 1.0);

        out.clear();
        agg.set_event_active("n1", true);
        agg.push(&reading("n1", t0, [50.0; 3], true), &mut out);
        agg.set_event_active("n1", false);
        agg.push(
            &reading("n1", t0 + Duration::seconds(1), [100.0; 3], true),
            &mut out,
        );
        agg.finish(&mut out);
        assert_eq!(out[0].field_value("flagged"), Some(&FieldValue::Bool(true)));
        assert_eq!(
            out.last().unwrap().field_value("flagged"),
            Some(&FieldValue::Bool(false))
        );
    }

    #[test]
    fn meter_readings_group_into_one_point_per_device_and_time() {
        use crate::sources::meters::readings::Quantity;
        let t = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        let r = |q, v| MeterReading {
            source: Arc::from("rs485"),
            device: Arc::from("incomer"),
            at: t,
            quantity: q,
            value: v,
        };
        let pts =
            points_from_meter_readings(&[r(Quantity::VoltageA, 230.5), r(Quantity::ThdUA, 2.5)]);
        assert_eq!(pts.len(), 1);
        assert_eq!(
            to_line(&pts[0], &[]).unwrap(),
            "meter,device=incomer,source=rs485 voltage_a=230.5,thd_u_a=2.5 1800000000000000000\n"
        );
        let iv = points_from_interval(&[r(Quantity::EnergyImportKwh, 1234.5)]);
        assert_eq!(iv[0].measurement, "meter_interval");
        assert_eq!(iv[0].class, Class::Interval);
    }

    #[test]
    fn tickets_put_bounded_values_in_tags_and_the_rest_in_fields() {
        use crate::actions::rules::{TicketKind, TicketOp, TicketState};
        let t = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        let rec = TicketRecord {
            op: TicketOp {
                key: "SITE-1-outage-20270115T080000Z".into(),
                kind: TicketKind::Repair,
                state: TicketState::Closed,
                priority: "P1".into(),
                title: "Supply restored".into(),
                opened_at: t,
                closed_at: Some(t + Duration::seconds(600)),
                duration_s: Some(600.0),
                detail: crate::actions::rules::TicketDetail::Outage(
                    crate::actions::rules::OutageDetail {
                        classification: Some(crate::actions::rules::OutageClass::Sustained),
                        failures: 1,
                        ..Default::default()
                    },
                ),
            },
            revision: 3,
            updated_at: t + Duration::seconds(600),
            durability: Default::default(),
        };
        let p = points_from_ticket(&rec, Some(600.0));
        assert_eq!(p.tags.len(), 2);
        assert_eq!(p.tag_value("kind"), Some("repair"));
        assert_eq!(f(&p, "ens_kwh"), 100.0);
        assert_eq!(
            p.field_value("key"),
            Some(&FieldValue::Str("SITE-1-outage-20270115T080000Z".into()))
        );
        assert_eq!(
            p.field_value("state"),
            Some(&FieldValue::Str("closed".into()))
        );
        assert_eq!(p.time, t);
    }

    #[test]
    fn demand_before_an_outage() {
        use crate::sources::meters::readings::Quantity;
        let t = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        let mut d = DemandTracker::default();
        for (i, kw) in [(0, 500.0), (900, 650.0)] {
            d.observe(&MeterReading {
                source: Arc::from("b"),
                device: Arc::from("m"),
                at: t + Duration::seconds(i),
                quantity: Quantity::DemandKw,
                value: kw,
            });
        }
        assert_eq!(d.before(t + Duration::seconds(899)), Some(500.0));
        assert_eq!(d.before(t + Duration::seconds(2000)), Some(650.0));
        assert_eq!(d.before(t - Duration::seconds(1)), None);
        // A later value in the same minute (the supply just failed) does not replace it.
        d.observe(&MeterReading {
            source: Arc::from("b"),
            device: Arc::from("m"),
            at: t + Duration::seconds(930),
            quantity: Quantity::DemandKw,
            value: 0.0,
        });
        assert_eq!(d.before(t + Duration::seconds(2000)), Some(650.0));
    }

    #[test]
    fn health_point() {
        let h = Health {
            at: Utc.timestamp_opt(1_800_000_000, 0).unwrap(),
            uptime_s: 12.0,
            supply_ok: Some(true),
            clock_synced: Some(false),
            ..Default::default()
        };
        let line = to_line(&points_from_health(&h), &[]).unwrap();
        assert!(line.starts_with("kare_health uptime_s=12,supply_ok=1i,outage_open=0i"));
        assert!(line.contains("clock_synced=0i"));
    }
}
