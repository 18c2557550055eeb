//! pqlink round trips: every frame kind, edge values, every way of feeding the decoder.

use heapless::{String, Vec};
use kare_firmware::pqlink::{
    decode, encode, Capture, ChannelFlags, ChannelInfo, ChannelReading, DecodeError, Decoder,
    FirmwareVersion, Frame, FrameKind, HalfCycle, Heartbeat, Hello, NodeStatus,
    CAPTURE_MAX_SAMPLES, MAX_WIRE_LEN, PROTOCOL_VERSION,
};

fn name(s: &str) -> String<8> {
    String::try_from(s).unwrap()
}

fn hello() -> Frame {
    let mut channels = Vec::new();
    for (n, v) in [
        ("VA", 7.152e-5),
        ("VB", 7.153e-5),
        ("VC", 7.151e-5),
        ("VN", 1.0e-3),
    ] {
        channels
            .push(ChannelInfo {
                name: name(n),
                volts_per_unit: v,
            })
            .unwrap();
    }
    Frame::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        firmware: FirmwareVersion {
            major: 1,
            minor: 4,
            patch: 2,
        },
        node_id: 0xC0FF_EE01,
        channels,
        nominal_hz: 50,
        sample_rate_hz: 6400,
    })
}

fn half_cycle(seq: u32) -> Frame {
    let mut channels = Vec::new();
    for (urms, flags) in [
        (3_215_000, ChannelFlags::NONE),
        (3_190_400, ChannelFlags::CLIPPING),
        (12, ChannelFlags::UNLOCKED.with(ChannelFlags::GAP)),
    ] {
        channels.push(ChannelReading { urms, flags }).unwrap();
    }
    Frame::HalfCycle(HalfCycle {
        seq,
        window_end: 365 * 86_400 * 6400 * 256 + 77,
        window_len: 128 * 256 + 13,
        freq_mhz: 49_987,
        channels,
    })
}

fn capture(part: u16) -> Frame {
    let mut samples = Vec::new();
    for k in 0..CAPTURE_MAX_SAMPLES as i32 {
        samples.push((k - 18) * 465_000 + k).unwrap();
    }
    Frame::Capture(Capture {
        capture_id: 17,
        part,
        part_count: 334,
        first_sample: 1_234_567_890,
        channel_count: 3,
        samples,
    })
}

fn heartbeat(seq: u32) -> Frame {
    Frame::Heartbeat(Heartbeat {
        seq,
        uptime_ms: 86_400_000,
        frames_sent: 10_368_000,
        half_cycles_dropped: 3,
        captures_dropped: 1,
        adc_errors: 0,
        status: NodeStatus::UNLOCKED.with(NodeStatus::CAPTURE_BACKLOG),
    })
}

fn all_frames() -> [Frame; 4] {
    [hello(), half_cycle(41), capture(5), heartbeat(9)]
}

fn roundtrip(frame: &Frame) -> usize {
    let mut wire = [0u8; MAX_WIRE_LEN];
    let n = encode(frame, &mut wire).unwrap();
    assert!(n <= MAX_WIRE_LEN);
    assert_eq!(wire[n - 1], 0, "ends with the delimiter");
    assert!(!wire[..n - 1].contains(&0), "no 0x00 inside a frame");
    assert_eq!(
        &decode(&wire[..n]).unwrap(),
        frame,
        "decode() with delimiter"
    );
    assert_eq!(&decode(&wire[..n - 1]).unwrap(), frame, "decode() without");
    let mut d = Decoder::new();
    let got: std::vec::Vec<_> = d.feed(&wire[..n]).collect();
    assert_eq!(got, vec![Ok(frame.clone())]);
    n
}

#[test]
fn every_kind_round_trips() {
    for frame in all_frames() {
        roundtrip(&frame);
    }
}

#[test]
fn kinds_are_reported() {
    let kinds: std::vec::Vec<_> = all_frames().iter().map(Frame::kind).collect();
    assert_eq!(
        kinds,
        [
            FrameKind::Hello,
            FrameKind::HalfCycle,
            FrameKind::Capture,
            FrameKind::Heartbeat
        ]
    );
}

#[test]
fn edge_values_round_trip() {
    // Empty collections and zeros.
    roundtrip(&Frame::Hello(Hello {
        protocol_version: 0,
        firmware: FirmwareVersion::default(),
        node_id: 0,
        channels: Vec::new(),
        nominal_hz: 0,
        sample_rate_hz: 0,
    }));
    roundtrip(&Frame::HalfCycle(HalfCycle::default()));
    roundtrip(&Frame::Capture(Capture::default()));
    roundtrip(&Frame::Heartbeat(Heartbeat::default()));

    // Maxima everywhere.
    let mut channels = Vec::new();
    for n in ["ÄÖÜ-1", "VAB", "neutral!", "\u{20ac}\u{20ac}"] {
        channels
            .push(ChannelInfo {
                name: name(n),
                volts_per_unit: f32::MAX,
            })
            .unwrap();
    }
    roundtrip(&Frame::Hello(Hello {
        protocol_version: u8::MAX,
        firmware: FirmwareVersion {
            major: 255,
            minor: 255,
            patch: 255,
        },
        node_id: u32::MAX,
        channels,
        nominal_hz: 60,
        sample_rate_hz: u32::MAX,
    }));
    let mut readings = Vec::new();
    for _ in 0..4 {
        readings
            .push(ChannelReading {
                urms: u32::MAX,
                flags: ChannelFlags(0xFF),
            })
            .unwrap();
    }
    roundtrip(&Frame::HalfCycle(HalfCycle {
        seq: u32::MAX,
        window_end: u64::MAX,
        window_len: u32::MAX,
        freq_mhz: u32::MAX,
        channels: readings,
    }));
    let mut samples = Vec::new();
    for k in 0..CAPTURE_MAX_SAMPLES {
        samples
            .push(if k % 2 == 0 { i32::MIN } else { i32::MAX })
            .unwrap();
    }
    roundtrip(&Frame::Capture(Capture {
        capture_id: u32::MAX,
        part: u16::MAX,
        part_count: u16::MAX,
        first_sample: u64::MAX,
        channel_count: u8::MAX,
        samples,
    }));
    roundtrip(&Frame::Heartbeat(Heartbeat {
        seq: u32::MAX,
        uptime_ms: u64::MAX,
        frames_sent: u32::MAX,
        half_cycles_dropped: u32::MAX,
        captures_dropped: u32::MAX,
        adc_errors: u32::MAX,
        status: NodeStatus(u16::MAX),
    }));
}

#[test]
fn stream_in_any_chunking_decodes_in_order() {
    let frames: std::vec::Vec<Frame> = (0..40u32)
        .map(|i| match i % 4 {
            0 => hello(),
            1 => half_cycle(i),
            2 => capture(i as u16),
            _ => heartbeat(i),
        })
        .collect();
    let mut stream = std::vec::Vec::new();
    let mut wire = [0u8; MAX_WIRE_LEN];
    for f in &frames {
        let n = encode(f, &mut wire).unwrap();
        stream.extend_from_slice(&wire[..n]);
    }
    for chunk in [1, 2, 3, 7, 64, 255, 256, 1000, stream.len()] {
        let mut d = Decoder::new();
        let mut got = std::vec::Vec::new();
        for piece in stream.chunks(chunk) {
            got.extend(d.feed(piece).map(Result::unwrap));
        }
        assert_eq!(got, frames, "chunk size {chunk}");
        assert_eq!(d.pending(), 0);
        assert_eq!(d.stats().frames, 40);
        assert_eq!(d.stats().resyncs, 0);
    }
    // Byte by byte through push().
    let mut d = Decoder::new();
    let got: std::vec::Vec<Frame> = stream
        .iter()
        .filter_map(|&b| d.push(b))
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, frames);
}

#[test]
fn feed_iterator_leaves_unread_bytes() {
    let mut stream = std::vec::Vec::new();
    let mut wire = [0u8; MAX_WIRE_LEN];
    for f in all_frames() {
        let n = encode(&f, &mut wire).unwrap();
        stream.extend_from_slice(&wire[..n]);
    }
    let mut d = Decoder::new();
    let rest = {
        let mut feed = d.feed(&stream);
        assert_eq!(feed.next(), Some(Ok(hello())));
        feed.remaining()
    };
    let mut wire0 = [0u8; MAX_WIRE_LEN];
    let first = encode(&hello(), &mut wire0).unwrap();
    assert_eq!(rest.len(), stream.len() - first);
    let got: std::vec::Vec<_> = d.feed(rest).map(Result::unwrap).collect();
    assert_eq!(got, all_frames()[1..]);
}

#[test]
fn leading_delimiter_flushes_a_partial_frame() {
    let mut wire = [0u8; MAX_WIRE_LEN];
    let n = encode(&heartbeat(1), &mut wire).unwrap();
    let mut d = Decoder::new();
    // A receiver that started mid-frame holds garbage; the node's boot-time 0x00 flushes it.
    assert!(d.feed(&wire[5..n - 1]).next().is_none());
    let mut stream = vec![0u8];
    stream.extend_from_slice(&wire[..n]);
    let got: std::vec::Vec<_> = d.feed(&stream).collect();
    assert_eq!(got.len(), 2);
    assert!(got[0].is_err());
    assert_eq!(got[1], Ok(heartbeat(1)));
    assert_eq!(d.stats().resyncs, 1);
}

#[test]
fn decode_rejects_a_delimiter_inside() {
    let mut wire = [0u8; MAX_WIRE_LEN];
    let n = encode(&heartbeat(1), &mut wire).unwrap();
    let mut two = wire[..n].to_vec();
    two.extend_from_slice(&wire[..n]);
    assert_eq!(decode(&two), Err(DecodeError::Cobs));
}

#[test]
fn half_cycle_window_times_are_exact() {
    let Frame::HalfCycle(h) = half_cycle(1) else {
        unreachable!()
    };
    assert_eq!(h.window_start(), h.window_end - u64::from(h.window_len));
    let start = h.start_seconds(6400);
    let end = h.end_seconds(6400);
    let expected_len = (128.0 + 13.0 / 256.0) / 6400.0;
    assert!((end - start - expected_len).abs() < 1e-9, "{}", end - start);
    assert!((end - 365.0 * 86_400.0 - 77.0 / 256.0 / 6400.0).abs() < 1e-6);
}

#[test]
fn flags_helpers() {
    let f = ChannelFlags::CLIPPING.with(ChannelFlags::ADC_ERROR);
    assert!(f.contains(ChannelFlags::CLIPPING));
    assert!(!f.contains(ChannelFlags::UNLOCKED));
    assert!(!f.is_empty());
    assert!(ChannelFlags::NONE.is_empty());
    let s = NodeStatus::OK.with(NodeStatus::ADC_FAULT);
    assert!(s.contains(NodeStatus::ADC_FAULT));
    assert!(!s.contains(NodeStatus::TX_OVERRUN));
}

#[test]
fn capture_instants() {
    let Frame::Capture(c) = capture(0) else {
        unreachable!()
    };
    assert_eq!(c.instants(), CAPTURE_MAX_SAMPLES / 3);
    assert_eq!(Capture::default().instants(), 0);
}
