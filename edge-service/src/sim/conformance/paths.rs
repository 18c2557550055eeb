//! The measurement paths a run is judged on: the replay path and an ideal reference meter.

use super::*;
use kare_firmware::detector::{Detector, Observation, Transition};
use kare_firmware::monitor::{Monitor, Output};
use kare_firmware::urms::POS_ONE;
use std::f64::consts::PI;

/// The replay path over a run: the measurement core's `Monitor` fed with the quantised samples,
/// one instant at a time, exactly as `kare replay` measures a uniform recording with no flagged
/// data (`replay/feed.rs` feeds `UrmsMeter`, then whole units times the scale, then
/// `Monitor::judge`). Every event, ended or still open at the end, in order of start (dip,
/// swell, interruption for equal starts).
pub fn replay(run: &Run) -> Vec<Found> {
    let vpu = volts_per_unit();
    let mut m = Monitor::new(
        run.sample_rate_hz as f32,
        run.nominal_hz as f32,
        &[vpu; CHANNELS],
        thresholds(),
    )
    .expect("the conformance settings are valid");
    let mut events = Vec::new();
    for s in run.samples() {
        m.push(&s, |out| {
            if let Output::Transition(Transition::Ended(e)) = out {
                events.push(e);
            }
        });
    }
    events.extend(m.open_events());
    let mut found: Vec<Found> = events
        .iter()
        .map(|e| Found::from_core(e, run.sample_rate_hz))
        .collect();
    sort_found(&mut found);
    found
}

/// A reference, not the product: an ideal Urms(1/2) meter on the same signals, feeding today's
/// `Detector`. Each value is the exact RMS of the constructed (unquantised) waveform over one
/// cycle, on a regular grid of windows that start at every zero crossing of phase A (every half
/// cycle, whatever the event does to the phases). What it scores is what the detector's
/// thresholds and time-stamp convention allow at best: a failure here is the convention's or
/// the tolerance's, not the meter's.
pub fn ideal(run: &Run) -> Vec<Found> {
    let mut det = Detector::new(thresholds(), CHANNELS);
    let fs = run.sample_rate_hz;
    let cycle = 1.0 / run.frequency_hz;
    let omega = 2.0 * PI * run.frequency_hz;
    let end_s = run.length_s();
    let pos = |t: f64| (t * fs * POS_ONE as f64).round() as u64;
    // ∫ sin²(ωt + φ) dt
    let prim = |t: f64, phi: f64| t / 2.0 - (2.0 * (omega * t + phi)).sin() / (4.0 * omega);
    let mut events = Vec::new();
    let mut slot = 0usize;
    let mut k = 0u64;
    loop {
        let a = k as f64 * cycle / 2.0;
        let b = a + cycle;
        if b > end_s {
            break;
        }
        k += 1;
        while slot + 1 < run.slots.len() && a >= run.slots[slot].to_s {
            slot += 1;
        }
        let s = run.slots.get(slot);
        for ch in 0..CHANNELS {
            let phi = -(ch as f64) * 2.0 * PI / 3.0;
            let part = |u: f64, v: f64| {
                if v > u {
                    prim(v, phi) - prim(u, phi)
                } else {
                    0.0
                }
            };
            let mut sum = part(a, b);
            if let Some(s) = s.filter(|s| s.case.affects(ch)) {
                // The part of the window inside the event carries level² instead of 1.
                let (u, v) = (a.max(s.event_start_s), b.min(s.event_end_s));
                let l = s.case.level_pct / 100.0;
                sum += (l * l - 1.0) * part(u, v);
            }
            let rms = UDIN * (2.0 * sum.max(0.0) / cycle).sqrt();
            let obs = Observation {
                channel: ch as u8,
                start: pos(a),
                end: pos(b),
                value: rms as f32,
            };
            for tr in det.observe(&obs) {
                if let Transition::Ended(e) = tr {
                    events.push(e);
                }
            }
        }
    }
    events.extend(det.open_events());
    let mut found: Vec<Found> = events.iter().map(|e| Found::from_core(e, fs)).collect();
    sort_found(&mut found);
    found
}
