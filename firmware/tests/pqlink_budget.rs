//! The pqlink link budget, measured on real encodings (the numbers PROTOCOL.md quotes).
//!
//! Link: 115 200 baud 8N1 = 11 520 bytes/s. Three phases send one `HalfCycle` frame per half
//! cycle: 100 frames/s at 50 Hz, 120 frames/s at 60 Hz. Those must use well under half the link,
//! leaving the rest for captures, heartbeats (each followed by a phases frame) and hellos.

use heapless::{String, Vec};
use kare_firmware::pqlink::{
    encode, link_use_permille, wire_len, Capture, ChannelFlags, ChannelInfo, ChannelReading,
    FirmwareVersion, Frame, HalfCycle, Heartbeat, Hello, LinkBudget, NodeStatus, Phases,
    CAPTURE_MAX_SAMPLES, LINK_BYTES_PER_SECOND, MAX_CHANNELS, MAX_WIRE_LEN, PROTOCOL_VERSION,
    UART_BAUD,
};

/// Half of the link, in bytes per second.
const HALF_LINK: u32 = LINK_BYTES_PER_SECOND / 2;

fn half_cycle(
    channels: usize,
    seq: u32,
    end: u64,
    len: u32,
    freq: u32,
    urms: u32,
    flags: u8,
) -> Frame {
    let mut readings = Vec::new();
    for _ in 0..channels {
        readings
            .push(ChannelReading {
                urms,
                flags: ChannelFlags(flags),
            })
            .unwrap();
    }
    Frame::HalfCycle(HalfCycle {
        seq,
        window_end: end,
        window_len: len,
        freq_mhz: freq,
        channels: readings,
    })
}

fn size(frame: &Frame) -> u32 {
    wire_len(frame).unwrap() as u32
}

/// A typical 3-phase frame: one year after boot at 6400 samples/s (window end needs 7 varint
/// bytes), a 50 Hz window of 128 samples, Urms of 230 V in raw 24-bit ADC codes (≈ 3.2 × 10⁶,
/// 4 varint bytes), sequence number large (fixed 4 bytes anyway), no flags.
fn typical_3ph() -> Frame {
    let one_year = 365 * 86_400 * 6400 * 256u64;
    half_cycle(3, 3_000_000_000, one_year, 128 * 256, 50_012, 3_215_000, 0)
}

/// The largest 3-phase frame a node can produce: window end below 2^56 (2 200 years at
/// 4 kSPS), window below 2^21/256 = 8192 samples, frequency below 2097 Hz, Urms at most 2^28
/// (any 24-bit code, with room), every flag set.
fn bound_3ph() -> Frame {
    half_cycle(
        3,
        u32::MAX,
        (1 << 56) - 1,
        (1 << 21) - 1,
        (1 << 21) - 1,
        (1 << 28) - 1,
        0xFF,
    )
}

/// Every field at its type's maximum: not reachable, but still a legal frame.
fn type_max(channels: usize) -> Frame {
    half_cycle(
        channels,
        u32::MAX,
        u64::MAX,
        u32::MAX,
        u32::MAX,
        u32::MAX,
        0xFF,
    )
}

fn heartbeat_typical() -> Frame {
    Frame::Heartbeat(Heartbeat {
        seq: 86_400,
        uptime_ms: 86_400_000,
        frames_sent: 10_454_400,
        half_cycles_dropped: 0,
        captures_dropped: 2,
        adc_errors: 0,
        status: NodeStatus::OK,
    })
}

/// A balanced ABC supply: angles 0, +120°, −120° (1 + 3 + 3 varint bytes).
fn phases_typical() -> Frame {
    Frame::Phases(Phases::from_angles(
        3_000_000_000,
        &[Some(0), Some(12_000), Some(-12_000)],
    ))
}

/// The largest phases frame: four channels, none with a fundamental (`i16::MIN`, 3 bytes each).
fn phases_max() -> Frame {
    Frame::Phases(Phases::from_angles(u32::MAX, &[None; MAX_CHANNELS]))
}

fn hello_max() -> Frame {
    let mut channels = Vec::new();
    for n in ["VA-phase", "VB-phase", "VC-phase", "VN-neutr"] {
        channels
            .push(ChannelInfo {
                name: String::try_from(n).unwrap(),
                volts_per_unit: 7.152_557e-5,
            })
            .unwrap();
    }
    Frame::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        firmware: FirmwareVersion {
            major: 255,
            minor: 255,
            patch: 255,
        },
        node_id: u32::MAX,
        channels,
        nominal_hz: 60,
        sample_rate_hz: u32::MAX,
    })
}

fn capture_with(sample: impl Fn(usize) -> i32, first_sample: u64, id: u32) -> Frame {
    let mut samples = Vec::new();
    for k in 0..CAPTURE_MAX_SAMPLES {
        samples.push(sample(k)).unwrap();
    }
    Frame::Capture(Capture {
        capture_id: id,
        part: 100,
        part_count: 334,
        first_sample,
        channel_count: 3,
        samples,
    })
}

/// A 3-phase capture frame of full-swing 24-bit codes (4 varint bytes each).
fn capture_typical() -> Frame {
    capture_with(
        |k| if k % 2 == 0 { 3_000_000 } else { -3_000_000 },
        1_000_000_000,
        17,
    )
}

#[test]
fn half_cycle_wire_sizes() {
    // header 1 + kind 1 + seq 4 + end 7 + len 3 + freq 3 + count 1 + 3 × (urms 4 + flags 1)
    // + CRC 4 = 39 bytes; COBS +1; delimiter +1.
    assert_eq!(size(&typical_3ph()), 41);
    // end 8 instead of 7.
    assert_eq!(size(&bound_3ph()), 42);
    // A fourth channel adds urms 4 + flags 1; still under half the link at 60 Hz.
    let Frame::HalfCycle(mut four) = bound_3ph() else {
        unreachable!()
    };
    four.channels.push(four.channels[0]).unwrap();
    let four = Frame::HalfCycle(four);
    assert_eq!(size(&four), 47);
    assert!(size(&four) * 120 < HALF_LINK);
    // end 10, len 5, freq 5, urms 5 each: 49 raw.
    assert_eq!(size(&type_max(3)), 51);
    assert_eq!(size(&type_max(MAX_CHANNELS)), 57);
}

#[test]
fn three_phases_use_well_under_half_the_link() {
    assert_eq!(LINK_BYTES_PER_SECOND, 11_520);
    for (hz, frames_per_s) in [(50, 100), (60, 120)] {
        for (what, frame) in [("typical", typical_3ph()), ("bound", bound_3ph())] {
            let bytes = size(&frame) * frames_per_s;
            let permille = link_use_permille(size(&frame), frames_per_s, UART_BAUD);
            eprintln!(
                "{hz} Hz {what}: {} B × {frames_per_s}/s = {bytes} B/s = {}.{}% of the link",
                size(&frame),
                permille / 10,
                permille % 10
            );
            assert!(bytes < HALF_LINK, "{hz} Hz {what}: {bytes} B/s");
            // "Well under": at least 6 % of the link below half even for the largest frame.
            assert!(permille <= 440, "{hz} Hz {what}: {permille}‰");
        }
    }
    // The exact figures PROTOCOL.md quotes.
    assert_eq!(size(&typical_3ph()) * 100, 4100); // 35.6 %
    assert_eq!(size(&typical_3ph()) * 120, 4920); // 42.7 %
    assert_eq!(size(&bound_3ph()) * 100, 4200); // 36.5 %
    assert_eq!(size(&bound_3ph()) * 120, 5040); // 43.8 %
    assert_eq!(link_use_permille(41, 120, UART_BAUD), 428);
    assert_eq!(link_use_permille(42, 120, UART_BAUD), 438);
}

#[test]
fn phases_wire_sizes() {
    // header 1 + kind 1 + seq 4 + count 1 + angles (0: 1 byte, ±12 000: 3 bytes each) + CRC 4
    // = 18 bytes; COBS +1; delimiter +1.
    assert_eq!(size(&phases_typical()), 20);
    // Four channels of i16::MIN (zigzag 65 535: 3 bytes each): 23 raw.
    assert_eq!(size(&phases_max()), 25);
    // Once a second: a few bytes per second, under 0.2 % of the link.
    assert_eq!(link_use_permille(size(&phases_max()), 1, UART_BAUD), 3);
    assert_eq!(link_use_permille(size(&phases_typical()), 1, UART_BAUD), 2);
}

#[test]
fn room_left_for_captures() {
    let hb = size(&heartbeat_typical());
    let ph = size(&phases_typical());
    let hello = size(&hello_max());
    let cap = size(&capture_typical());
    assert_eq!(hb, 24);
    assert_eq!(ph, 20);
    assert_eq!(hello, 76);
    assert_eq!(cap, 163);
    // At 60 Hz with the largest half-cycle frames, 1 heartbeat and 1 phases frame per second and
    // a hello every 10 s, in 90 % of the link:
    let usable = LINK_BYTES_PER_SECOND * 9 / 10;
    let fixed = size(&bound_3ph()) * 120 + hb + ph + hello.div_ceil(10);
    let spare = usable - fixed;
    assert_eq!(spare, 5276);
    let capture_frames = spare / cap;
    let samples_per_s = capture_frames * CAPTURE_MAX_SAMPLES as u32;
    eprintln!(
        "spare {spare} B/s → {capture_frames} capture frames/s → {samples_per_s} samples/s \
         ({} 3-phase instants/s)",
        samples_per_s / 3
    );
    assert_eq!(capture_frames, 32);
    // One second of 3-phase waveform at 6400 samples/s drains in about 17 s.
    let seconds_per_captured_second = (6400 * 3) as f32 / samples_per_s as f32;
    assert!(seconds_per_captured_second < 17.0);
}

#[test]
fn every_kind_fits_the_maximum_wire_length() {
    let mut min_samples = Vec::<i32, CAPTURE_MAX_SAMPLES>::new();
    for _ in 0..CAPTURE_MAX_SAMPLES {
        min_samples.push(i32::MIN).unwrap();
    }
    let capture_max = Frame::Capture(Capture {
        capture_id: u32::MAX,
        part: u16::MAX,
        part_count: u16::MAX,
        first_sample: u64::MAX,
        channel_count: u8::MAX,
        samples: min_samples,
    });
    let heartbeat_max = Frame::Heartbeat(Heartbeat {
        seq: u32::MAX,
        uptime_ms: u64::MAX,
        frames_sent: u32::MAX,
        half_cycles_dropped: u32::MAX,
        captures_dropped: u32::MAX,
        adc_errors: u32::MAX,
        status: NodeStatus(u16::MAX),
    });
    let sizes = [
        ("hello", size(&hello_max())),
        ("half-cycle", size(&type_max(MAX_CHANNELS))),
        ("capture", size(&capture_max)),
        ("heartbeat", size(&heartbeat_max)),
        ("phases", size(&phases_max())),
    ];
    eprintln!("largest wire frames: {sizes:?}");
    assert_eq!(size(&capture_max), 211);
    for (what, n) in sizes {
        assert!(n as usize <= MAX_WIRE_LEN, "{what}: {n}");
    }
    let mut buf = [0u8; MAX_WIRE_LEN];
    assert!(encode(&capture_max, &mut buf).is_ok());
}

/// Simulate 10 s of a 60 Hz node: half-cycle frames every 8333 µs, a heartbeat and a phases
/// frame every second, an endless backlog of capture frames, and a UART that drains 11 520 bytes/s. Captures go out
/// only when the transmit queue is empty and the budget grants them.
#[test]
fn scheduler_keeps_half_cycles_first_and_fills_the_spare_budget() {
    const TICK_US: u32 = 10;
    const US_PER_BYTE: f64 = 1e6 / LINK_BYTES_PER_SECOND as f64;
    let hc = size(&bound_3ph()) as usize;
    let hb = size(&heartbeat_typical()) as usize;
    let ph = size(&phases_typical()) as usize;
    let cap = size(&capture_typical()) as usize;

    let mut budget = LinkBudget::default();
    // Transmit queue: (bytes left, is half-cycle, time queued in µs).
    let mut queue: std::collections::VecDeque<(f64, bool, u64)> = Default::default();
    let (mut hc_sent, mut cap_sent, mut max_hc_latency_us) = (0usize, 0usize, 0u64);
    let mut total_bytes = 0usize;
    let mut next_hc = 0u64;
    let mut next_hb = 0u64;
    let end = 10_000_000u64;
    let mut now = 0u64;
    while now < end {
        if now >= next_hc {
            queue.push_back((hc as f64, true, now));
            budget.charge(hc);
            total_bytes += hc;
            next_hc += 1_000_000 / 120;
        }
        if now >= next_hb {
            queue.push_back((hb as f64, false, now));
            budget.charge(hb);
            total_bytes += hb;
            queue.push_back((ph as f64, false, now));
            budget.charge(ph);
            total_bytes += ph;
            next_hb += 1_000_000;
        }
        if queue.is_empty() && budget.try_capture(cap) {
            queue.push_back((cap as f64, false, now));
            total_bytes += cap;
            cap_sent += 1;
        }
        // The UART drains TICK_US worth of bytes.
        let mut air = f64::from(TICK_US) / US_PER_BYTE;
        while air > 0.0 {
            let Some(front) = queue.front_mut() else {
                break;
            };
            let take = front.0.min(air);
            front.0 -= take;
            air -= take;
            if front.0 <= 1e-9 {
                let (_, is_hc, queued) = queue.pop_front().unwrap();
                if is_hc {
                    hc_sent += 1;
                    max_hc_latency_us = max_hc_latency_us.max(now + u64::from(TICK_US) - queued);
                }
            }
        }
        budget.elapse(TICK_US);
        now += u64::from(TICK_US);
    }
    eprintln!(
        "10 s at 60 Hz: {hc_sent} half-cycle frames, {cap_sent} capture frames, {total_bytes} B \
         queued, worst half-cycle latency {max_hc_latency_us} µs"
    );
    assert!(hc_sent >= 1199, "{hc_sent}");
    // Never more than the link can carry, and the budget's 90 % is respected.
    assert!(total_bytes <= (LINK_BYTES_PER_SECOND as usize * 10) * 9 / 10 + MAX_WIRE_LEN);
    // Captures got most of the spare: (10 368 − 5040 − 24 − 20) B/s × 10 s / 163 B ≈ 324 frames.
    assert!(cap_sent >= 300, "{cap_sent}");
    // A half-cycle frame waits at most for one capture frame already on the wire, a heartbeat
    // and its phases frame, plus itself.
    let bound_us = ((cap + hc + hb + ph) as f64 * US_PER_BYTE) as u64 + 2 * u64::from(TICK_US);
    assert!(
        max_hc_latency_us <= bound_us,
        "{max_hc_latency_us} > {bound_us}"
    );
}
