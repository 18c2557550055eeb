//! Where readings come from: sensor nodes over serial (pqlink), and later RS-485 meters.
pub mod dlt645;
#[cfg(feature = "rpi")]
pub mod local_adc;
pub mod modbus;
pub mod pqlink;
pub mod ups;
