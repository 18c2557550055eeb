//! Where readings come from: sensor nodes over serial (pqlink), the Pi's own ADC (feature `rpi`),
//! RS-485 meters (Modbus RTU, DL/T 645) and the UPS inputs. A source never awaits the service.
pub mod clock;
pub mod link;
#[cfg(feature = "rpi")]
pub mod local_adc;
pub mod meters;
pub mod outbox;
pub mod pqlink;
pub mod serial;
pub mod ups;

pub use clock::SourceClock;
