//! The `kare run` and `kare demo` commands: serve the API, print events, stop cleanly.
pub mod daemon;
