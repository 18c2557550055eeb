//! Random configurations through `Config::parse`: built from the real keys of every section
//! with random and extreme values (NaN, infinities, huge, negative, zero, unicode, control
//! characters, wrong types, unknown keys). Parsing never panics, and a configuration it accepts
//! builds every component without panicking: the meter buses, the node sources, the routes, the
//! durations the store, delivery and InfluxDB derive, and the rules at their first reading
//! (where `demand_window_h = 3e9` used to panic). Seeded, so a failure reproduces; the seed and
//! the text are printed.

use chrono::{TimeZone, Utc};
use kare::actions::rules::{RuleInput, Rules};
use kare::actions::site::Site;
use kare::config::Config;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A valid configuration, section by section, as (header, key = value lines). Mutations start
/// from it so that many random configurations are accepted and their builders exercised.
const BASE: &[(&str, &[(&str, &str)])] = &[
    ("", &[("listen", "\"127.0.0.1:8080\"")]),
    (
        "[[node]]",
        &[
            ("name", "\"incomer-1\""),
            ("port", "\"/dev/ttyUSB0\""),
            ("baud", "115200"),
            ("udin", "230.0"),
            ("dip_pct", "90.0"),
            ("swell_pct", "110.0"),
            ("interruption_pct", "10.0"),
            ("hysteresis_pct", "2.0"),
            ("silence_s", "2.0"),
        ],
    ),
    (
        "[site]",
        &[
            ("id", "\"SH-0042\""),
            ("customer_id", "\"C-10017\""),
            ("customer_name", "\"East Campus Hospital\""),
            ("tier", "\"critical\""),
            ("nominal_kv", "10.0"),
            ("utc_offset_minutes", "480"),
        ],
    ),
    (
        "[site.generator]",
        &[
            ("eligible", "true"),
            ("after_minutes", "30"),
            ("connection_kva", "800"),
        ],
    ),
    (
        "[rules]",
        &[
            ("momentary_max_s", "300"),
            ("flap_window_s", "600"),
            ("deep_dip_pct", "70.0"),
            ("deep_dip_count", "3"),
            ("deep_dip_window_h", "24.0"),
            ("engineering_quiet_h", "72.0"),
            ("lost_after_s", "60"),
            ("demand_window_h", "168"),
            ("power_factor", "0.9"),
            ("generator_margin", "1.2"),
        ],
    ),
    (
        "[[modbus]]",
        &[
            ("name", "\"incomer-meters\""),
            ("port", "\"/dev/ttyUSB1\""),
            ("baud", "9600"),
            ("parity", "\"none\""),
            ("udin", "230.0"),
        ],
    ),
    (
        "[[modbus.device]]",
        &[
            ("name", "\"sdm630\""),
            ("slave_id", "1"),
            ("profile", "\"eastron-sdm630\""),
            ("poll_every_s", "5.0"),
        ],
    ),
    (
        "[[dlt645]]",
        &[
            ("name", "\"tariff\""),
            ("port", "\"/dev/ttyUSB2\""),
            ("baud", "2400"),
            ("parity", "\"even\""),
            ("udin", "230.0"),
        ],
    ),
    (
        "[[dlt645.device]]",
        &[("name", "\"tariff-1\""), ("address", "\"000000000001\"")],
    ),
    (
        "[store]",
        &[
            ("path", "\"/var/lib/kare/kare.db\""),
            ("synchronous", "\"full\""),
            ("busy_timeout_ms", "5000"),
            ("batch_window_ms", "5"),
            ("max_batch", "256"),
            ("queue", "1024"),
            ("retention_days", "730"),
            ("max_db_mb", "2048"),
        ],
    ),
    (
        "[delivery]",
        &[
            ("max_age_s", "86400"),
            ("backoff_base_s", "5"),
            ("backoff_max_s", "600"),
            ("jitter", "0.2"),
            ("concurrency", "4"),
            ("max_in_flight", "64"),
            ("shutdown_grace_s", "5"),
        ],
    ),
    (
        "[[delivery.endpoint]]",
        &[
            ("kind", "\"webhook\""),
            ("name", "\"repair-desk\""),
            ("url", "\"https://desk.example/tickets\""),
            ("secret", "\"change-me-shared-secret\""),
            ("timeout_s", "10"),
        ],
    ),
    (
        "[routes]",
        &[
            ("repair", "[\"repair-desk\"]"),
            ("generator", "[\"repair-desk\"]"),
            ("pq_notice", "[\"repair-desk\"]"),
            ("engineering", "[\"repair-desk\"]"),
            ("maintenance", "[\"repair-desk\"]"),
            ("planned", "[\"repair-desk\"]"),
        ],
    ),
    (
        "[influx]",
        &[
            ("url", "\"http://influx:8086\""),
            ("database", "\"kare\""),
            ("batch_size", "5000"),
            ("flush_interval_s", "5"),
            ("timeout_s", "10"),
            ("retry_max_s", "30"),
            ("backlog_max_mb", "256"),
            ("channel_capacity", "20000"),
            ("stats_interval_s", "60"),
            ("health_interval_s", "30"),
        ],
    ),
    ("[demo]", &[("speed", "10")]),
];

/// Values that have broken parsers and builders elsewhere, as TOML.
const EXTREMES: &[&str] = &[
    "nan",
    "+inf",
    "-inf",
    "0",
    "-0.0",
    "-1",
    "1",
    "0.1",
    "1e-300",
    "1e300",
    "-1e300",
    "3e9",
    "1e20",
    "9223372036854775807",
    "-9223372036854775808",
    "4294967295",
    "65536",
    "256",
    "248",
    "\"\"",
    "\" \"",
    "\"x\"",
    "\"nan\"",
    "\"进线-1\"",
    "\"\\u001b[2J\"",
    "\"a\\nb\"",
    "\"\\u0000\"",
    "\"/dev/ttyUSB0\"",
    "\"repair-desk\"",
    "true",
    "false",
    "[]",
    "[\"repair-desk\"]",
    "[\"nobody\"]",
    "{}",
    "1979-05-27T07:32:00Z",
];

/// A random value: an extreme one, or a random number of a random size and sign.
fn value(rng: &mut fastrand::Rng) -> String {
    match rng.u8(0..4) {
        0 => format!("{}", rng.i64(-100_000..100_000)),
        1 => format!("{:e}", (rng.f64() - 0.5) * 10f64.powi(rng.i32(-10..40))),
        _ => EXTREMES[rng.usize(0..EXTREMES.len())].to_string(),
    }
}

/// One random configuration: some sections, some of their keys, a few values replaced, now and
/// then a key dropped or an unknown one added.
fn config(rng: &mut fastrand::Rng) -> String {
    let mut text = String::new();
    let mutations = rng.usize(0..4);
    for (header, keys) in BASE {
        // Sub-tables need their parent; keep the order, drop a section now and then.
        if !header.is_empty() && rng.u8(0..10) == 0 {
            continue;
        }
        text.push_str(header);
        text.push('\n');
        for (k, v) in *keys {
            if rng.u8(0..30) == 0 {
                continue;
            }
            let v = if mutations > 0 && rng.usize(0..40) < mutations {
                value(rng)
            } else {
                v.to_string()
            };
            text.push_str(&format!("{k} = {v}\n"));
        }
        if rng.u8(0..60) == 0 {
            text.push_str(&format!("unknown_{} = {}\n", rng.u8(..), value(rng)));
        }
    }
    text
}

/// Everything an accepted configuration is turned into at start, and the rules at their first
/// reading.
fn build(c: &Config) {
    let _ = c.sources();
    let _ = c.meter_buses();
    let _ = c.warnings();
    if let Some(d) = &c.delivery {
        let _ = d.max_age();
        let _ = c.routes.resolve(&d.endpoint);
    }
    if let Some(s) = &c.store {
        let _ = (s.max_age(), s.max_db_bytes());
    }
    if let Some(i) = c.influx_for(std::path::Path::new("/tmp")) {
        let _ = (
            i.flush_interval(),
            i.timeout(),
            i.retry_max(),
            i.backlog_max_bytes(),
        );
    }
    let site = c.site.clone().unwrap_or_else(Site::demo);
    let _ = site.local_day_end(site.local_day(Utc::now()));
    let mut rules = Rules::new(site, c.rules.clone());
    let t0 = Utc.with_ymd_and_hms(2026, 11, 26, 8, 0, 0).unwrap();
    let _ = rules.handle(RuleInput::Demand { at: t0, kw: 500.0 }, t0);
    let _ = rules.handle(
        RuleInput::SupplyLost {
            source: "n".into(),
            at: t0,
            via: "half-cycle".into(),
        },
        t0,
    );
    let later = t0 + chrono::Duration::days(2);
    let _ = rules.tick(later);
    let _ = rules.handle(
        RuleInput::SupplyBack {
            source: "n".into(),
            at: later,
        },
        later,
    );
}

#[test]
fn random_configurations_never_panic_and_accepted_ones_build() {
    const SEED: u64 = 0x6b61_7265_0011;
    const CASES: usize = 4000;
    let mut rng = fastrand::Rng::with_seed(SEED);
    let mut accepted = 0;
    for i in 0..CASES {
        let text = config(&mut rng);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            match Config::parse(&text, "fuzz.toml") {
                Ok(c) => {
                    build(&c);
                    true
                }
                Err(e) => {
                    // A refusal reaches a terminal: no raw control character in it.
                    let m = e.to_string();
                    assert!(!m.chars().any(char::is_control), "{m:?}");
                    false
                }
            }
        }));
        match outcome {
            Ok(ok) => accepted += usize::from(ok),
            Err(_) => panic!("case {i} of seed {SEED:#x} panicked on:\n{text}"),
        }
    }
    // The generator must reach the builders, not only the parser's refusals.
    assert!(accepted > CASES / 20, "only {accepted} of {CASES} accepted");
}
