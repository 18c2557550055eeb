//! Fuzz-style property tests of the pqlink decoder, driven by a small deterministic PRNG so that
//! every run checks the same cases (a failure names its seed and case).
//!
//! Properties:
//! * random bytes never panic, and every result is a typed error;
//! * truncated frames, flipped bits, inserted and deleted bytes give typed errors, and the decoder
//!   resynchronises so that the next intact frame after the damage is decoded;
//! * in a stream of 10 000 frames with random corruption, every frame whose bytes (and the
//!   delimiter before them) are intact is recovered, in order, and nothing damaged is accepted.

use std::collections::{HashMap, HashSet};

use heapless::{String, Vec};
use kare_firmware::pqlink::{
    encode, Capture, ChannelFlags, ChannelInfo, ChannelReading, DecodeError, Decoder,
    FirmwareVersion, Frame, HalfCycle, Heartbeat, Hello, NodeStatus, Phases, CAPTURE_MAX_SAMPLES,
    DECODER_BUFFER_LEN, MAX_CHANNELS, MAX_WIRE_LEN, PROTOCOL_VERSION,
};

/// SplitMix64: tiny, deterministic, good enough to drive tests.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
    /// A value with a random number of significant bits, so varints of every length occur.
    fn bits_u64(&mut self) -> u64 {
        let bits = self.below(65) as u32;
        if bits == 0 {
            0
        } else {
            self.next_u64() >> (64 - bits)
        }
    }
    fn bits_u32(&mut self) -> u32 {
        let bits = self.below(33) as u32;
        if bits == 0 {
            0
        } else {
            (self.next_u64() as u32) >> (32 - bits)
        }
    }
}

fn random_frame(rng: &mut Rng, seq: u32) -> Frame {
    match rng.below(11) {
        0 => {
            let mut channels = Vec::new();
            for _ in 0..rng.below(MAX_CHANNELS + 1) {
                let mut name: String<8> = String::new();
                for _ in 0..rng.below(9) {
                    name.push((b'A' + rng.below(26) as u8) as char).unwrap();
                }
                channels
                    .push(ChannelInfo {
                        name,
                        volts_per_unit: (rng.below(1_000_000) as f32) * 1e-7,
                    })
                    .unwrap();
            }
            Frame::Hello(Hello {
                protocol_version: PROTOCOL_VERSION,
                firmware: FirmwareVersion {
                    major: rng.byte(),
                    minor: rng.byte(),
                    patch: rng.byte(),
                },
                node_id: rng.bits_u32(),
                channels,
                nominal_hz: if rng.chance(50) { 50 } else { 60 },
                sample_rate_hz: rng.bits_u32(),
            })
        }
        1..=6 => {
            let mut channels = Vec::new();
            for _ in 0..rng.below(MAX_CHANNELS + 1) {
                channels
                    .push(ChannelReading {
                        urms: rng.bits_u32(),
                        flags: ChannelFlags(rng.byte()),
                    })
                    .unwrap();
            }
            Frame::HalfCycle(HalfCycle {
                seq,
                window_end: rng.bits_u64(),
                window_len: rng.bits_u32(),
                freq_mhz: rng.bits_u32(),
                channels,
            })
        }
        7 | 8 => {
            let mut samples = Vec::new();
            for _ in 0..rng.below(CAPTURE_MAX_SAMPLES + 1) {
                samples.push(rng.bits_u32() as i32).unwrap();
            }
            Frame::Capture(Capture {
                capture_id: seq,
                part: rng.bits_u32() as u16,
                part_count: rng.bits_u32() as u16,
                first_sample: rng.bits_u64(),
                channel_count: rng.byte(),
                samples,
            })
        }
        10 => {
            let mut angles_cdeg = Vec::new();
            for _ in 0..rng.below(MAX_CHANNELS + 1) {
                angles_cdeg.push(rng.bits_u32() as i16).unwrap();
            }
            Frame::Phases(Phases { seq, angles_cdeg })
        }
        _ => Frame::Heartbeat(Heartbeat {
            seq,
            uptime_ms: rng.bits_u64(),
            frames_sent: rng.bits_u32(),
            half_cycles_dropped: rng.bits_u32(),
            captures_dropped: rng.bits_u32(),
            adc_errors: rng.bits_u32(),
            status: NodeStatus(rng.bits_u32() as u16),
        }),
    }
}

fn wire(frame: &Frame) -> std::vec::Vec<u8> {
    let mut out = [0u8; MAX_WIRE_LEN];
    let n = encode(frame, &mut out).unwrap();
    out[..n].to_vec()
}

/// Feed `bytes` and collect every result.
fn feed_all(d: &mut Decoder, bytes: &[u8]) -> std::vec::Vec<Result<Frame, DecodeError>> {
    d.feed(bytes).collect()
}

fn is_damage_error(e: &DecodeError) -> bool {
    matches!(
        e,
        DecodeError::Cobs
            | DecodeError::Crc { .. }
            | DecodeError::Truncated { .. }
            | DecodeError::Oversize { .. }
    )
}

#[test]
fn random_bytes_never_panic_and_never_decode() {
    for seed in 0..8u64 {
        let mut rng = Rng(seed);
        let mut d = Decoder::new();
        let mut results = 0usize;
        // Vary the density of 0x00 so that short, long and oversize fragments all occur.
        for round in 0..64 {
            let zero_percent = [0, 1, 5, 30][round % 4];
            let bytes: std::vec::Vec<u8> = (0..4096)
                .map(|_| {
                    if rng.chance(zero_percent) {
                        0
                    } else {
                        rng.byte() | 1
                    }
                })
                .collect();
            for r in d.feed(&bytes) {
                results += 1;
                let e = r.expect_err("random bytes decoded as a frame");
                assert!(is_damage_error(&e), "seed {seed}: {e}");
                assert!(!e.to_string().is_empty());
            }
        }
        let s = d.stats();
        assert_eq!(s.frames, 0);
        assert_eq!(s.resyncs as usize, results);
        assert!(s.oversize > 0 && s.cobs_errors + s.crc_errors + s.truncated > 0);
    }
}

/// After `damaged`, an intact frame must decode; returns the results of the damaged part.
fn damaged_then_good(
    damaged: &[u8],
    good: &Frame,
    case: &str,
) -> std::vec::Vec<Result<Frame, DecodeError>> {
    let mut d = Decoder::new();
    let mut results = feed_all(&mut d, damaged);
    // If the damage ate the delimiter, the next frame's bytes join the damaged fragment: the
    // guarantee is that the frame after *that* decodes.
    let good_wire = wire(good);
    let mut after = feed_all(&mut d, &good_wire);
    after.extend(feed_all(&mut d, &good_wire));
    let oks: std::vec::Vec<_> = after.iter().filter(|r| r.is_ok()).collect();
    assert!(!oks.is_empty(), "{case}: no recovery");
    for r in &after {
        match r {
            Ok(f) => assert_eq!(f, good, "{case}"),
            Err(e) => assert!(is_damage_error(e), "{case}: {e}"),
        }
    }
    if damaged.last() == Some(&0) {
        assert_eq!(after, vec![Ok(good.clone()), Ok(good.clone())], "{case}");
    }
    results.retain(|r| r.is_err());
    results
}

#[test]
fn truncated_frames_give_typed_errors_then_resync() {
    let mut rng = Rng(42);
    for i in 0..200 {
        let frame = random_frame(&mut rng, i);
        let w = wire(&frame);
        let next = random_frame(&mut rng, i + 1000);
        // Keep the first `cut` bytes, then the delimiter (the tail was lost on the line).
        for cut in 1..w.len() - 1 {
            let mut damaged = w[..cut].to_vec();
            damaged.push(0);
            let case = format!("frame {i} cut at {cut}/{}", w.len());
            let errors = damaged_then_good(&damaged, &next, &case);
            assert_eq!(errors.len(), 1, "{case}");
            let e = errors[0].as_ref().unwrap_err();
            assert!(
                matches!(
                    e,
                    DecodeError::Cobs | DecodeError::Crc { .. } | DecodeError::Truncated { .. }
                ),
                "{case}: {e}"
            );
        }
    }
}

#[test]
fn every_single_bit_flip_is_caught_and_the_next_frame_decodes() {
    let mut rng = Rng(7);
    for i in 0..60 {
        let frame = random_frame(&mut rng, i);
        let next = random_frame(&mut rng, i + 1000);
        let w = wire(&frame);
        for byte in 0..w.len() {
            for bit in 0..8 {
                let mut damaged = w.clone();
                damaged[byte] ^= 1 << bit;
                let case = format!("frame {i} byte {byte} bit {bit}");
                let errors = damaged_then_good(&damaged, &next, &case);
                assert!(!errors.is_empty() || byte == w.len() - 1, "{case}");
            }
        }
    }
}

#[test]
fn inserted_and_deleted_bytes_are_caught_and_the_next_frame_decodes() {
    let mut rng = Rng(99);
    for i in 0..150 {
        let frame = random_frame(&mut rng, i);
        let next = random_frame(&mut rng, i + 1000);
        let w = wire(&frame);
        let body_len = w.len() - 1;
        for pos in 0..body_len {
            // Delete one byte of the frame's body.
            let mut deleted = w.clone();
            deleted.remove(pos);
            let errors = damaged_then_good(&deleted, &next, &format!("frame {i} del {pos}"));
            assert_eq!(errors.len(), 1, "frame {i} del {pos}");
        }
        for pos in 1..body_len {
            // Insert a byte (random, or a stray delimiter) strictly inside the body.
            let mut inserted = w.clone();
            let b = if rng.chance(20) { 0 } else { rng.byte() };
            inserted.insert(pos, b);
            let case = format!("frame {i} ins {b:#04x} after {pos}");
            let errors = damaged_then_good(&inserted, &next, &case);
            assert_eq!(errors.len(), if b == 0 { 2 } else { 1 }, "{case}");
        }
    }
}

#[test]
fn garbage_longer_than_the_buffer_is_dropped_as_oversize() {
    let mut rng = Rng(5);
    let next = random_frame(&mut rng, 1);
    let garbage: std::vec::Vec<u8> = (0..DECODER_BUFFER_LEN * 3)
        .map(|_| rng.byte() | 0x80)
        .chain([0])
        .collect();
    let errors = damaged_then_good(&garbage, &next, "oversize");
    assert_eq!(
        errors,
        vec![Err(DecodeError::Oversize {
            limit: DECODER_BUFFER_LEN
        })]
    );
}

/// Damage one frame's bytes (its trailing delimiter included) in one of several ways.
fn corrupt(rng: &mut Rng, bytes: &mut std::vec::Vec<u8>) {
    let len = bytes.len();
    match rng.below(8) {
        0 => {
            let pos = rng.below(len);
            bytes[pos] ^= 1 << rng.below(8);
        }
        1 => {
            for _ in 0..2 + rng.below(3) {
                let pos = rng.below(len);
                bytes[pos] ^= 1 << rng.below(8);
            }
        }
        2 => {
            bytes.remove(rng.below(len));
        }
        3 => {
            let pos = rng.below(len + 1);
            let b = if rng.chance(25) { 0 } else { rng.byte() };
            bytes.insert(pos, b);
        }
        4 => {
            // Burst: a run of garbage overwrites part of the frame.
            let start = rng.below(len);
            let end = (start + 1 + rng.below(12)).min(len);
            for b in &mut bytes[start..end] {
                *b = rng.byte();
            }
        }
        5 => {
            // Tail lost on the line.
            let keep = rng.below(len);
            bytes.truncate(keep);
            if rng.chance(50) {
                bytes.push(0);
            }
        }
        6 => {
            // Bytes duplicated (a receive FIFO glitch).
            let start = rng.below(len);
            let end = (start + 1 + rng.below(8)).min(len);
            let dup: std::vec::Vec<u8> = bytes[start..end].to_vec();
            bytes.splice(start..start, dup);
        }
        _ => {
            // Line noise: a long run of non-zero garbage (sometimes past the buffer size).
            let pos = rng.below(len + 1);
            let n = if rng.chance(30) {
                DECODER_BUFFER_LEN + rng.below(200)
            } else {
                1 + rng.below(40)
            };
            let noise: std::vec::Vec<u8> = (0..n).map(|_| rng.byte() | 1).collect();
            bytes.splice(pos..pos, noise);
        }
    }
}

#[test]
fn stream_of_10000_frames_with_random_corruption() {
    for seed in [1u64, 2, 3] {
        let mut rng = Rng(seed);
        let frames: std::vec::Vec<Frame> =
            (0..10_000u32).map(|i| random_frame(&mut rng, i)).collect();
        // Every frame's COBS body (delimiter excluded) → its index; frames are unique by seq.
        let mut by_body: HashMap<std::vec::Vec<u8>, usize> = HashMap::new();
        let mut chunks = std::vec::Vec::new();
        let mut damaged = std::vec::Vec::new();
        for (i, f) in frames.iter().enumerate() {
            let w = wire(f);
            by_body.insert(w[..w.len() - 1].to_vec(), i);
            let mut c = w.clone();
            if rng.chance(15) {
                corrupt(&mut rng, &mut c);
            }
            damaged.push(c != w);
            chunks.push(c);
        }
        let stream: std::vec::Vec<u8> = chunks.concat();

        // What must come out: the delimited segments that are byte-identical to a frame's
        // encoding, in order. Everything else must be rejected.
        let mut expected = std::vec::Vec::new();
        let mut rejected_segments = 0u32;
        let mut segments = stream.split(|&b| b == 0).collect::<std::vec::Vec<_>>();
        segments.pop(); // bytes after the last delimiter are not a frame yet
        for seg in segments.iter().filter(|s| !s.is_empty()) {
            match by_body.get(*seg) {
                Some(&i) => expected.push(i),
                None => rejected_segments += 1,
            }
        }
        // Every frame that was not touched, and whose predecessor's delimiter survived, is in
        // the expected list.
        let expected_set: HashSet<usize> = expected.iter().copied().collect();
        let mut intact = 0;
        for i in 0..frames.len() {
            let boundary_ok = i == 0 || chunks[i - 1].last() == Some(&0);
            if !damaged[i] && boundary_ok {
                intact += 1;
                assert!(expected_set.contains(&i), "seed {seed}: frame {i}");
            }
        }
        let damaged_count = damaged.iter().filter(|&&d| d).count();
        assert!(
            damaged_count > 1000,
            "seed {seed}: only {damaged_count} damaged"
        );

        // Feed the stream in random chunk sizes.
        let mut d = Decoder::new();
        let mut got = std::vec::Vec::new();
        let mut errors = 0u32;
        let mut rest: &[u8] = &stream;
        while !rest.is_empty() {
            let n = (1 + rng.below(300)).min(rest.len());
            for r in d.feed(&rest[..n]) {
                match r {
                    Ok(f) => got.push(f),
                    Err(e) => {
                        assert!(is_damage_error(&e), "seed {seed}: {e}");
                        errors += 1;
                    }
                }
            }
            rest = &rest[n..];
        }
        let expected_frames: std::vec::Vec<Frame> =
            expected.iter().map(|&i| frames[i].clone()).collect();
        assert_eq!(got.len(), expected_frames.len(), "seed {seed}");
        assert!(got == expected_frames, "seed {seed}: wrong frames accepted");
        assert!(got.len() >= intact, "seed {seed}");
        assert_eq!(errors, rejected_segments, "seed {seed}");
        let s = d.stats();
        assert_eq!(s.frames as usize, got.len());
        assert_eq!(s.resyncs, errors);
        assert_eq!(
            s.crc_errors + s.cobs_errors + s.truncated + s.oversize,
            errors,
            "seed {seed}: {s:?}"
        );
        assert!(s.crc_errors > 0 && s.cobs_errors > 0 && s.oversize > 0);
        eprintln!(
            "seed {seed}: {} frames, {damaged_count} damaged, {} recovered, {errors} rejected ({s:?})",
            frames.len(),
            got.len()
        );
    }
}
