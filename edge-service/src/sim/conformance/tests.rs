//! The suite's own checks: the signal is what the case says, the judge judges.

use super::*;
use kare_firmware::detector::EventKind;

fn rms_over(run: &Run, from_s: f64, to_s: f64, ch: usize) -> f64 {
    let fs = run.sample_rate_hz;
    let (a, b) = ((from_s * fs).ceil() as usize, (to_s * fs).floor() as usize);
    let lsb = f64::from(volts_per_unit());
    let sum: f64 = run
        .samples()
        .skip(a)
        .take(b - a)
        .map(|s| (s[ch] as f64 * lsb).powi(2))
        .sum();
    (sum / (b - a) as f64).sqrt() / UDIN * 100.0
}

#[test]
fn the_test_signal_holds_the_constructed_rms_inside_and_outside_the_event() {
    let case = Case {
        kind: Kind::Dip,
        level_pct: 30.0,
        cycles: 10.0,
        angle_deg: 45.0,
        phases: Phases::One,
        frequency_hz: 49.5,
        nominal_hz: 50.0,
        sample_rate_hz: SIM_RATE_HZ,
    };
    let run = &runs(&[case])[0];
    let s = run.slots[0];
    let cycle = case.cycle_s();
    // Eight cycles inside the event, and five before it (whole samples: within 0.1 %).
    let inside = rms_over(
        run,
        s.event_start_s + cycle,
        s.event_start_s + 9.0 * cycle,
        0,
    );
    assert!((inside - 30.0).abs() < 0.1, "{inside}");
    let before = rms_over(run, s.event_start_s - 5.0 * cycle, s.event_start_s, 0);
    assert!((before - 100.0).abs() < 0.1, "{before}");
    let b = rms_over(
        run,
        s.event_start_s + cycle,
        s.event_start_s + 9.0 * cycle,
        1,
    );
    assert!((b - 100.0).abs() < 0.1, "phase B is untouched: {b}");
    // Phase A is at 45° when the event starts.
    let turns = (s.event_start_s * case.frequency_hz).fract();
    assert!((turns - 0.125).abs() < 1e-9, "{turns}");
    assert!(s.event_start_s - s.from_s >= PRE_S && s.to_s - s.event_end_s >= POST_S);
    assert!((s.event_end_s - s.event_start_s - 10.0 / 49.5).abs() < 1e-12);
}

#[test]
fn each_case_calls_for_its_events_and_nothing_else() {
    let mut c = grid()[0];
    c.kind = Kind::Dip;
    c.level_pct = 5.0;
    c.phases = Phases::One;
    let kinds = |c: &Case| expected(c).iter().map(|x| x.kind).collect::<Vec<_>>();
    assert_eq!(
        kinds(&c),
        [EventKind::Dip],
        "one phase below 10 % is a dip only"
    );
    c.phases = Phases::Three;
    assert_eq!(kinds(&c), [EventKind::Dip, EventKind::Interruption]);
    c.level_pct = 85.0;
    assert_eq!(kinds(&c), [EventKind::Dip]);
    c.kind = Kind::Swell;
    c.level_pct = 112.0;
    assert_eq!(kinds(&c), [EventKind::Swell]);
}

#[test]
fn the_grid_covers_every_level_duration_angle_phase_and_frequency() {
    let g = grid();
    assert_eq!(g.len(), 14 * 7 * 4 * 2 * 6 + 14 * 2 * 6);
    let rs = runs(&g);
    assert_eq!(rs.len(), 6);
    assert_eq!(rs.iter().map(|r| r.slots.len()).sum::<usize>(), g.len());
    assert_eq!(pico_grid().len(), 14 * 7 * 2 * 2 * 4);
}

#[test]
fn a_correct_event_passes_and_a_wrong_or_extra_one_fails() {
    let case = Case {
        kind: Kind::Dip,
        level_pct: 5.0,
        cycles: 5.0,
        angle_deg: 0.0,
        phases: Phases::Three,
        frequency_hz: 50.0,
        nominal_hz: 50.0,
        sample_rate_hz: SIM_RATE_HZ,
    };
    let slot = runs(&[case])[0].slots[0];
    let good = |kind| Found {
        kind,
        start_s: slot.event_start_s + 0.002,
        duration_s: Some(0.1 + 0.01),
        extreme_pct: 5.1,
        worst_channel: 2,
    };
    let v = judge(
        &slot,
        &[good(EventKind::Dip), good(EventKind::Interruption)],
    );
    assert!(v.passed(), "{:?}", v.failures);
    let v = judge(&slot, &[good(EventKind::Dip)]);
    assert_eq!(v.failures, ["missing interruption"]);
    let mut late = good(EventKind::Interruption);
    late.start_s += 0.03;
    late.extreme_pct = 5.3;
    let v = judge(&slot, &[good(EventKind::Dip), late]);
    assert_eq!(v.failures.len(), 2, "{:?}", v.failures);
    let v = judge(
        &slot,
        &[
            good(EventKind::Dip),
            good(EventKind::Interruption),
            good(EventKind::Swell),
        ],
    );
    assert!(
        v.failures[0].starts_with("other event: swell"),
        "{:?}",
        v.failures
    );
}
