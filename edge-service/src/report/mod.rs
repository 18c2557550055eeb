//! Reports: the key-account service report (design.md, contract "kare report") computed from
//! the store. This folder reads; it never writes the store and never renders HTML (`web/` does,
//! for the page and for `kare report --format html`).
//!
//! - [`model`]: the report as data (the JSON contract).

pub mod model;

pub use model::*;
