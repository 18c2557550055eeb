//! The long-running commands: `kare run` (real sensor nodes and meters) and `kare demo` (a
//! simulated node and meters, feature `sim`): the service, the JSON API, a console line per event
//! and per ticket change, a clean stop on Ctrl-C and SIGTERM. And `kare report` (`report`): the
//! key-account service report from a store.
pub mod console;
#[cfg(feature = "sim")]
pub mod demo;
pub mod report;
pub mod run;
