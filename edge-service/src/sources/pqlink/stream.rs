//! A sensor node's stream, judged: decoded pqlink frames in, [`StreamOutput`]s out.
//!
//! Pure (no I/O, no clock of its own): [`NodeStream`] runs the same core detector as the node
//! and `kare replay`, anchors the node's sample clock to UTC at its first frame, reassembles
//! waveform captures and collects each event's RMS profile. It also passes on the node's phase
//! angles (protocol version 2) for commissioning's phase-sequence check. The I/O edge is
//! `super::run`.

use crate::pipeline::events::{characterise, Clock, ReportedEvent};
use chrono::{DateTime, Utc};
use kare_firmware::detector::{Detector, Observation, Thresholds, Transition};
use kare_firmware::pqlink::{ChannelFlags, DecoderStats, Frame, Hello, MAX_CHANNELS};
use kare_firmware::profile::{ProfilePoint, Profiler};
use kare_firmware::urms::POS_ONE;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One half cycle of one node: every channel's Urms(1/2) over the same window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reading {
    /// Source name from the configuration.
    pub source: Arc<str>,
    /// The node's half-cycle sequence number.
    pub seq: u32,
    /// Window start (UTC, from the node's sample clock anchored at the first frame).
    pub start: DateTime<Utc>,
    /// Window end.
    pub end: DateTime<Utc>,
    /// Fundamental frequency, Hz.
    pub frequency_hz: f32,
    /// Urms(1/2) per channel, volts (`channels` entries used).
    pub volts: [f32; MAX_CHANNELS],
    /// Number of channels.
    pub channels: u8,
    /// Whether every channel was locked to a real zero crossing.
    pub locked: bool,
}

/// What a node's stream tells the service.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamOutput {
    /// A half cycle was measured.
    Reading(Reading),
    /// A voltage event began (`core_id` identifies it within this source until it ends).
    Started {
        /// Detector-local id, unique within the source while the event lasts.
        core_id: u32,
        /// What is known so far (no duration yet).
        event: ReportedEvent,
    },
    /// A voltage event ended.
    Ended {
        /// Detector-local id given at `Started`.
        core_id: u32,
        /// The characterised event.
        event: ReportedEvent,
    },
    /// The node said hello (at boot, and every 10 s).
    Hello(Hello),
    /// The first half cycle with every channel at or above the interruption threshold plus
    /// hysteresis since the stream (re)started: the supply is present. Sent once per start.
    SupplyPresent {
        /// End of that half cycle's window.
        at: DateTime<Utc>,
    },
    /// A waveform capture around an event arrived whole.
    Capture(Arc<Waveform>),
    /// An ended event's RMS profile is complete (some records after its end).
    Profile {
        /// Detector-local id given at `Started`.
        core_id: u32,
        /// The records.
        profile: RmsProfile,
    },
    /// The node's phase angles (a `Phases` frame, once a second after its heartbeat; nodes of
    /// protocol version 1 send none). For commissioning: the service itself ignores them.
    Phases(PhaseAngles),
}

/// Each channel's phase angle as the node measured it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PhaseAngles {
    /// The `seq` of the node's next half cycle when the angles were read (they come from zero
    /// crossings before that half cycle's window ended).
    pub seq: u32,
    /// How far each channel's fundamental lags channel 0's, in hundredths of a degree, in
    /// (−18 000, 18 000]: channel 0 reads 0, a balanced ABC supply `[0, 12 000, −12 000]`, an
    /// ACB one `[0, −12 000, 12 000]`. `None`: no fundamental on that channel (a dead or missing
    /// phase; every channel when channel 0 has none), or no such channel (see `channels`).
    pub angles_cdeg: [Option<i16>; MAX_CHANNELS],
    /// Number of channels the node reported.
    pub channels: u8,
}

impl PhaseAngles {
    /// Channel `ch`'s angle in degrees, `None` as in [`PhaseAngles::angles_cdeg`].
    pub fn degrees(&self, ch: usize) -> Option<f32> {
        self.angles_cdeg
            .get(ch)
            .copied()
            .flatten()
            .map(|a| f32::from(a) / 100.0)
    }
}

/// Raw samples around an event, as the node captured them, in volts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Waveform {
    /// The node's capture id.
    pub capture_id: u32,
    /// Time of the first sample.
    pub start: DateTime<Utc>,
    /// Samples per second.
    pub sample_rate_hz: u32,
    /// Channel names.
    pub channels: Vec<String>,
    /// Instantaneous volts, one row per channel.
    pub volts: Vec<Vec<f32>>,
}

/// Parts of captures being received: id → (first sample, parts by index).
#[derive(Debug, Default)]
struct Captures {
    parts: BTreeMap<u32, (u16, BTreeMap<u16, kare_firmware::pqlink::Capture>)>,
    /// Captures abandoned because parts went missing (a newer capture started first).
    incomplete: u64,
}

/// An event's Urms(1/2) records from before its start to after its end.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RmsProfile {
    /// Records before the event's start.
    pub pre_records: u16,
    /// Records in the middle of a long event that were not kept.
    pub skipped_records: u32,
    /// The records, oldest first.
    pub records: Vec<ProfileRecord>,
}

/// One record of a profile.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProfileRecord {
    /// Window start.
    pub start: DateTime<Utc>,
    /// Window end.
    pub end: DateTime<Utc>,
    /// Urms(1/2) per channel, % of Udin.
    pub pct: Vec<f32>,
}

/// 0.5 s before, 4 s at the start, 4 s at the end, 0.5 s after (at 100 records/s), for up to 4
/// overlapping events: about 150 kB per source, allocated once.
type StreamProfiler = Profiler<50, 400, 400, 4>;
const PROFILE_POST: u16 = 50;

/// Counters of one source, shown in `/api/v1/status` and logged.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StreamStats {
    /// Frames decoded.
    pub frames: u64,
    /// Half-cycle frames judged.
    pub half_cycles: u64,
    /// Half-cycle frames that arrived before any `Hello` (cannot be scaled; dropped).
    pub before_hello: u64,
    /// Times the sequence number skipped.
    pub seq_gaps: u64,
    /// Half cycles lost in those gaps.
    pub half_cycles_lost: u64,
    /// Half cycles with a channel free-running (no zero-crossing lock).
    pub unlocked: u64,
    /// Half cycles with a clipped channel.
    pub clipped: u64,
    /// Half cycles over a failed ADC read (flagged by the node): counted, not judged.
    pub adc_error_windows: u64,
    /// Node restarts seen (sample clock went backwards).
    pub node_restarts: u64,
    /// Frames rejected by their CRC.
    pub crc_errors: u64,
    /// Times the decoder skipped damaged bytes to find the next frame.
    pub resyncs: u64,
    /// Bytes thrown away while resynchronising.
    pub bytes_discarded: u64,
    /// Waveform capture frames received.
    pub capture_frames: u64,
    /// Captures received whole.
    pub captures: u64,
    /// Captures abandoned with parts missing.
    pub captures_incomplete: u64,
    /// Heartbeats received.
    pub heartbeats: u64,
    /// Phase-angle frames received (one a second from a node of protocol version 2).
    pub phases: u64,
    /// Frames of an older protocol version than the edge's (a node with older firmware: it
    /// sends no phase angles).
    pub older_version: u64,
    /// Frames the node says it could not send (from its heartbeat).
    pub node_dropped: u32,
}

impl StreamStats {
    pub(crate) fn absorb(&mut self, d: &DecoderStats) {
        self.crc_errors = d.crc_errors as u64;
        self.resyncs = d.resyncs as u64;
        self.bytes_discarded = d.bytes_discarded as u64;
        self.older_version = d.older_version as u64;
    }
}

/// A node's stream, judged. Holds no I/O: feed it frames as they arrive.
#[derive(Debug)]
pub struct NodeStream {
    source: Arc<str>,
    thresholds: Thresholds,
    hello: Option<Hello>,
    names: Vec<String>,
    scales: [f32; MAX_CHANNELS],
    rate: f64,
    nominal: f64,
    detector: Option<Detector>,
    clock: Option<Clock>,
    last_seq: Option<u32>,
    last_end: u64,
    stats: StreamStats,
    profiler: Box<StreamProfiler>,
    present_reported: bool,
    captures: Captures,
    phases: Option<PhaseAngles>,
}

impl NodeStream {
    /// A stream for source `source`, judged with `thresholds` (Udin in volts).
    pub fn new(source: &str, thresholds: Thresholds) -> Self {
        NodeStream {
            source: source.into(),
            thresholds,
            hello: None,
            names: Vec::new(),
            scales: [0.0; MAX_CHANNELS],
            rate: 0.0,
            nominal: 0.0,
            detector: None,
            clock: None,
            last_seq: None,
            last_end: 0,
            stats: StreamStats::default(),
            profiler: Box::new(Profiler::new(PROFILE_POST)),
            present_reported: false,
            captures: Captures::default(),
            phases: None,
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &StreamStats {
        &self.stats
    }

    /// The node's last `Hello`.
    pub fn hello(&self) -> Option<&Hello> {
        self.hello.as_ref()
    }

    /// The node's latest phase angles (`None` until a `Phases` frame arrives; a node of protocol
    /// version 1 never sends one).
    pub fn phases(&self) -> Option<&PhaseAngles> {
        self.phases.as_ref()
    }

    /// Judges one decoded frame received at `now`.
    pub fn on_frame(
        &mut self,
        frame: Frame,
        now: DateTime<Utc>,
        out: &mut impl FnMut(StreamOutput),
    ) {
        self.stats.frames += 1;
        match frame {
            Frame::Hello(h) => {
                let changed = self.hello.as_ref().is_none_or(|old| {
                    old.channels != h.channels
                        || old.sample_rate_hz != h.sample_rate_hz
                        || old.nominal_hz != h.nominal_hz
                });
                if changed {
                    self.names = h.channels.iter().map(|c| c.name.to_string()).collect();
                    for (i, c) in h.channels.iter().enumerate() {
                        self.scales[i] = c.volts_per_unit;
                    }
                    self.rate = h.sample_rate_hz as f64;
                    self.nominal = h.nominal_hz as f64;
                    self.restart(h.channels.len());
                    tracing::info!(source = %self.source, node = h.node_id, channels = ?self.names,
                        rate = h.sample_rate_hz, nominal = h.nominal_hz, "sensor node says hello");
                }
                self.hello = Some(h.clone());
                out(StreamOutput::Hello(h));
            }
            Frame::HalfCycle(hc) => {
                if self.hello.is_none() {
                    self.stats.before_hello += 1;
                    return;
                }
                let rate = self.rate;
                if hc.window_end < self.last_end {
                    // The node restarted: its sample clock began again from zero.
                    self.stats.node_restarts += 1;
                    tracing::warn!(source = %self.source, "sensor node restarted (sample clock went back)");
                    let n = self.names.len();
                    self.restart(n);
                }
                self.last_end = hc.window_end;
                if let Some(prev) = self.last_seq {
                    let expected = prev.wrapping_add(1);
                    if hc.seq != expected {
                        self.stats.seq_gaps += 1;
                        self.stats.half_cycles_lost += hc.seq.wrapping_sub(expected) as u64;
                    }
                }
                self.last_seq = Some(hc.seq);
                self.stats.half_cycles += 1;
                let clock = *self.clock.get_or_insert_with(|| Clock {
                    start: now
                        - chrono::Duration::nanoseconds(
                            (hc.window_end as f64 / POS_ONE as f64 / rate * 1e9) as i64,
                        ),
                    sample_rate_hz: rate,
                    udin: self.thresholds.udin as f64,
                    nominal_hz: self.nominal,
                });
                let n = hc.channels.len().min(self.names.len());
                // A window over a failed ADC read holds a stand-in, not a measurement: counted,
                // and neither judged nor shown (an event in progress stays open across it).
                if hc.channels.iter().take(n).any(|c| {
                    c.flags.contains(ChannelFlags::ADC_ERROR) || c.flags.contains(ChannelFlags::GAP)
                }) {
                    self.stats.adc_error_windows += 1;
                    return;
                }
                let mut volts = [0f32; MAX_CHANNELS];
                let mut locked = true;
                let mut clipped = false;
                for (i, c) in hc.channels.iter().take(n).enumerate() {
                    // The same arithmetic as the core's monitor: whole units times the scale.
                    volts[i] = c.urms as f32 * self.scales[i];
                    locked &= !c.flags.contains(ChannelFlags::UNLOCKED);
                    clipped |= c.flags.contains(ChannelFlags::CLIPPING);
                }
                if !locked {
                    self.stats.unlocked += 1;
                }
                if clipped {
                    self.stats.clipped += 1;
                }
                let start = hc.window_start();
                let t = self.thresholds;
                let present_level = t.udin * (t.interruption_pct + t.hysteresis_pct) / 100.0;
                if !self.present_reported && n > 0 && volts[..n].iter().all(|v| *v >= present_level)
                {
                    self.present_reported = true;
                    out(StreamOutput::SupplyPresent {
                        at: clock.instant(hc.window_end),
                    });
                }
                out(StreamOutput::Reading(Reading {
                    source: self.source.clone(),
                    seq: hc.seq,
                    start: clock.instant(start),
                    end: clock.instant(hc.window_end),
                    frequency_hz: hc.freq_mhz as f32 / 1000.0,
                    volts,
                    channels: n as u8,
                    locked,
                }));
                let mut transitions: heapless::Vec<Transition, 24> = heapless::Vec::new();
                if let Some(det) = &mut self.detector {
                    for (ch, v) in volts.iter().enumerate().take(n) {
                        let obs = Observation {
                            channel: ch as u8,
                            start,
                            end: hc.window_end,
                            value: *v,
                        };
                        for tr in det.observe(&obs) {
                            let _ = transitions.push(tr);
                            let (core, started) = match tr {
                                Transition::Started(e) => (e, true),
                                Transition::Ended(e) => (e, false),
                            };
                            let event = characterise(&core, &clock, &self.names, hc.window_end);
                            out(if started {
                                StreamOutput::Started {
                                    core_id: core.id,
                                    event,
                                }
                            } else {
                                StreamOutput::Ended {
                                    core_id: core.id,
                                    event,
                                }
                            });
                        }
                    }
                }
                let point = ProfilePoint {
                    start,
                    end: hc.window_end,
                    values: volts_all(&volts),
                };
                let udin = self.thresholds.udin;
                self.profiler.record(point, &transitions, |p| {
                    let records = p
                        .points()
                        .map(|x| ProfileRecord {
                            start: clock.instant(x.start),
                            end: clock.instant(x.end),
                            pct: x.values[..n].iter().map(|v| v / udin * 100.0).collect(),
                        })
                        .collect();
                    out(StreamOutput::Profile {
                        core_id: p.event_id,
                        profile: RmsProfile {
                            pre_records: p.pre,
                            skipped_records: p.skipped,
                            records,
                        },
                    });
                });
            }
            Frame::Capture(c) => {
                self.stats.capture_frames += 1;
                if let Some(w) = self.on_capture_part(c) {
                    self.stats.captures += 1;
                    out(StreamOutput::Capture(Arc::new(w)));
                }
                self.stats.captures_incomplete = self.captures.incomplete;
            }
            Frame::Heartbeat(hb) => {
                self.stats.heartbeats += 1;
                self.stats.node_dropped = hb.half_cycles_dropped;
            }
            Frame::Phases(p) => {
                // Angles need no scale, so unlike half cycles they are passed on before Hello.
                self.stats.phases += 1;
                let angles = PhaseAngles {
                    seq: p.seq,
                    angles_cdeg: p.angles(),
                    channels: p.angles_cdeg.len() as u8,
                };
                self.phases = Some(angles);
                out(StreamOutput::Phases(angles));
            }
        }
    }

    /// Collects a capture's parts; returns the waveform when the last part is in. Only the newest
    /// two captures are kept: the node sends one at a time, so an older one missing parts is lost.
    fn on_capture_part(&mut self, c: kare_firmware::pqlink::Capture) -> Option<Waveform> {
        let id = c.capture_id;
        let count = c.part_count;
        let entry = self
            .captures
            .parts
            .entry(id)
            .or_insert((count, BTreeMap::new()));
        entry.1.insert(c.part, c);
        while self.captures.parts.len() > 2 {
            self.captures.parts.pop_first();
            self.captures.incomplete += 1;
        }
        let (count, parts) = self.captures.parts.get(&id)?;
        if parts.len() < *count as usize {
            return None;
        }
        let (_, parts) = self.captures.parts.remove(&id)?;
        let clock = self.clock?;
        let n = parts.values().next()?.channel_count as usize;
        let first = parts.values().next()?.first_sample;
        let mut volts = vec![Vec::new(); n];
        for p in parts.values() {
            for frame in p.samples.chunks(n.max(1)) {
                for (ch, v) in frame.iter().enumerate() {
                    volts[ch].push(*v as f32 * self.scales.get(ch).copied().unwrap_or(0.0));
                }
            }
        }
        Some(Waveform {
            capture_id: id,
            start: clock.instant(first * POS_ONE),
            sample_rate_hz: self.rate as u32,
            channels: self.names.iter().take(n).cloned().collect(),
            volts,
        })
    }

    fn restart(&mut self, channels: usize) {
        self.detector = Some(Detector::new(self.thresholds, channels.max(1)));
        *self.profiler = Profiler::new(PROFILE_POST);
        self.present_reported = false;
        self.clock = None;
        self.last_seq = None;
        self.last_end = 0;
    }
}

/// The profile's per-channel values (the core's array size).
fn volts_all(v: &[f32; MAX_CHANNELS]) -> [f32; kare_firmware::detector::MAX_CHANNELS] {
    let mut out = [0.0; kare_firmware::detector::MAX_CHANNELS];
    out[..MAX_CHANNELS].copy_from_slice(v);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kare_firmware::pqlink::{
        ChannelInfo, ChannelReading, FirmwareVersion, HalfCycle, PROTOCOL_VERSION,
    };

    const VPU: f32 = 1e-4;

    fn hello() -> Frame {
        let mut channels = heapless::Vec::new();
        for name in ["VA", "VB", "VC"] {
            let _ = channels.push(ChannelInfo {
                name: heapless::String::try_from(name).unwrap(),
                volts_per_unit: VPU,
            });
        }
        Frame::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            firmware: FirmwareVersion::default(),
            node_id: 1,
            channels,
            nominal_hz: 50,
            sample_rate_hz: 6400,
        })
    }

    fn half(seq: u32, volts: f32, flags: ChannelFlags) -> Frame {
        let mut channels = heapless::Vec::new();
        for _ in 0..3 {
            let _ = channels.push(ChannelReading {
                urms: (volts / VPU) as u32,
                flags,
            });
        }
        Frame::HalfCycle(HalfCycle {
            seq,
            window_end: (seq as u64 + 2) * 64 * POS_ONE,
            window_len: 128 * POS_ONE as u32,
            freq_mhz: 50_000,
            channels,
        })
    }

    /// 50 normal half cycles, 6 at 0 V with `flags`, 50 normal: the events started.
    fn starts_with_a_zero_run(flags: ChannelFlags) -> (usize, StreamStats) {
        let mut stream = NodeStream::new("n", Thresholds::typical(230.0));
        let mut started = 0;
        let mut out = |o: StreamOutput| {
            if matches!(o, StreamOutput::Started { .. }) {
                started += 1;
            }
        };
        let now = Utc::now();
        stream.on_frame(hello(), now, &mut out);
        for seq in 0..106 {
            let f = if (50..56).contains(&seq) {
                half(seq, 0.0, flags)
            } else {
                half(seq, 230.0, ChannelFlags::NONE)
            };
            stream.on_frame(f, now, &mut out);
        }
        (started, stream.stats().clone())
    }

    #[test]
    fn phases_pass_through_before_and_after_hello_and_count_as_nothing_else() {
        use kare_firmware::pqlink::Phases;
        let mut stream = NodeStream::new("n", Thresholds::typical(230.0));
        let mut got = Vec::new();
        let mut out = |o: StreamOutput| got.push(o);
        let now = Utc::now();
        let acb = Frame::Phases(Phases::from_angles(
            7,
            &[Some(0), Some(-12_003), Some(11_998)],
        ));
        stream.on_frame(acb, now, &mut out);
        stream.on_frame(hello(), now, &mut out);
        let lost_c = Frame::Phases(Phases::from_angles(9, &[Some(0), Some(12_001), None]));
        stream.on_frame(lost_c, now, &mut out);
        let phases: Vec<PhaseAngles> = got
            .iter()
            .filter_map(|o| match o {
                StreamOutput::Phases(p) => Some(*p),
                _ => None,
            })
            .collect();
        assert_eq!(phases.len(), 2);
        assert_eq!(phases[0].seq, 7);
        assert_eq!(phases[0].channels, 3);
        assert_eq!(
            phases[0].angles_cdeg,
            [Some(0), Some(-12_003), Some(11_998), None]
        );
        assert_eq!(phases[0].degrees(1), Some(-120.03));
        assert_eq!(phases[1].angles_cdeg, [Some(0), Some(12_001), None, None]);
        assert_eq!(phases[1].degrees(2), None);
        assert_eq!(stream.phases(), Some(&phases[1]), "the latest is kept");
        let stats = stream.stats();
        assert_eq!((stats.frames, stats.phases), (3, 2));
        assert_eq!(
            (stats.half_cycles, stats.before_hello, stats.heartbeats),
            (0, 0, 0)
        );
    }

    #[test]
    fn windows_over_failed_adc_reads_are_counted_not_judged() {
        // The same zeros, measured: a dip and an interruption.
        let (started, stats) = starts_with_a_zero_run(ChannelFlags::NONE);
        assert_eq!(started, 2);
        assert_eq!(stats.adc_error_windows, 0);
        // Flagged by the node as stand-ins for failed reads: no event, counted.
        let bad = ChannelFlags::ADC_ERROR.with(ChannelFlags::GAP);
        let (started, stats) = starts_with_a_zero_run(bad);
        assert_eq!(started, 0);
        assert_eq!(stats.adc_error_windows, 6);
    }
}
