//! RS-485 meters: Modbus RTU and DL/T 645-2007 buses, and the reading vocabulary both speak.
pub mod dlt645;
pub mod health;
pub mod modbus;
pub mod readings;

/// Serial parity from its name in a configuration file (`none`/`n`, `even`/`e`, `odd`/`o`).
pub fn parity(name: &str) -> Option<tokio_serial::Parity> {
    match name.to_ascii_lowercase().as_str() {
        "none" | "n" => Some(tokio_serial::Parity::None),
        "even" | "e" => Some(tokio_serial::Parity::Even),
        "odd" | "o" => Some(tokio_serial::Parity::Odd),
        _ => None,
    }
}
