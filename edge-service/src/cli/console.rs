//! The console: one line per event and per ticket change, as `kare run` and `kare demo` print
//! them.

use crate::actions::rules::TicketState;
use crate::actions::tickets::TicketRecord;
use crate::pipeline::event_log::{EventBody, LoggedEvent};
use crate::pipeline::events::round;
use chrono::SecondsFormat;

/// One line for the console: what happened, where, how bad.
pub fn describe(e: &LoggedEvent) -> String {
    match &e.body {
        EventBody::Voltage(v) => {
            let when = v.start.to_rfc3339_opts(SecondsFormat::Millis, true);
            match v.duration_s {
                None => format!(
                    "{when}  #{:<4} {:<12} {:<12} started on {} ({:.1} % of Udin so far)",
                    e.id,
                    e.source,
                    v.kind.as_str().to_uppercase(),
                    v.worst_channel,
                    v.extreme_pct
                ),
                Some(d) => format!(
                    "{when}  #{:<4} {:<12} {:<12} ended: {:.3} s, {} {:.1} % on {}, ITIC {}{}",
                    e.id,
                    e.source,
                    v.kind.as_str().to_uppercase(),
                    d,
                    if v.kind == kare_firmware::detector::EventKind::Swell {
                        "max"
                    } else {
                        "residual"
                    },
                    v.extreme_pct,
                    v.worst_channel,
                    v.itic.as_str(),
                    v.semi_f47
                        .map(|s| format!(", SEMI F47 {}", s.as_str()))
                        .unwrap_or_default(),
                ),
            }
        }
        EventBody::Coarse(c) => format!(
            "{}  #{:<4} {:<12} {:<12} {} on {} ({:.1} % of Udin; coarse: polls every {:.0} s)",
            c.end
                .unwrap_or(c.start)
                .to_rfc3339_opts(SecondsFormat::Millis, true),
            e.id,
            e.source,
            format!("{:?}", c.kind).to_uppercase(),
            if c.end.is_some() { "ended" } else { "started" },
            c.device,
            c.extreme_pct,
            c.resolution_s
        ),
        EventBody::MeterPowerDown { start, end } => format!(
            "{}  #{:<4} {:<12} METER POWER-DOWN recorded by the meter{}",
            start.to_rfc3339_opts(SecondsFormat::Secs, true),
            e.id,
            e.source,
            end.map(|x| format!(", back at {}", x.to_rfc3339_opts(SecondsFormat::Secs, true)))
                .unwrap_or_default()
        ),
        EventBody::SensorLost { start, end, reason } => match end {
            None => format!(
                "{}  #{:<4} {:<12} SENSOR LOST  ({reason}); this is the sensor, not the supply",
                start.to_rfc3339_opts(SecondsFormat::Millis, true),
                e.id,
                e.source
            ),
            Some(end) => format!(
                "{}  #{:<4} {:<12} SENSOR BACK  after {:.1} s",
                end.to_rfc3339_opts(SecondsFormat::Millis, true),
                e.id,
                e.source,
                round((*end - *start).num_milliseconds() as f64 / 1000.0, 1)
            ),
        },
    }
}

/// One line for the console about a ticket change.
pub fn describe_ticket(t: &TicketRecord) -> String {
    let op = &t.op;
    let state = match op.state {
        TicketState::Open if t.revision == 1 => "OPENED",
        TicketState::Open => "UPDATED",
        TicketState::Closed => "CLOSED",
        TicketState::Cancelled => "CANCELLED",
    };
    format!(
        "{}  TICKET {:<11} {:<9} {} [{} rev {}] {}{}",
        t.updated_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        op.kind.as_str(),
        state,
        op.priority,
        op.key,
        t.revision,
        op.title,
        // Never let a line claim a ticket is recorded when it is only in memory (issue 11).
        t.durability
            .note()
            .map(|n| format!("  ({n})"))
            .unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::rules::{TicketDetail, TicketKind, TicketOp};
    use crate::actions::tickets::Durability;

    #[test]
    fn console_ticket_line_says_when_a_change_is_only_in_memory() {
        let t = chrono::Utc::now();
        let mut rec = TicketRecord {
            op: TicketOp {
                key: "K".into(),
                kind: TicketKind::Repair,
                state: TicketState::Open,
                priority: "P1".into(),
                title: "Supply lost".into(),
                opened_at: t,
                closed_at: None,
                duration_s: None,
                detail: TicketDetail::Outage(Default::default()),
            },
            revision: 1,
            updated_at: t,
            durability: Durability::Stored,
        };
        assert!(describe_ticket(&rec).ends_with("[K rev 1] Supply lost"));
        rec.durability = Durability::WaitingForDisk;
        assert!(describe_ticket(&rec).ends_with("Supply lost  (NOT STORED yet: waiting for disk)"));
        assert_eq!(rec.to_json()["stored"], false);
        rec.durability = Durability::StoredAfterWaiting;
        assert!(describe_ticket(&rec).contains("(stored now, after waiting for disk)"));
        assert_eq!(rec.to_json()["stored"], true);
    }
}
