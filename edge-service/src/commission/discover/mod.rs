//! Meter discovery for `kare commission --scan`: Modbus RTU and TCP scans identified by the
//! meter profiles, DL/T 645 meters by the broadcast address read.
