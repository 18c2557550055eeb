//! Where readings come from: sensor nodes over serial (pqlink), and later RS-485 meters.
pub mod pqlink;
