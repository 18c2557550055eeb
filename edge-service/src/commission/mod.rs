//! `kare commission`: what a field crew runs at a new site; here, the discovery of the meters
//! on its RS-485 buses and Modbus TCP gateways.

pub mod discover;
