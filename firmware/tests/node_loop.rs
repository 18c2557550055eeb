//! The sensor node's loop end to end on the host: waveform in, pqlink frames out, decoded again.

use kare_firmware::detector::Thresholds;
use kare_firmware::node::{Node, NodeConfig, SampleSource};
use kare_firmware::pqlink::{ChannelInfo, Decoder, FirmwareVersion, Frame, MAX_CHANNELS};
use std::f64::consts::PI;

const FS: u32 = 6400;
const VPU: f32 = 1e-4; // 0.1 mV per node unit: 230 V RMS is about 3.25 M units peak

fn config() -> NodeConfig {
    let mut channels = heapless::Vec::new();
    for name in ["VA", "VB", "VC"] {
        channels
            .push(ChannelInfo {
                name: heapless::String::try_from(name).unwrap(),
                volts_per_unit: VPU,
            })
            .unwrap();
    }
    NodeConfig {
        node_id: 7,
        firmware: FirmwareVersion {
            major: 0,
            minor: 1,
            patch: 0,
        },
        channels,
        nominal_hz: 50,
        sample_rate_hz: FS,
        thresholds: Thresholds::typical(230.0),
    }
}

/// Three phases at 230 V with a dip to 40 % from 1.0 s to 1.1 s.
struct Wave {
    k: u64,
}

impl SampleSource for Wave {
    type Error = ();
    fn next_sample(&mut self, out: &mut [i32; MAX_CHANNELS]) -> Result<(), ()> {
        let t = self.k as f64 / FS as f64;
        self.k += 1;
        let amp = if (1.0..1.1).contains(&t) { 0.4 } else { 1.0 };
        for (ch, o) in out.iter_mut().take(3).enumerate() {
            let v = amp
                * 230.0
                * 2f64.sqrt()
                * (2.0 * PI * 50.0 * t - ch as f64 * 2.0 * PI / 3.0).sin();
            *o = (v / VPU as f64).round() as i32;
        }
        Ok(())
    }
}

/// A port that keeps everything written to it.
struct Port(Vec<u8>);

impl embedded_io::ErrorType for Port {
    type Error = core::convert::Infallible;
}

impl embedded_io::Write for Port {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

#[test]
fn six_seconds_of_supply_become_hello_half_cycles_heartbeats_and_a_capture() {
    let mut node: Node<640, 1920> = Node::new(config()).unwrap();
    let mut wave = Wave { k: 0 };
    let mut port = Port(Vec::new());
    // The capture (1920 instants × 3 channels) needs about 4 s of spare link time.
    for _ in 0..6 * FS {
        node.run_once(&mut wave, &mut port);
    }
    let mut dec = Decoder::new();
    let frames: Vec<Frame> = dec
        .feed(&port.0)
        .map(|f| f.expect("every frame decodes"))
        .collect();
    assert!(matches!(frames[0], Frame::Hello(ref h) if h.node_id == 7 && h.channels.len() == 3));

    let halves: Vec<_> = frames
        .iter()
        .filter_map(|f| match f {
            Frame::HalfCycle(h) => Some(h),
            _ => None,
        })
        .collect();
    // Two per cycle for six seconds, less the first few cycles (the meter learns the period
    // before it completes a window): the capture never displaced one.
    assert!((588..=600).contains(&halves.len()), "{}", halves.len());
    for w in halves.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1));
        assert!(w[1].window_end > w[0].window_end);
    }
    let steady = halves
        .iter()
        .filter(|h| h.start_seconds(FS) > 0.2 && h.start_seconds(FS) < 0.9);
    for h in steady {
        for c in &h.channels {
            let volts = c.urms as f32 * VPU;
            assert!((volts - 230.0).abs() < 0.23, "{volts} V");
            assert!(c.flags.is_empty());
        }
        assert!((h.freq_mhz as i64 - 50_000).abs() < 50);
    }
    let in_dip = halves
        .iter()
        .filter(|h| h.start_seconds(FS) > 1.02 && h.end_seconds(FS) < 1.09)
        .count();
    assert!(in_dip >= 5);

    let beats = frames
        .iter()
        .filter(|f| matches!(f, Frame::Heartbeat(_)))
        .count();
    assert_eq!(beats, 6, "one per second");

    // Every heartbeat is followed at once by the phase angles; from the second one on (the first
    // goes out with the first sample, before any crossing) they read ABC. Each carries the seq
    // of the next half cycle.
    for (i, w) in frames.windows(2).enumerate() {
        assert_eq!(
            matches!(w[0], Frame::Heartbeat(_)),
            matches!(w[1], Frame::Phases(_)),
            "frame {i}: {:?} then {:?}",
            w[0].kind(),
            w[1].kind()
        );
    }
    let phases: Vec<_> = frames
        .iter()
        .enumerate()
        .filter_map(|(i, f)| match f {
            Frame::Phases(p) => Some((i, p)),
            _ => None,
        })
        .collect();
    assert_eq!(phases.len(), 6);
    assert_eq!(phases[0].1.angles_cdeg.len(), 3);
    assert_eq!(phases[0].1.angle(0), None, "nothing measured at boot");
    for (i, p) in &phases[1..] {
        assert_eq!(p.angle(0), Some(0));
        assert!(p.angle(1).unwrap().abs_diff(12_000) <= 100, "{p:?}");
        assert!(p.angle(2).unwrap().abs_diff(-12_000) <= 100, "{p:?}");
        let next_half = frames[*i..].iter().find_map(|f| match f {
            Frame::HalfCycle(h) => Some(h.seq),
            _ => None,
        });
        assert_eq!(next_half, Some(p.seq));
    }

    // The dip triggered one capture: every part arrived, in order, covering 100 ms before the
    // trigger to 200 ms after.
    let parts: Vec<_> = frames
        .iter()
        .filter_map(|f| match f {
            Frame::Capture(c) => Some(c),
            _ => None,
        })
        .collect();
    assert!(!parts.is_empty());
    let count = parts[0].part_count as usize;
    assert_eq!(parts.len(), count);
    assert!(parts
        .iter()
        .enumerate()
        .all(|(i, p)| p.part as usize == i && p.channel_count == 3));
    let instants: usize = parts.iter().map(|p| p.instants()).sum();
    assert_eq!(instants, 1920);
    let first = parts[0].first_sample as f64 / FS as f64;
    assert!((0.85..1.0).contains(&first), "capture starts {first} s");
    assert_eq!(node.counters().half_cycles_dropped, 0);
}

#[test]
fn a_full_port_drops_half_cycles_and_says_so_in_the_heartbeat() {
    let mut node: Node<64, 128> = Node::new(config()).unwrap();
    let mut wave = Wave { k: 0 };
    let mut sample = [0i32; MAX_CHANNELS];
    let mut out = Vec::new();
    for i in 0..(FS + 10) {
        wave.next_sample(&mut sample).unwrap();
        // The port refuses everything for the first half second.
        let refusing = i < FS / 2;
        node.push(&sample, |b| {
            if refusing {
                false
            } else {
                out.extend_from_slice(b);
                true
            }
        });
    }
    // Half a second refused: about 50 half cycles, less the few of start-up.
    assert!(node.counters().half_cycles_dropped >= 40);
    let mut dec = Decoder::new();
    let beat = dec
        .feed(&out)
        .filter_map(|f| match f.unwrap() {
            Frame::Heartbeat(h) => Some(h),
            _ => None,
        })
        .last()
        .expect("a heartbeat after the port recovered");
    assert_eq!(
        beat.half_cycles_dropped,
        node.counters().half_cycles_dropped
    );
}

/// The wave above, but the ADC fails to deliver samples 6400..6464 (10 ms at 1 s).
struct FailingWave(Wave);

impl SampleSource for FailingWave {
    type Error = ();
    fn next_sample(&mut self, out: &mut [i32; MAX_CHANNELS]) -> Result<(), ()> {
        let k = self.0.k;
        self.0.next_sample(out)?;
        if (6400..6464).contains(&k) {
            Err(())
        } else {
            Ok(())
        }
    }
}

#[test]
fn half_cycles_over_failed_adc_reads_are_flagged_and_only_those() {
    use kare_firmware::pqlink::ChannelFlags;
    let mut node: Node<64, 128> = Node::new(config()).unwrap();
    let mut wave = FailingWave(Wave { k: 0 });
    let mut port = Port(Vec::new());
    for _ in 0..(2 * FS) {
        node.run_once(&mut wave, &mut port);
    }
    assert_eq!(node.counters().adc_errors, 64);
    let mut dec = Decoder::new();
    let mut flagged = Vec::new();
    let mut clean_after = 0;
    for f in dec.feed(&port.0) {
        if let Frame::HalfCycle(h) = f.unwrap() {
            let bad = h.channels.iter().all(|c| {
                c.flags.contains(ChannelFlags::ADC_ERROR) && c.flags.contains(ChannelFlags::GAP)
            });
            let start = (h.window_end - h.window_len as u64) / 256;
            let end = h.window_end / 256;
            if bad {
                flagged.push((start, end));
            } else if start > 6464 {
                clean_after += 1;
            }
            // Every window that holds a failed sample is flagged.
            if start <= 6463 && end >= 6400 {
                assert!(
                    bad,
                    "window {start}..{end} holds failed reads but is not flagged"
                );
            }
        }
    }
    // The 10 ms of failed reads touch a few half cycles (one-cycle windows every half cycle),
    // not the rest of the second.
    assert!((2..=5).contains(&flagged.len()), "{flagged:?}");
    assert!(clean_after > 90, "{clean_after}");
}
