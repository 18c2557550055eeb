//! RS-485 meters: Modbus RTU and DL/T 645-2007 buses, and the reading vocabulary both speak.
pub mod dlt645;
pub mod health;
pub mod modbus;
pub mod readings;
