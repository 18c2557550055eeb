//! The sensor simulator: the node loop on the host, fed by synthetic waveforms from a scenario.
