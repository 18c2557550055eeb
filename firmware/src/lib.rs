//! kare's measurement core, shared by the sensor node and the edge service.
#![no_std]
#![deny(missing_docs)]

pub mod ads131m04;
pub mod classify;
pub mod detector;
pub mod monitor;
pub mod node;
pub mod pqlink;
pub mod profile;
pub mod urms;
