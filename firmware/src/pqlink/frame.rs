//! The frames carried by pqlink: what the sensor node says, field by field.
//!
//! Every type here is fixed-capacity (`heapless`), so a [`Frame`] lives on the stack of a
//! `no_std` node without an allocator. Field order is the wire order (postcard serialises struct
//! fields in declaration order): **never reorder or remove a field**; a later protocol version may
//! only append fields at the end of a frame or add frame kinds at the end of [`Frame`]. See
//! `firmware/PROTOCOL.md` for the versioning rule.

use heapless::{String, Vec};
use serde::{Deserialize, Serialize};

/// Most channels a node reports (the ADS131M04 has four).
pub const MAX_CHANNELS: usize = 4;

/// Capacity of a channel name such as `"VA"` or `"VAB"`, in UTF-8 bytes.
pub const CHANNEL_NAME_LEN: usize = 8;

/// Most samples one [`Capture`] frame carries (all channels together, interleaved).
///
/// 36 is a multiple of 1, 2, 3 and 4, so every channel count fills a frame exactly, and a capture
/// frame whose samples are all `i32::MIN` (5 bytes each as a zigzag varint) still encodes to at
/// most [`MAX_WIRE_LEN`](super::MAX_WIRE_LEN) bytes on the wire.
pub const CAPTURE_MAX_SAMPLES: usize = 36;

/// Sub-sample resolution of the [`HalfCycle`] window positions: they count 1/256 of a sample
/// (Q56.8), the same scale as the Urms(1/2) meter's positions (`urms::Pos`).
pub const POS_ONE: u64 = 256;

/// One pqlink frame. The variant index is the frame kind on the wire (a one-byte postcard varint):
/// `Hello` = 0, `HalfCycle` = 1, `Capture` = 2, `Heartbeat` = 3 (all since version 1),
/// `Phases` = 4 (since version 2). New kinds are only ever appended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Frame {
    /// Who the node is and how to read its numbers; sent at boot and every 10 s.
    Hello(Hello),
    /// One Urms(1/2) value per channel, one frame per half cycle.
    HalfCycle(HalfCycle),
    /// Part of a raw waveform capture around an event; sent only in spare link time.
    Capture(Capture),
    /// Liveness and counters; sent once per second.
    Heartbeat(Heartbeat),
    /// Each channel's phase angle; sent once per second, right after the heartbeat. Since
    /// protocol version 2.
    Phases(Phases),
}

/// The kind of a [`Frame`], without its contents (for counters and scheduling).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// [`Frame::Hello`].
    Hello,
    /// [`Frame::HalfCycle`].
    HalfCycle,
    /// [`Frame::Capture`].
    Capture,
    /// [`Frame::Heartbeat`].
    Heartbeat,
    /// [`Frame::Phases`].
    Phases,
}

impl Frame {
    /// The kind of this frame.
    pub fn kind(&self) -> FrameKind {
        match self {
            Frame::Hello(_) => FrameKind::Hello,
            Frame::HalfCycle(_) => FrameKind::HalfCycle,
            Frame::Capture(_) => FrameKind::Capture,
            Frame::Heartbeat(_) => FrameKind::Heartbeat,
            Frame::Phases(_) => FrameKind::Phases,
        }
    }

    /// The first protocol version that has this frame's kind: a frame whose header says an
    /// older version cannot carry it.
    pub fn since_version(&self) -> u8 {
        match self {
            Frame::Hello(_) | Frame::HalfCycle(_) | Frame::Capture(_) | Frame::Heartbeat(_) => 1,
            Frame::Phases(_) => 2,
        }
    }
}

/// A firmware version, `major.minor.patch`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmwareVersion {
    /// Major version.
    pub major: u8,
    /// Minor version.
    pub minor: u8,
    /// Patch version.
    pub patch: u8,
}

/// One entry of the node's channel map.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelInfo {
    /// Channel name, e.g. `"VA"`, `"VB"`, `"VC"`, `"VN"` (at most 8 UTF-8 bytes).
    pub name: String<CHANNEL_NAME_LEN>,
    /// Volts represented by one node unit of this channel: a [`ChannelReading::urms`] of `u`
    /// is `u × volts_per_unit` volts RMS, and a [`Capture`] sample `s` is `s × volts_per_unit`
    /// volts instantaneous.
    pub volts_per_unit: f32,
}

/// `Hello`: who the node is and how to read its numbers.
///
/// Sent when the node boots, when its configuration changes, and every 10 s so that a receiver that
/// starts (or restarts) mid-stream learns the channel map within 10 s.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// The pqlink version the node speaks (the same value as every frame's header byte).
    pub protocol_version: u8,
    /// The node's firmware version.
    pub firmware: FirmwareVersion,
    /// The node's identity (unique per installation, e.g. derived from the flash unique id).
    pub node_id: u32,
    /// The channels, in the order [`HalfCycle::channels`] and [`Capture::samples`] use.
    pub channels: Vec<ChannelInfo, MAX_CHANNELS>,
    /// Nominal system frequency in Hz: 50 or 60.
    pub nominal_hz: u8,
    /// Sampling rate in samples per second (per channel; all channels are sampled together).
    pub sample_rate_hz: u32,
}

/// Per-channel status bits of a [`ChannelReading`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChannelFlags(pub u8);

impl ChannelFlags {
    /// No flag set: a normal, locked, unclipped measurement.
    pub const NONE: ChannelFlags = ChannelFlags(0);
    /// A sample in the window reached the ADC's full scale; the value may read low.
    pub const CLIPPING: ChannelFlags = ChannelFlags(1 << 0);
    /// Zero-crossing lock lost: the window is free-running at the last tracked frequency (as in an
    /// interruption), not bounded by real fundamental zero crossings.
    pub const UNLOCKED: ChannelFlags = ChannelFlags(1 << 1);
    /// The ADC reported an error (bad SPI CRC, missed data-ready) for a sample in the window.
    pub const ADC_ERROR: ChannelFlags = ChannelFlags(1 << 2);
    /// Samples were missing in the window (e.g. an ADC frame was dropped) and were bridged.
    pub const GAP: ChannelFlags = ChannelFlags(1 << 3);

    /// Whether every bit of `other` is set in `self`.
    pub const fn contains(self, other: ChannelFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// `self` with the bits of `other` added.
    pub const fn with(self, other: ChannelFlags) -> ChannelFlags {
        ChannelFlags(self.0 | other.0)
    }

    /// Whether no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// One channel's part of a [`HalfCycle`] frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelReading {
    /// Urms(1/2) over the window, in node units (volts = `urms ×`
    /// [`ChannelInfo::volts_per_unit`]), rounded to the nearest unit.
    pub urms: u32,
    /// Status of this channel over the window.
    pub flags: ChannelFlags,
}

/// `HalfCycle`: one Urms(1/2) measurement (IEC 61000-4-30: RMS over one fundamental cycle,
/// refreshed every half cycle) for every channel.
///
/// The window is `[window_start(), window_end)` on the node's sample clock, in 1/256 of a sample:
/// sample `k` is at position `k × 256`. Start and end are exact (the node interpolates fundamental
/// zero crossings to 1/256 sample), so the receiver can place the window in time as
/// `position / 256 / sample_rate_hz` seconds after the node's first sample.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HalfCycle {
    /// Half-cycle sequence number: +1 for every half cycle the node measured, whether or not its
    /// frame was sent, so a gap tells the receiver how many were lost. Wraps at `u32::MAX`.
    /// Fixed 4 bytes on the wire (a wrapping counter spends most of its life above 2^28, where a
    /// varint would take 5).
    #[serde(with = "postcard::fixint::le")]
    pub seq: u32,
    /// End of the Urms(1/2) window, in 1/256 sample since the node's first sample (Q56.8).
    pub window_end: u64,
    /// Length of the window in 1/256 sample (one measured fundamental cycle).
    pub window_len: u32,
    /// Fundamental frequency tracked over the window, in mHz (50 Hz = 50 000).
    pub freq_mhz: u32,
    /// One reading per channel, in the order of [`Hello::channels`].
    pub channels: Vec<ChannelReading, MAX_CHANNELS>,
}

impl HalfCycle {
    /// Start of the window, in 1/256 sample: `window_end − window_len`.
    pub fn window_start(&self) -> u64 {
        self.window_end.wrapping_sub(u64::from(self.window_len))
    }

    /// Start of the window in seconds of sample clock, for a node sampling at `sample_rate_hz`.
    pub fn start_seconds(&self, sample_rate_hz: u32) -> f64 {
        pos_to_seconds(self.window_start(), sample_rate_hz)
    }

    /// End of the window in seconds of sample clock, for a node sampling at `sample_rate_hz`.
    pub fn end_seconds(&self, sample_rate_hz: u32) -> f64 {
        pos_to_seconds(self.window_end, sample_rate_hz)
    }
}

/// Seconds of sample clock at position `pos` (1/256 sample) for `sample_rate_hz`.
fn pos_to_seconds(pos: u64, sample_rate_hz: u32) -> f64 {
    // Split whole samples from the fraction so that large positions keep full precision.
    let whole = (pos / POS_ONE) as f64;
    let frac = (pos % POS_ONE) as f64 / POS_ONE as f64;
    (whole + frac) / f64::from(sample_rate_hz.max(1))
}

/// `Capture`: one part of a raw waveform capture around an event.
///
/// A capture of `n` sample instants × `channel_count` channels is cut into `part_count` frames of
/// at most [`CAPTURE_MAX_SAMPLES`] values each. Capture frames have the lowest priority: the node
/// sends one only when no `HalfCycle` frame is waiting and the link budget has room (see
/// `PROTOCOL.md`, "Interleaving").
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Capture {
    /// Identity of the capture (increments per capture, wraps); all its parts share it.
    pub capture_id: u32,
    /// Index of this part, `0..part_count`.
    pub part: u16,
    /// Number of parts of the whole capture.
    pub part_count: u16,
    /// Sample index (whole samples since the node's first sample) of this part's first instant.
    pub first_sample: u64,
    /// Channels per sample instant (1..=4), in the order of [`Hello::channels`].
    pub channel_count: u8,
    /// Raw samples in node units, interleaved by instant: `[i0c0, i0c1, i0c2, i1c0, ...]`.
    /// Its length is a multiple of `channel_count`.
    pub samples: Vec<i32, CAPTURE_MAX_SAMPLES>,
}

impl Capture {
    /// Number of whole sample instants in this part.
    pub fn instants(&self) -> usize {
        if self.channel_count == 0 {
            0
        } else {
            self.samples.len() / usize::from(self.channel_count)
        }
    }
}

/// Node-wide status bits of a [`Heartbeat`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeStatus(pub u16);

impl NodeStatus {
    /// All is well.
    pub const OK: NodeStatus = NodeStatus(0);
    /// The ADC is not delivering valid frames (reset failed, bad id, persistent CRC errors).
    pub const ADC_FAULT: NodeStatus = NodeStatus(1 << 0);
    /// At least one channel is free-running (no zero-crossing lock).
    pub const UNLOCKED: NodeStatus = NodeStatus(1 << 1);
    /// At least one channel clipped since the last heartbeat.
    pub const CLIPPING: NodeStatus = NodeStatus(1 << 2);
    /// Captures are waiting for link time.
    pub const CAPTURE_BACKLOG: NodeStatus = NodeStatus(1 << 3);
    /// The UART transmit queue overflowed since the last heartbeat.
    pub const TX_OVERRUN: NodeStatus = NodeStatus(1 << 4);
    /// The node's last reset was caused by its watchdog.
    pub const WATCHDOG_RESET: NodeStatus = NodeStatus(1 << 5);

    /// Whether every bit of `other` is set in `self`.
    pub const fn contains(self, other: NodeStatus) -> bool {
        self.0 & other.0 == other.0
    }

    /// `self` with the bits of `other` added.
    pub const fn with(self, other: NodeStatus) -> NodeStatus {
        NodeStatus(self.0 | other.0)
    }
}

/// `Heartbeat`: liveness and counters, once per second.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Heartbeat sequence number (+1 per heartbeat, wraps). Fixed 4 bytes on the wire.
    #[serde(with = "postcard::fixint::le")]
    pub seq: u32,
    /// Milliseconds since the node booted.
    pub uptime_ms: u64,
    /// Frames of every kind the node has handed to its UART since boot (wraps).
    pub frames_sent: u32,
    /// `HalfCycle` frames the node measured but could not send (transmit queue full) since boot.
    pub half_cycles_dropped: u32,
    /// Captures abandoned (not sent, or only partly sent) since boot.
    pub captures_dropped: u32,
    /// ADC frames rejected (SPI CRC mismatch, missed data-ready) since boot.
    pub adc_errors: u32,
    /// Node-wide status bits.
    pub status: NodeStatus,
}

/// `Phases`: each channel's phase angle, for commissioning (is the supply ABC or ACB, is a phase
/// missing?). Sent once per second, right after the [`Heartbeat`]. Since protocol version 2.
///
/// An angle is how far the channel's fundamental **lags channel 0's**, in hundredths of a degree,
/// in (−18 000, 18 000]: channel 0 itself is 0; a balanced ABC supply on channels A, B, C reads
/// `[0, 12 000, −12 000]` and an ACB one `[0, −12 000, 12 000]`. The node measures them from each
/// channel's latest rising fundamental zero crossing against channel 0's (see
/// `urms::UrmsMeter::phase_angles`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phases {
    /// The `seq` the node's next [`HalfCycle`] frame carries when the angles were read: they are
    /// from zero crossings before that half cycle's window ended. Fixed 4 bytes on the wire, like
    /// `HalfCycle::seq`.
    #[serde(with = "postcard::fixint::le")]
    pub seq: u32,
    /// One angle per channel, in the order of [`Hello::channels`], in hundredths of a degree;
    /// [`Phases::NO_FUNDAMENTAL`] when the channel has no fundamental (dead or missing phase),
    /// and on every channel when channel 0 has none. Zigzag varints: 1 to 3 bytes each.
    pub angles_cdeg: Vec<i16, MAX_CHANNELS>,
}

impl Phases {
    /// The angle of a channel with no fundamental to measure: `i16::MIN`, which no angle in
    /// (−18 000, 18 000] can be.
    pub const NO_FUNDAMENTAL: i16 = i16::MIN;

    /// A frame for `seq` from angles as the meter gives them (`None`: no fundamental); at most
    /// [`MAX_CHANNELS`] are kept.
    pub fn from_angles(seq: u32, angles: &[Option<i16>]) -> Self {
        Phases {
            seq,
            angles_cdeg: angles
                .iter()
                .take(MAX_CHANNELS)
                .map(|a| a.unwrap_or(Self::NO_FUNDAMENTAL))
                .collect(),
        }
    }

    /// Channel `ch`'s angle in hundredths of a degree, `None` when it has no fundamental or the
    /// frame has no such channel.
    pub fn angle(&self, ch: usize) -> Option<i16> {
        self.angles_cdeg
            .get(ch)
            .copied()
            .filter(|a| *a != Self::NO_FUNDAMENTAL)
    }

    /// Every channel's angle (`None`: no fundamental, or no such channel).
    pub fn angles(&self) -> [Option<i16>; MAX_CHANNELS] {
        core::array::from_fn(|ch| self.angle(ch))
    }
}
