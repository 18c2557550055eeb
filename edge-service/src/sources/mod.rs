//! Where readings come from: sensor nodes over serial (pqlink), the Pi's own ADC (feature `rpi`),
//! RS-485 meters (Modbus RTU, DL/T 645) and the UPS inputs.
pub mod dlt645;
#[cfg(feature = "rpi")]
pub mod local_adc;
pub mod modbus;
pub mod pqlink;
pub mod ups;
