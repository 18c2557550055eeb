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

/// The line every RS-485 bus section describes (name, port, baud, declared voltage), checked the
/// same way whatever the protocol; the examples go into the messages. Ranges: baud 300 to
/// 115 200; udin more than 0, at most 1 000 000 V.
pub(crate) fn check_line(
    name: &str,
    port: &str,
    baud: u32,
    udin: Option<f32>,
    example_port: &str,
    example_baud: &str,
) -> Result<(), crate::config::ConfigProblem> {
    use crate::config::{check, ConfigProblem};
    check::name("name", name)?;
    if port.trim().is_empty() {
        return Err(ConfigProblem::new(
            "port",
            format!("must be a serial port path, e.g. `port = \"{example_port}\"`"),
        ));
    }
    check::text("port", port, false)?;
    check::within(
        "baud",
        f64::from(baud),
        300.0,
        115_200.0,
        "baud",
        example_baud,
    )?;
    if let Some(u) = udin {
        check::above(
            "udin",
            f64::from(u),
            0.0,
            1e6,
            "volts phase-neutral",
            "230.0",
        )?;
    }
    Ok(())
}
