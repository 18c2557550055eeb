//! The table of worst errors and the per-case CSV.

use super::*;
use kare_firmware::detector::EventKind;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Verdicts of many cases, with the events that belong to none.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// One per case, in the order judged.
    pub verdicts: Vec<Verdict>,
    /// Events in a run's lead-in or past its last slot, with the run's description.
    pub stray: Vec<(String, Found)>,
}

impl Report {
    /// Judges one run's events and adds the verdicts.
    pub fn add_run(&mut self, run: &Run, found: Vec<Found>) {
        let (per, stray) = sort_into_slots(run, found);
        for (slot, found) in run.slots.iter().zip(&per) {
            self.verdicts.push(judge(slot, found));
        }
        let name = format!(
            "run {}/{} Hz {} Sps",
            run.frequency_hz, run.nominal_hz, run.sample_rate_hz
        );
        self.stray
            .extend(stray.into_iter().map(|f| (name.clone(), f)));
    }

    /// Cases that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Verdict> {
        self.verdicts.iter().filter(|v| !v.passed())
    }

    /// Whether every case passed and no stray event was found.
    pub fn passed(&self) -> bool {
        self.stray.is_empty() && self.verdicts.iter().all(|v| v.passed())
    }

    /// Every case's errors as CSV, one line per expected event (a case that expects none, or
    /// has other events, still has a line): frequencies, level, duration, angle, phases,
    /// event kind, residual/maximum error (% of Udin), start and duration errors (cycles),
    /// pass, failures.
    pub fn csv(&self) -> String {
        let mut s = String::from(
            "kind,level_pct,cycles,angle_deg,phases,frequency_hz,nominal_hz,sample_rate_hz,\
             event_start_s,event,extreme_err_pct,start_err_cycles,duration_err_cycles,passed,failures\n",
        );
        let num = |x: Option<f64>| x.map_or(String::new(), |v| format!("{v:.4}"));
        for v in &self.verdicts {
            let c = &v.slot.case;
            let head = format!(
                "{},{},{},{},{},{},{},{},{:.6}",
                format!("{:?}", c.kind).to_lowercase(),
                c.level_pct,
                c.cycles,
                c.angle_deg,
                format!("{:?}", c.phases).to_lowercase(),
                c.frequency_hz,
                c.nominal_hz,
                c.sample_rate_hz,
                v.slot.event_start_s
            );
            let tail = format!(
                "{},\"{}\"",
                v.passed(),
                v.failures.join("; ").replace('"', "'")
            );
            if v.measured.is_empty() {
                let _ = writeln!(s, "{head},,,,,{tail}");
            }
            for m in &v.measured {
                let _ = writeln!(
                    s,
                    "{head},{},{},{},{},{tail}",
                    m.expected.kind.as_str(),
                    num(m.extreme_err_pct),
                    num(m.start_err_cycles),
                    num(m.duration_err_cycles)
                );
            }
        }
        s
    }

    /// The table of worst errors: per event kind the worst residual/maximum, start and duration
    /// error with its case; failure counts per kind × phases × frequency; the first failures.
    pub fn table(&self, title: &str, first_failures: usize) -> String {
        let mut s = String::new();
        let failed = self.failures().count();
        let _ = writeln!(s, "== {title} ==");
        let _ = writeln!(
            s,
            "cases {}, passed {}, failed {}, stray events {}",
            self.verdicts.len(),
            self.verdicts.len() - failed,
            failed,
            self.stray.len()
        );
        let _ = writeln!(
            s,
            "tolerances: residual/maximum ±{EXTREME_TOLERANCE_PCT} % of Udin (events ≥ \
             {MIN_CYCLES_FOR_EXTREME} cycles), start ±{START_TOLERANCE_CYCLES} cycle, duration \
             ±{DURATION_TOLERANCE_CYCLES} cycle (inclusive; times allow \
             {TIME_RESOLUTION_CYCLES} cycle for the rounding of positions)"
        );
        let _ = writeln!(s);
        let _ = writeln!(s, "worst errors (found − constructed):");
        for kind in [EventKind::Dip, EventKind::Interruption, EventKind::Swell] {
            let of_kind: Vec<(&Verdict, &Measured)> = self
                .verdicts
                .iter()
                .flat_map(|v| v.measured.iter().map(move |m| (v, m)))
                .filter(|(_, m)| m.expected.kind == kind)
                .collect();
            if of_kind.is_empty() {
                continue;
            }
            let missing = of_kind.iter().filter(|(_, m)| m.found.is_none()).count();
            let _ = writeln!(
                s,
                "  {} ({} expected, {} missing)",
                kind.as_str(),
                of_kind.len(),
                missing
            );
            let worst = |get: &dyn Fn(&Measured) -> Option<f64>| {
                of_kind
                    .iter()
                    .filter_map(|(v, m)| get(m).map(|e| (e, *v)))
                    .max_by(|a, b| a.0.abs().total_cmp(&b.0.abs()))
            };
            let name = if kind == EventKind::Swell {
                "maximum "
            } else {
                "residual"
            };
            if let Some((e, v)) = worst(&|m: &Measured| m.extreme_err_pct) {
                let _ = writeln!(s, "    {name} {e:+9.3} % of Udin   {}", v.slot.case.label());
            }
            if let Some((e, v)) = worst(&|m: &Measured| m.start_err_cycles) {
                let _ = writeln!(
                    s,
                    "    start    {e:+9.3} cycles      {}",
                    v.slot.case.label()
                );
            }
            if let Some((e, v)) = worst(&|m: &Measured| m.duration_err_cycles) {
                let _ = writeln!(
                    s,
                    "    duration {e:+9.3} cycles      {}",
                    v.slot.case.label()
                );
            }
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "failures per kind × phases × frequency (failed/cases):");
        let mut counts: BTreeMap<(Kind, Phases, String), (usize, usize)> = BTreeMap::new();
        for v in &self.verdicts {
            let c = &v.slot.case;
            let key = (
                c.kind,
                c.phases,
                format!(
                    "{:>5}/{} Hz {:>4} Sps",
                    c.frequency_hz, c.nominal_hz, c.sample_rate_hz
                ),
            );
            let e = counts.entry(key).or_default();
            e.1 += 1;
            e.0 += usize::from(!v.passed());
        }
        for ((kind, phases, freq), (bad, all)) in &counts {
            let _ = writeln!(
                s,
                "  {:<5} {:<5} {freq}  {bad:>4}/{all}",
                format!("{kind:?}").to_lowercase(),
                format!("{phases:?}").to_lowercase()
            );
        }
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for v in self.failures() {
            for f in &v.failures {
                *reasons.entry(reason_class(f)).or_default() += 1;
            }
        }
        if !reasons.is_empty() {
            let _ = writeln!(s);
            let _ = writeln!(s, "failed checks by reason:");
            for (r, n) in &reasons {
                let _ = writeln!(s, "  {n:>5}  {r}");
            }
        }
        if failed > 0 || !self.stray.is_empty() {
            let _ = writeln!(s);
            let _ = writeln!(s, "first failing cases:");
            for v in self.failures().take(first_failures) {
                let _ = writeln!(
                    s,
                    "  {} (event at {:.6} s): {}",
                    v.slot.case.label(),
                    v.slot.event_start_s,
                    v.failures.join("; ")
                );
            }
            for (run, f) in self.stray.iter().take(first_failures) {
                let _ = writeln!(s, "  stray event in {run}: {}", f.describe());
            }
        }
        s
    }
}

/// A failure message without its numbers, for counting failures by reason.
fn reason_class(msg: &str) -> String {
    let words: Vec<&str> = msg
        .split_whitespace()
        .filter(|w| {
            !w.starts_with(|c: char| c.is_ascii_digit() || c == '+' || c == '-' || c == '(')
        })
        .take(4)
        .collect();
    words.join(" ")
}
