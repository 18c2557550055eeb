//! RMS profiles: every event carries its Urms(1/2) records from before its start to after its end.

use kare_firmware::detector::{EventKind, Thresholds, Transition};
use kare_firmware::monitor::{Monitor, Output};
use kare_firmware::profile::{EventProfile, ProfilePoint, Profiler};
use std::f64::consts::PI;

const FS: f64 = 6400.0;

/// Runs 3-phase 230 V through a monitor and profiler; `pct(t)` is the RMS in % of Udin.
fn run(
    seconds: f64,
    pct: impl Fn(f64) -> f64,
) -> (Vec<(EventKind, u32)>, Vec<EventProfile<100, 100>>) {
    let lsb = 230.0 * 2f64.sqrt() * 2.0 / (1 << 23) as f64;
    let mut m = Monitor::new(
        FS as f32,
        50.0,
        &[lsb as f32; 3],
        Thresholds::typical(230.0),
    )
    .unwrap();
    let mut prof: Profiler<25, 100, 100, 4> = Profiler::new(25);
    let mut kinds = Vec::new();
    let mut done = Vec::new();
    for k in 0..(seconds * FS) as usize {
        let t = k as f64 / FS;
        let s: Vec<i32> = (0..3)
            .map(|ch| {
                let v = 230.0 * pct(t) / 100.0
                    * 2f64.sqrt()
                    * (2.0 * PI * 50.0 * t - ch as f64 * 2.0 * PI / 3.0).sin();
                (v / lsb).round() as i32
            })
            .collect();
        let mut point = None;
        let mut trs: Vec<Transition> = Vec::new();
        m.push(&s, |o| match o {
            Output::Values { half, values } => {
                point = Some(ProfilePoint {
                    start: half.start,
                    end: half.end,
                    values,
                })
            }
            Output::Transition(tr) => {
                if let Transition::Started(e) = tr {
                    kinds.push((e.kind, e.id));
                }
                trs.push(tr)
            }
        });
        if let Some(p) = point {
            prof.record(p, &trs, |p| done.push(p));
        }
    }
    (kinds, done)
}

#[test]
fn a_short_dip_keeps_every_record_from_before_to_after() {
    let (kinds, profiles) = run(1.5, |t| if (0.5..0.6).contains(&t) { 50.0 } else { 100.0 });
    assert_eq!(kinds.len(), 1);
    assert_eq!(profiles.len(), 1);
    let p = &profiles[0];
    assert_eq!(p.event_id, kinds[0].1);
    assert_eq!(p.pre, 25, "a quarter second before the start");
    assert_eq!(p.skipped, 0);
    let pts: Vec<&ProfilePoint> = p.points().collect();
    // 25 before, about 11 during (100 ms + the edges), the ending record, 25 after.
    assert!((55..=70).contains(&pts.len()), "{}", pts.len());
    let pct = |x: &ProfilePoint| x.values[0] as f64 / 230.0 * 100.0;
    assert!(
        pct(pts[0]) > 99.0 && pct(pts[pts.len() - 1]) > 99.0,
        "normal at both ends"
    );
    assert!(
        pts.iter().any(|x| (pct(x) - 50.0).abs() < 0.5),
        "the bottom of the dip"
    );
    for w in pts.windows(2) {
        assert!(w[1].end > w[0].end, "in time order, no gap");
    }
}

#[test]
fn a_long_outage_keeps_its_start_and_its_recovery() {
    let (kinds, profiles) = run(7.0, |t| if (1.0..6.0).contains(&t) { 0.0 } else { 100.0 });
    let int_id = kinds
        .iter()
        .find(|(k, _)| *k == EventKind::Interruption)
        .unwrap()
        .1;
    let p = profiles
        .iter()
        .find(|p| p.event_id == int_id)
        .expect("interruption profile");
    assert!(
        p.skipped > 300,
        "5 s is 500 records; head and tail keep 200: {}",
        p.skipped
    );
    let pts: Vec<&ProfilePoint> = p.points().collect();
    assert_eq!(pts.len(), 200);
    let pct = |x: &ProfilePoint| x.values[1] as f64 / 230.0 * 100.0;
    assert!(pct(pts[0]) > 99.0, "begins before the outage");
    assert!(pct(pts[199]) > 99.0, "ends after the recovery");
    assert!(pct(pts[100]) < 1.0, "the tail starts inside the outage");
}
