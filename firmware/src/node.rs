//! The sensor node's loop: samples in, pqlink frames out.
//!
//! [`Node::push`] takes one simultaneous sample of every channel and hands finished wire frames
//! to a transmit callback; [`Node::run_once`] does the same from any [`SampleSource`] (the
//! ADS131M04, a simulator) to any `embedded_io::Write` port (a UART, a pseudo-terminal). The same
//! loop runs on the Pico, on the Pi, and in the host simulator.
//!
//! Per half cycle the node sends one `HalfCycle` frame with every channel's Urms(1/2). It also
//! runs the core detector: when an event starts, it records the raw waveform from `PRE` samples
//! before to `POST` samples after the trigger and sends it as `Capture` frames in spare link time.
//! `Hello` goes out at boot and every 10 s, `Heartbeat` every second, each followed by `Phases`
//! (every channel's phase angle behind channel 0, for commissioning's phase-sequence check).

use crate::detector::{Thresholds, Transition};
use crate::monitor::{Monitor, Output, SetupError};
use crate::pqlink::{
    encode, Capture, ChannelFlags, ChannelInfo, ChannelReading, FirmwareVersion, Frame, HalfCycle,
    Heartbeat, Hello, LinkBudget, NodeStatus, Phases, CAPTURE_MAX_SAMPLES, MAX_CHANNELS,
    MAX_WIRE_LEN, PROTOCOL_VERSION,
};
use crate::urms::POS_ONE;
use heapless::{HistoryBuffer, Vec};

/// Where samples come from: the ADC on a real node, a waveform generator in the simulator.
pub trait SampleSource {
    /// What can go wrong reading a sample.
    type Error;
    /// Blocks until the next simultaneous sample of every channel and writes it to `out`
    /// (in node units; only the first [`NodeConfig::channels`] entries are used).
    fn next_sample(&mut self, out: &mut [i32; MAX_CHANNELS]) -> Result<(), Self::Error>;
}

impl<SPI: embedded_hal::spi::SpiDevice> SampleSource for crate::ads131m04::Ads131m04<SPI> {
    type Error = crate::ads131m04::Error<SPI::Error>;
    fn next_sample(&mut self, out: &mut [i32; MAX_CHANNELS]) -> Result<(), Self::Error> {
        let frame = self.read_frame()?;
        *out = frame.ch;
        Ok(())
    }
}

/// What the node is and how it measures.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeConfig {
    /// The node's identity, reported in `Hello`.
    pub node_id: u32,
    /// Firmware version, reported in `Hello`.
    pub firmware: FirmwareVersion,
    /// Channel names and scales (volts per node unit).
    pub channels: Vec<ChannelInfo, MAX_CHANNELS>,
    /// Nominal frequency, 50 or 60 Hz.
    pub nominal_hz: u8,
    /// Samples per second per channel.
    pub sample_rate_hz: u32,
    /// Declared voltage and thresholds (volts), used to trigger waveform captures.
    pub thresholds: Thresholds,
}

/// Counters the node reports in its heartbeat.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeCounters {
    /// Frames handed to the port.
    pub frames_sent: u32,
    /// Half-cycle frames the port refused.
    pub half_cycles_dropped: u32,
    /// Captures abandoned.
    pub captures_dropped: u32,
    /// Sample reads that failed.
    pub adc_errors: u32,
}

/// A waveform capture in progress or waiting to be sent.
#[derive(Debug)]
enum CaptureState {
    Idle,
    /// Collecting samples after the trigger until `capture` is full.
    Recording,
    /// Sending part `next_part` of `parts`.
    Sending {
        next_part: u16,
        parts: u16,
    },
}

/// The sensor node. `PRE` is the capture's sample count before the trigger, `TOTAL` the whole
/// capture's.
pub struct Node<const PRE: usize, const TOTAL: usize> {
    config: NodeConfig,
    monitor: Monitor,
    budget: LinkBudget,
    index: u64,
    seq: u32,
    heartbeat_seq: u32,
    counters: NodeCounters,
    status: NodeStatus,
    /// Sample index of the last failed ADC read: the half cycles whose windows hold it are
    /// flagged, since the value standing in for it is not a measurement.
    adc_error_at: Option<u64>,
    next_hello: u64,
    next_heartbeat: u64,
    micros_per_sample: u32,
    history: HistoryBuffer<[i32; MAX_CHANNELS], PRE>,
    capture: Vec<[i32; MAX_CHANNELS], TOTAL>,
    capture_first: u64,
    capture_id: u32,
    capture_state: CaptureState,
    wire: [u8; MAX_WIRE_LEN],
    /// The capture part waiting for link credit, encoded once: `(part, wire length)`. A part
    /// can wait hundreds of samples, and encoding it (postcard, CRC-32, COBS over ~170 bytes)
    /// on every one of them would eat the Pico's per-sample time.
    capture_wire: [u8; MAX_WIRE_LEN],
    capture_encoded: Option<(u16, usize)>,
}

impl<const PRE: usize, const TOTAL: usize> Node<PRE, TOTAL> {
    /// A node that has sent nothing yet; its first `push` sends `Hello`.
    pub fn new(config: NodeConfig) -> Result<Self, SetupError> {
        let scale: Vec<f32, MAX_CHANNELS> =
            config.channels.iter().map(|c| c.volts_per_unit).collect();
        let monitor = Monitor::new(
            config.sample_rate_hz as f32,
            config.nominal_hz as f32,
            &scale,
            config.thresholds,
        )?;
        Ok(Node {
            micros_per_sample: 1_000_000 / config.sample_rate_hz.max(1),
            config,
            monitor,
            budget: LinkBudget::default(),
            index: 0,
            seq: 0,
            heartbeat_seq: 0,
            counters: NodeCounters::default(),
            status: NodeStatus::OK,
            adc_error_at: None,
            next_hello: 0,
            next_heartbeat: 0,
            history: HistoryBuffer::new(),
            capture: Vec::new(),
            capture_first: 0,
            capture_id: 0,
            capture_state: CaptureState::Idle,
            wire: [0; MAX_WIRE_LEN],
            capture_wire: [0; MAX_WIRE_LEN],
            capture_encoded: None,
        })
    }

    /// The node's configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// Counters so far.
    pub fn counters(&self) -> NodeCounters {
        self.counters
    }

    /// Reads one sample from `source` and sends what it completes to `port`. A failed read is
    /// counted, reported in the next heartbeat, and flags (`ADC_ERROR`, `GAP`) every half cycle
    /// whose window holds it; a failed write drops the frame and is counted.
    pub fn run_once<S: SampleSource, W: embedded_io::Write>(
        &mut self,
        source: &mut S,
        port: &mut W,
    ) {
        let mut sample = [0i32; MAX_CHANNELS];
        if source.next_sample(&mut sample).is_err() {
            self.counters.adc_errors = self.counters.adc_errors.wrapping_add(1);
            self.status = self.status.with(NodeStatus::ADC_FAULT);
            self.adc_error_at = Some(self.index);
            // Hold the clock: a missing sample still takes its time slot (its stand-in value
            // is flagged, never judged as a measurement).
            sample = self.history.recent().copied().unwrap_or([0; MAX_CHANNELS]);
        }
        self.push(&sample, |bytes| port.write_all(bytes).is_ok());
    }

    /// Feeds one sample of every channel; `tx` is called with each finished wire frame and
    /// returns whether the port took it.
    pub fn push(&mut self, sample: &[i32; MAX_CHANNELS], mut tx: impl FnMut(&[u8]) -> bool) {
        let n = self.config.channels.len();
        let now = self.index;
        self.index += 1;
        self.budget.elapse(self.micros_per_sample);
        let rate = self.config.sample_rate_hz as u64;

        if now >= self.next_hello {
            self.next_hello = now + 10 * rate;
            let hello = Frame::Hello(Hello {
                protocol_version: PROTOCOL_VERSION,
                firmware: self.config.firmware,
                node_id: self.config.node_id,
                channels: self.config.channels.clone(),
                nominal_hz: self.config.nominal_hz,
                sample_rate_hz: self.config.sample_rate_hz,
            });
            self.send(&hello, &mut tx);
        }

        self.history.write(*sample);
        if let CaptureState::Recording = self.capture_state {
            if self.capture.push(*sample).is_err() {
                let parts = parts_for(self.capture.len(), n);
                self.capture_state = CaptureState::Sending {
                    next_part: 0,
                    parts,
                };
            }
        }

        let mut half_record = None;
        let mut triggered = false;
        self.monitor.push(&sample[..n], |out| match out {
            Output::Values { half, .. } => half_record = Some(half),
            Output::Transition(Transition::Started(_)) => triggered = true,
            Output::Transition(Transition::Ended(_)) => {}
        });
        if let Some(half) = half_record {
            // Positions are in 1/256 sample: a failed sample's slot overlaps the window when it
            // lies within one sample of either end.
            let adc_bad = self.adc_error_at.is_some_and(|i| {
                let pos = i * POS_ONE;
                pos + POS_ONE > half.start && pos < half.end + POS_ONE
            });
            let mut channels = Vec::new();
            for (i, urms) in half.values().iter().enumerate() {
                let mut flags = ChannelFlags::NONE;
                if adc_bad {
                    flags = flags.with(ChannelFlags::ADC_ERROR).with(ChannelFlags::GAP);
                }
                if half.clipped & (1 << i) != 0 {
                    flags = flags.with(ChannelFlags::CLIPPING);
                    self.status = self.status.with(NodeStatus::CLIPPING);
                }
                if !half.locked {
                    flags = flags.with(ChannelFlags::UNLOCKED);
                    self.status = self.status.with(NodeStatus::UNLOCKED);
                }
                let _ = channels.push(ChannelReading {
                    urms: libm::roundf(*urms) as u32,
                    flags,
                });
            }
            let frame = Frame::HalfCycle(HalfCycle {
                seq: self.seq,
                window_end: half.end,
                window_len: (half.end - half.start) as u32,
                freq_mhz: (half.frequency_hz * 1000.0) as u32,
                channels,
            });
            self.seq = self.seq.wrapping_add(1);
            if !self.send(&frame, &mut tx) {
                self.counters.half_cycles_dropped =
                    self.counters.half_cycles_dropped.wrapping_add(1);
                self.status = self.status.with(NodeStatus::TX_OVERRUN);
            }
        }
        if triggered {
            self.start_capture(now);
        }

        if now >= self.next_heartbeat {
            self.next_heartbeat = now + rate;
            if !matches!(self.capture_state, CaptureState::Idle) {
                self.status = self.status.with(NodeStatus::CAPTURE_BACKLOG);
            }
            let hb = Frame::Heartbeat(Heartbeat {
                seq: self.heartbeat_seq,
                uptime_ms: now * 1000 / rate.max(1),
                frames_sent: self.counters.frames_sent,
                half_cycles_dropped: self.counters.half_cycles_dropped,
                captures_dropped: self.counters.captures_dropped,
                adc_errors: self.counters.adc_errors,
                status: self.status,
            });
            self.heartbeat_seq = self.heartbeat_seq.wrapping_add(1);
            self.status = NodeStatus::OK;
            self.send(&hb, &mut tx);
            // Right after the heartbeat, once a second: commissioning needs the phase sequence
            // within a second or two, and the meter reads the angles from its latest crossings
            // in a few integer operations. `seq` is the next half cycle's, so the receiver can
            // place the angles among the HalfCycle frames.
            let angles = self.monitor.phase_angles();
            let phases = Frame::Phases(Phases::from_angles(self.seq, &angles[..n]));
            self.send(&phases, &mut tx);
        }

        self.send_capture_part(&mut tx);
    }

    fn start_capture(&mut self, trigger: u64) {
        match self.capture_state {
            CaptureState::Idle => {}
            // One capture at a time: a second event while one is recording or queued is covered
            // by the first capture's post-trigger part or is dropped (and counted).
            CaptureState::Recording => return,
            CaptureState::Sending { .. } => {
                self.counters.captures_dropped = self.counters.captures_dropped.wrapping_add(1);
                return;
            }
        }
        self.capture.clear();
        self.capture_encoded = None;
        for s in self.history.oldest_ordered() {
            let _ = self.capture.push(*s);
        }
        self.capture_first = (trigger + 1).saturating_sub(self.capture.len() as u64);
        self.capture_id = self.capture_id.wrapping_add(1);
        self.capture_state = CaptureState::Recording;
    }

    fn send_capture_part(&mut self, tx: &mut impl FnMut(&[u8]) -> bool) {
        let CaptureState::Sending { next_part, parts } = self.capture_state else {
            return;
        };
        let len = match self.capture_encoded {
            Some((part, len)) if part == next_part => len,
            _ => {
                let Some(len) = self.encode_capture_part(next_part, parts) else {
                    self.capture_state = CaptureState::Idle;
                    self.counters.captures_dropped = self.counters.captures_dropped.wrapping_add(1);
                    return;
                };
                self.capture_encoded = Some((next_part, len));
                len
            }
        };
        // Captures only use spare link time: half-cycle frames always go first.
        if !self.budget.try_capture(len) {
            return;
        }
        if tx(&self.capture_wire[..len]) {
            self.counters.frames_sent = self.counters.frames_sent.wrapping_add(1);
            self.capture_encoded = None;
            self.capture_state = if next_part + 1 >= parts {
                CaptureState::Idle
            } else {
                CaptureState::Sending {
                    next_part: next_part + 1,
                    parts,
                }
            };
        }
    }

    /// Encodes capture part `part` of `parts` into `capture_wire`; its wire length.
    fn encode_capture_part(&mut self, part: u16, parts: u16) -> Option<usize> {
        let n = self.config.channels.len();
        let per_part = CAPTURE_MAX_SAMPLES / n.max(1);
        let from = part as usize * per_part;
        let to = (from + per_part).min(self.capture.len());
        let mut samples = Vec::new();
        for s in &self.capture[from..to] {
            for v in &s[..n] {
                let _ = samples.push(*v);
            }
        }
        let frame = Frame::Capture(Capture {
            capture_id: self.capture_id,
            part,
            part_count: parts,
            first_sample: self.capture_first + from as u64,
            channel_count: n as u8,
            samples,
        });
        encode(&frame, &mut self.capture_wire).ok()
    }

    /// Encodes and hands over one always-sent frame; returns whether the port took it.
    fn send(&mut self, frame: &Frame, tx: &mut impl FnMut(&[u8]) -> bool) -> bool {
        let Ok(len) = encode(frame, &mut self.wire) else {
            return false;
        };
        self.budget.charge(len);
        let ok = tx(&self.wire[..len]);
        if ok {
            self.counters.frames_sent = self.counters.frames_sent.wrapping_add(1);
        }
        ok
    }
}

fn parts_for(instants: usize, channels: usize) -> u16 {
    let per_part = (CAPTURE_MAX_SAMPLES / channels.max(1)).max(1);
    instants.div_ceil(per_part) as u16
}
