//! Throughput of the hot loop: Urms(1/2) on every channel plus the polyphase detector.
//!
//! `cargo bench -p kare-firmware --bench detector`; criterion reports elements (samples of one
//! channel) per second on one core.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use kare_firmware::detector::Thresholds;
use kare_firmware::monitor::{Monitor, Output};
use kare_firmware::urms::{lock_gate, UrmsConfig, UrmsMeter};

const FS: f64 = 6400.0;
const SECONDS: f64 = 2.0;

/// Three phases at 50 Hz with a 100 ms dip to 50 %, quantised to 24-bit units.
fn waveform() -> Vec<[i32; 3]> {
    let n = (FS * SECONDS) as usize;
    (0..n)
        .map(|k| {
            let t = k as f64 / FS;
            let amp = if (0.5..0.6).contains(&t) { 0.5 } else { 1.0 };
            core::array::from_fn(|ch| {
                let ph = -(ch as f64) * 2.0 * std::f64::consts::PI / 3.0;
                (amp * 4_000_000.0 * (2.0 * std::f64::consts::PI * 50.0 * t + ph).sin()) as i32
            })
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let wave = waveform();
    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements((wave.len() * 3) as u64));
    g.bench_function("monitor_3ph_6400Sps", |b| {
        b.iter(|| {
            let scale = [230.0 / 4_000_000.0 * std::f32::consts::SQRT_2; 3];
            let mut m = Monitor::new(FS as f32, 50.0, &scale, Thresholds::typical(230.0)).unwrap();
            let mut events = 0u32;
            for s in &wave {
                m.push(black_box(s), |o| {
                    if let Output::Transition(_) = o {
                        events += 1;
                    }
                });
            }
            black_box(events)
        })
    });
    g.bench_function("urms_meter_only_3ph_6400Sps", |b| {
        b.iter(|| {
            let cfg = UrmsConfig {
                sample_rate_hz: FS as f32,
                nominal_hz: 50.0,
            };
            let gate = lock_gate(4_000_000.0 * 1.414);
            let mut meter = UrmsMeter::new(cfg, &[gate; 3]);
            let mut acc = 0.0f32;
            for s in &wave {
                if let Some(h) = meter.push(black_box(s)) {
                    acc += h.urms[0];
                }
            }
            black_box(acc)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
