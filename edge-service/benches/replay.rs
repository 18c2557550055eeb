//! `kare replay` on the largest real recording in ../shared/data (wisp-set2/2.cfg: 2.6 MB BINARY,
//! 55 analog channels, 19 680 samples at 1200/s): reading the file, and judging three phases.
//!
//! `cargo bench -p kare --bench replay`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kare::recording;
use kare::replay::{analyse, ReplayOptions};
use std::path::Path;

fn bench(c: &mut Criterion) {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/comtrade/wisp-set2/2.cfg");
    let rec = recording::read(&path).expect("the shared recordings are beside the checkout");
    let channels: Vec<String> = [
        "Ua_1СШ-110_ТН_110кВ",
        "Ub_1СШ-110_ТН_110кВ",
        "Uc_1СШ-110_ТН_110кВ",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let opts = ReplayOptions::new(channels, 63.5);
    let mut g = c.benchmark_group("replay_2cfg");
    g.throughput(Throughput::Bytes(
        std::fs::metadata(path.with_extension("dat")).unwrap().len(),
    ));
    g.bench_function("read_cfg_dat", |b| {
        b.iter(|| recording::read(&path).unwrap())
    });
    g.throughput(Throughput::Elements((rec.sample_count() * 3) as u64));
    g.bench_function("analyse_3_phases", |b| {
        b.iter(|| analyse(&rec, &opts).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
