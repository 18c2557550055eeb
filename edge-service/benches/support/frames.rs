//! pqlink frames for the latency benchmarks: a 3-phase 50 Hz node at 6400 samples/s, as the
//! bytes a node writes on its serial line.

use kare_firmware::pqlink::{
    encode, ChannelFlags, ChannelInfo, ChannelReading, FirmwareVersion, Frame, HalfCycle, Hello,
    MAX_WIRE_LEN, PROTOCOL_VERSION,
};
use std::time::Duration;

/// Volts per ADC unit the frames declare.
pub const VPU: f32 = 1e-4;

fn wire(frame: &Frame) -> Vec<u8> {
    let mut buf = [0u8; MAX_WIRE_LEN];
    let n = encode(frame, &mut buf).unwrap();
    buf[..n].to_vec()
}

/// The node's Hello: channels VA, VB, VC.
pub fn hello() -> Vec<u8> {
    let mut channels = heapless::Vec::new();
    for name in ["VA", "VB", "VC"] {
        let _ = channels.push(ChannelInfo {
            name: heapless::String::try_from(name).unwrap(),
            volts_per_unit: VPU,
        });
    }
    wire(&Frame::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        firmware: FirmwareVersion::default(),
        node_id: 1,
        channels,
        nominal_hz: 50,
        sample_rate_hz: 6400,
    }))
}

/// Half cycle `seq` with these Urms(1/2) values, volts per phase (64 samples per half cycle).
pub fn half(seq: u32, volts: [f32; 3]) -> Vec<u8> {
    let mut channels = heapless::Vec::new();
    for v in volts {
        let _ = channels.push(ChannelReading {
            urms: (v / VPU) as u32,
            flags: ChannelFlags::NONE,
        });
    }
    wire(&Frame::HalfCycle(HalfCycle {
        seq,
        window_end: (seq as u64 + 2) * 64 * 256,
        window_len: 128 * 256,
        freq_mhz: 50_000,
        channels,
    }))
}

/// The `p` quantile (0–1) of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}
