//! The long-running commands: `kare run` (real sensor nodes and meters) and `kare demo` (a
//! simulated node and meters, feature `sim`): the service, the JSON API, a console line per event
//! and per ticket change, a clean stop on Ctrl-C and SIGTERM. And `kare report` (`report`): the
//! key-account service report from a store.
pub mod access;
pub mod check_config;
pub mod commission;
pub mod console;
#[cfg(feature = "sim")]
pub mod demo;
pub mod report;
pub mod run;

/// `println!` that never panics. The console is for a person watching; one that went away (a
/// closed pipe: `kare demo | head`, a test that stopped reading, a detached terminal) must not
/// stop the service that is watching a hospital's supply. Its lines are lost; the log, the store
/// and the desk are not.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}
pub(crate) use outln;
