//! What the construction calls for, what was found, and the verdict.

use super::*;
use crate::pipeline::events::kind_order;
use kare_firmware::detector::{Event, EventKind};
use kare_firmware::urms::POS_ONE;

/// One event the construction calls for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Expected {
    /// Dip, swell or interruption.
    pub kind: EventKind,
    /// Residual or maximum, % of Udin.
    pub extreme_pct: f64,
    /// The channel that must be the worst; `None` when all three carry the same level (three
    /// phases), where any may be reported.
    pub worst_channel: Option<u8>,
}

/// The events a case calls for, and nothing else: a dip for a level below 90 % (residual =
/// level, worst channel A for one phase); for three phases below 10 % also an interruption
/// (residual = level; a single phase below 10 % is a dip only); a swell for a level above 110 %.
pub fn expected(case: &Case) -> Vec<Expected> {
    let t = thresholds();
    let worst_channel = match case.phases {
        Phases::One => Some(0),
        Phases::Three => None,
    };
    let mut out = Vec::new();
    let level = case.level_pct;
    if level < f64::from(t.dip_pct) {
        out.push(Expected {
            kind: EventKind::Dip,
            extreme_pct: level,
            worst_channel,
        });
        if case.phases == Phases::Three && level < f64::from(t.interruption_pct) {
            out.push(Expected {
                kind: EventKind::Interruption,
                extreme_pct: level,
                worst_channel,
            });
        }
    }
    if level > f64::from(t.swell_pct) {
        out.push(Expected {
            kind: EventKind::Swell,
            extreme_pct: level,
            worst_channel,
        });
    }
    out
}

/// An event as a path reported it, in the units the judge compares.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    /// Dip, swell or interruption.
    pub kind: EventKind,
    /// Start, seconds after the run's first sample.
    pub start_s: f64,
    /// Duration (end − start), seconds; `None` if it never ended.
    pub duration_s: Option<f64>,
    /// Residual or maximum, % of Udin.
    pub extreme_pct: f64,
    /// Channel of the extreme (0 = A).
    pub worst_channel: u8,
}

impl Found {
    /// From the core's event, with the arithmetic of `pipeline::events::characterise`.
    pub fn from_core(e: &Event, sample_rate_hz: f64) -> Found {
        let seconds = |pos: u64| pos as f64 / POS_ONE as f64 / sample_rate_hz;
        Found {
            kind: e.kind,
            start_s: seconds(e.start),
            duration_s: e.end.map(|end| seconds(end - e.start)),
            extreme_pct: e.extreme as f64 / UDIN * 100.0,
            worst_channel: e.worst_channel,
        }
    }

    /// From an event as the edge reports it (`kare replay`, the pqlink stream).
    pub fn from_reported(e: &crate::pipeline::events::ReportedEvent) -> Found {
        Found {
            kind: e.kind,
            start_s: e.offset_s,
            duration_s: e.duration_s,
            extreme_pct: e.extreme_pct,
            worst_channel: CHANNEL_NAMES
                .iter()
                .position(|n| *n == e.worst_channel)
                .map_or(u8::MAX, |i| i as u8),
        }
    }

    /// One line for listings.
    pub fn describe(&self) -> String {
        format!(
            "{} at {:.6} s for {} s, {:.3} % on {}",
            self.kind.as_str(),
            self.start_s,
            self.duration_s
                .map_or("(open)".to_string(), |d| format!("{d:.6}")),
            self.extreme_pct,
            CHANNEL_NAMES
                .get(self.worst_channel as usize)
                .copied()
                .unwrap_or("?")
        )
    }
}

/// The time-stamp convention, in one place: the errors of a found event's start and duration
/// against the construction, in cycles of the actual frequency (found − constructed).
///
/// Today's convention (IEC 61000-4-30 time stamps as the detector gives them): the start is
/// the start of the first Urms(1/2) window beyond the threshold, the duration is the
/// detector's `end − start` (end = start of the first window back within the hysteresis).
/// Both are compared with the rectangular event's own start and length.
pub fn time_errors(found: &Found, slot: &Slot) -> (f64, Option<f64>) {
    let cycle = slot.case.cycle_s();
    let start = (found.start_s - slot.event_start_s) / cycle;
    let duration = found
        .duration_s
        .map(|d| (d - (slot.event_end_s - slot.event_start_s)) / cycle);
    (start, duration)
}

/// How one expected event was measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    /// What was expected.
    pub expected: Expected,
    /// The event matched to it (the first of its kind in the slot); `None` if missing.
    pub found: Option<Found>,
    /// Residual/maximum error, % of Udin (found − constructed).
    pub extreme_err_pct: Option<f64>,
    /// Start error, cycles (found − constructed).
    pub start_err_cycles: Option<f64>,
    /// Duration error, cycles (found − constructed).
    pub duration_err_cycles: Option<f64>,
}

/// The judgement of one case.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// The case's slot.
    pub slot: Slot,
    /// Each expected event, measured.
    pub measured: Vec<Measured>,
    /// Why the case fails; empty when it passes.
    pub failures: Vec<String>,
}

impl Verdict {
    /// Whether every check held.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Judges what was found in `slot` against the construction: each expected event present once,
/// with the right kind and worst channel, residual/maximum within [`EXTREME_TOLERANCE_PCT`],
/// start within [`START_TOLERANCE_CYCLES`], duration within [`DURATION_TOLERANCE_CYCLES`];
/// and no other event.
pub fn judge(slot: &Slot, found: &[Found]) -> Verdict {
    let case = &slot.case;
    let mut failures = Vec::new();
    let mut measured = Vec::new();
    let expect = expected(case);
    for x in &expect {
        let mut same: Vec<&Found> = found.iter().filter(|f| f.kind == x.kind).collect();
        same.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
        let Some(f) = same.first() else {
            failures.push(format!("missing {}", x.kind.as_str()));
            measured.push(Measured {
                expected: *x,
                found: None,
                extreme_err_pct: None,
                start_err_cycles: None,
                duration_err_cycles: None,
            });
            continue;
        };
        if same.len() > 1 {
            failures.push(format!(
                "{} {}s instead of one (other event)",
                same.len(),
                x.kind.as_str()
            ));
        }
        let extreme_err = f.extreme_pct - x.extreme_pct;
        let (start_err, duration_err) = time_errors(f, slot);
        if case.cycles >= MIN_CYCLES_FOR_EXTREME && extreme_err.abs() > EXTREME_TOLERANCE_PCT {
            failures.push(format!(
                "{} {} {:.3} % of Udin off ({:.3} % for {} %)",
                x.kind.as_str(),
                if x.kind == EventKind::Swell {
                    "maximum"
                } else {
                    "residual"
                },
                extreme_err,
                f.extreme_pct,
                x.extreme_pct
            ));
        }
        if start_err.abs() > START_TOLERANCE_CYCLES + TIME_RESOLUTION_CYCLES {
            failures.push(format!(
                "{} start {start_err:+.3} cycles off",
                x.kind.as_str()
            ));
        }
        match duration_err {
            None => failures.push(format!("{} never ended", x.kind.as_str())),
            Some(d) if d.abs() > DURATION_TOLERANCE_CYCLES + TIME_RESOLUTION_CYCLES => {
                failures.push(format!("{} duration {d:+.3} cycles off", x.kind.as_str()))
            }
            Some(_) => {}
        }
        if let Some(ch) = x.worst_channel {
            if f.worst_channel != ch {
                failures.push(format!(
                    "{} worst channel {} instead of {}",
                    x.kind.as_str(),
                    f.worst_channel,
                    ch
                ));
            }
        }
        measured.push(Measured {
            expected: *x,
            found: Some((*f).clone()),
            extreme_err_pct: Some(extreme_err),
            start_err_cycles: Some(start_err),
            duration_err_cycles: duration_err,
        });
    }
    for f in found {
        if !expect.iter().any(|x| x.kind == f.kind) {
            failures.push(format!("other event: {}", f.describe()));
        }
    }
    Verdict {
        slot: *slot,
        measured,
        failures,
    }
}

/// Sorts events by start, then kind (dip, swell, interruption), as `kare replay` lists them.
pub fn sort_found(found: &mut [Found]) {
    found.sort_by(|a, b| {
        a.start_s
            .total_cmp(&b.start_s)
            .then(kind_order(a.kind).cmp(&kind_order(b.kind)))
    });
}

/// Events found in a run, sorted into its slots: per slot the events that start in it, and
/// those that start in the lead-in or past the last slot (stray: each one is a failure).
pub fn sort_into_slots(run: &Run, found: Vec<Found>) -> (Vec<Vec<Found>>, Vec<Found>) {
    let mut per = vec![Vec::new(); run.slots.len()];
    let mut stray = Vec::new();
    for f in found {
        match run.slot_of(f.start_s) {
            Some(i) => per[i].push(f),
            None => stray.push(f),
        }
    }
    (per, stray)
}
