//! Test-only fault switches: `KARE_FAULT=<point>[,<point>…]` makes the named task panic, so that
//! a test can prove a dying task ends the whole process (the binary's panic hook, exit status 70)
//! instead of leaving a zombie that answers `/api/v1/status` while nothing is watched.
//!
//! Honoured only in debug builds (what `cargo test` runs) or with the cargo feature
//! `fault-injection`; a release build ignores the variable, so an appliance cannot be made to
//! fail by its environment.
//!
//! Points: `panic-rules` (the consumer, where the rules run, at its first source message),
//! `panic-sim` (`kare demo`'s simulated-node thread, a plain thread, as it starts);
//! `stall-consumer=N` (the consumer stops, without panicking, N seconds after it starts: the
//! watchdog's pings must stop, `crate::watchdog`); `stall-store=N` (the store's writer thread
//! stops N seconds after it starts, likewise).

/// Whether the fault switch names `point` (always false in a release build without the
/// `fault-injection` feature). Read once where the task starts, not per message.
pub fn armed(point: &str) -> bool {
    #[cfg(any(debug_assertions, feature = "fault-injection"))]
    {
        std::env::var("KARE_FAULT").is_ok_and(|v| v.split(',').any(|p| p.trim() == point))
    }
    #[cfg(not(any(debug_assertions, feature = "fault-injection")))]
    {
        let _ = point;
        false
    }
}

/// Panics if the switch names `point`.
pub fn trip(point: &str) {
    if armed(point) {
        panic!("KARE_FAULT={point}: injected fault (test-only switch)");
    }
}

/// The value of a `point=VALUE` entry of the fault switch (`None` in a release build without the
/// `fault-injection` feature, or when the switch does not name `point`).
pub fn value(point: &str) -> Option<String> {
    #[cfg(any(debug_assertions, feature = "fault-injection"))]
    {
        let v = std::env::var("KARE_FAULT").ok()?;
        v.split(',').find_map(|p| {
            let (name, value) = p.trim().split_once('=')?;
            (name.trim() == point).then(|| value.trim().to_string())
        })
    }
    #[cfg(not(any(debug_assertions, feature = "fault-injection")))]
    {
        let _ = point;
        None
    }
}
