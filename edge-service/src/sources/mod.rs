//! Where readings come from: sensor nodes over serial (pqlink), and later RS-485 meters.
#[cfg(feature = "rpi")]
pub mod local_adc;
pub mod pqlink;
pub mod ups;
