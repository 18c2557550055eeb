//! Wire encoding: `COBS(header ‖ postcard payload ‖ CRC-32) 0x00`, and the streaming decoder.

use core::fmt;

use crc::{Crc, CRC_32_ISO_HDLC};

use super::frame::Frame;

/// The protocol version this build speaks; the first byte of every frame (before COBS).
///
/// Version 2 appended the `Phases` frame (kind 4) to version 1; nothing else changed.
pub const PROTOCOL_VERSION: u8 = 2;

/// The oldest protocol version this build still decodes. Versions only append, so a frame of
/// any version from this one up to [`PROTOCOL_VERSION`] decodes with this build's types (nodes
/// with older firmware keep working after the edge is upgraded).
pub const MIN_PROTOCOL_VERSION: u8 = 1;

/// Bytes of header before the postcard payload: just the protocol version.
pub const HEADER_LEN: usize = 1;

/// Bytes of the CRC-32 trailer (little-endian) after the payload.
pub const CRC_LEN: usize = 4;

/// The frame delimiter on the wire. COBS guarantees it appears nowhere inside a frame.
pub const DELIMITER: u8 = 0x00;

/// Longest frame on the wire, delimiter included. Every frame this version can express fits
/// (`tests/pqlink_budget.rs` checks the worst case of every kind).
pub const MAX_WIRE_LEN: usize = 256;

/// Longest `header ‖ payload ‖ CRC` before COBS: COBS adds one byte to anything up to 254 bytes,
/// and the delimiter one more, which makes [`MAX_WIRE_LEN`].
pub const MAX_RAW_LEN: usize = 254;

/// Size of the [`Decoder`]'s buffer: frames longer than this (COBS bytes, delimiter excluded)
/// are discarded as [`DecodeError::Oversize`]. Twice [`MAX_WIRE_LEN`], leaving room for future
/// versions that append fields.
pub const DECODER_BUFFER_LEN: usize = 512;

const _: () = assert!(cobs::max_encoding_length(MAX_RAW_LEN) < MAX_WIRE_LEN);
const _: () = assert!(MAX_WIRE_LEN <= DECODER_BUFFER_LEN);

/// CRC-32/ISO-HDLC (the zlib / Ethernet CRC: poly 0x04C11DB7 reflected, init and xorout
/// 0xFFFFFFFF; check value of `"123456789"` is 0xCBF43926).
pub const CRC: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

/// Why [`encode`] failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The output buffer cannot hold the wire frame; `needed` bytes always suffice.
    BufferTooSmall {
        /// Bytes that are always enough for this frame (the COBS worst case plus the delimiter).
        needed: usize,
        /// Length of the buffer that was given.
        available: usize,
    },
    /// The frame's header, payload and CRC exceed [`MAX_RAW_LEN`] bytes.
    FrameTooLarge,
    /// postcard refused to serialise the frame.
    Postcard(postcard::Error),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::BufferTooSmall { needed, available } => write!(
                f,
                "pqlink encode: output buffer of {available} bytes is too small ({needed} needed)"
            ),
            EncodeError::FrameTooLarge => write!(
                f,
                "pqlink encode: frame exceeds {MAX_RAW_LEN} bytes before COBS"
            ),
            EncodeError::Postcard(e) => write!(f, "pqlink encode: postcard error: {e}"),
        }
    }
}

impl core::error::Error for EncodeError {}

/// Why a received frame was rejected. After any of these the [`Decoder`] has already dropped the
/// frame and resumes with the byte after its delimiter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// More than `limit` bytes arrived without a delimiter (garbage, or a lost delimiter that
    /// merged frames); everything up to the next 0x00 was discarded.
    Oversize {
        /// The decoder's buffer size, [`DECODER_BUFFER_LEN`].
        limit: usize,
    },
    /// The bytes between two delimiters are not valid COBS.
    Cobs,
    /// After COBS decoding, `len` bytes are too few for header, frame kind and CRC.
    Truncated {
        /// Decoded length in bytes.
        len: usize,
    },
    /// The CRC-32 trailer does not match the header and payload: the frame was damaged.
    Crc {
        /// CRC-32 computed over the received header and payload.
        expected: u32,
        /// CRC-32 carried in the frame's trailer.
        got: u32,
    },
    /// The frame is intact but speaks a protocol version this build does not know (newer than
    /// [`PROTOCOL_VERSION`], or older than [`MIN_PROTOCOL_VERSION`]).
    UnsupportedVersion(u8),
    /// The frame is intact but its payload is not a valid frame of the version in its header
    /// (including a frame kind that version does not have, such as `Phases` in version 1).
    Postcard(postcard::Error),
    /// The frame is intact but `n` bytes follow the end of the payload.
    TrailingBytes(usize),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Oversize { limit } => write!(
                f,
                "pqlink decode: frame longer than {limit} bytes without a 0x00 delimiter, discarded"
            ),
            DecodeError::Cobs => write!(f, "pqlink decode: invalid COBS encoding"),
            DecodeError::Truncated { len } => write!(
                f,
                "pqlink decode: frame of {len} bytes is shorter than header, kind and CRC ({} bytes)",
                MIN_RAW_LEN
            ),
            DecodeError::Crc { expected, got } => write!(
                f,
                "pqlink decode: CRC mismatch (computed {expected:#010x}, frame carries {got:#010x})"
            ),
            DecodeError::UnsupportedVersion(v) => write!(
                f,
                "pqlink decode: unsupported protocol version {v} (this build decodes \
                 {MIN_PROTOCOL_VERSION} to {PROTOCOL_VERSION})"
            ),
            DecodeError::Postcard(e) => write!(f, "pqlink decode: malformed payload: {e}"),
            DecodeError::TrailingBytes(n) => {
                write!(f, "pqlink decode: {n} unexpected bytes after the payload")
            }
        }
    }
}

impl core::error::Error for DecodeError {}

/// Shortest valid decoded frame: header, a one-byte frame kind, CRC.
const MIN_RAW_LEN: usize = HEADER_LEN + 1 + CRC_LEN;

/// Encode `frame` as one complete wire frame into `out`, delimiter included.
///
/// Returns the number of bytes written (`out[..n]` is ready for the UART). A buffer of
/// [`MAX_WIRE_LEN`] bytes always suffices. Does not allocate; uses about 260 bytes of stack.
pub fn encode(frame: &Frame, out: &mut [u8]) -> Result<usize, EncodeError> {
    let mut raw = [0u8; MAX_RAW_LEN];
    raw[0] = PROTOCOL_VERSION;
    let payload_len = postcard::to_slice(frame, &mut raw[HEADER_LEN..MAX_RAW_LEN - CRC_LEN])
        .map_err(|e| match e {
            postcard::Error::SerializeBufferFull => EncodeError::FrameTooLarge,
            other => EncodeError::Postcard(other),
        })?
        .len();
    let body_len = HEADER_LEN + payload_len;
    let crc = CRC.checksum(&raw[..body_len]);
    raw[body_len..body_len + CRC_LEN].copy_from_slice(&crc.to_le_bytes());
    let raw_len = body_len + CRC_LEN;

    let too_small = EncodeError::BufferTooSmall {
        needed: cobs::max_encoding_length(raw_len) + 1,
        available: out.len(),
    };
    match cobs::try_encode(&raw[..raw_len], out) {
        Ok(n) if n < out.len() => {
            out[n] = DELIMITER;
            Ok(n + 1)
        }
        _ => Err(too_small),
    }
}

/// Wire length of `frame` (delimiter included), or why it cannot be encoded.
pub fn wire_len(frame: &Frame) -> Result<usize, EncodeError> {
    let mut out = [0u8; MAX_WIRE_LEN];
    encode(frame, &mut out)
}

/// Decode one complete wire frame, as [`encode`] produced it (the trailing 0x00 is optional).
///
/// For a byte stream use [`Decoder`]; this is for frames already split at their delimiters.
pub fn decode(wire: &[u8]) -> Result<Frame, DecodeError> {
    let body = match wire.split_last() {
        Some((&DELIMITER, rest)) => rest,
        _ => wire,
    };
    if body.contains(&DELIMITER) {
        return Err(DecodeError::Cobs);
    }
    let mut buf = [0u8; DECODER_BUFFER_LEN];
    let scratch = buf.get_mut(..body.len()).ok_or(DecodeError::Oversize {
        limit: DECODER_BUFFER_LEN,
    })?;
    scratch.copy_from_slice(body);
    decode_in_place(scratch).map(|(frame, _)| frame)
}

/// Decode the COBS bytes of one frame (delimiter removed), in place; the frame and the protocol
/// version in its header.
fn decode_in_place(cobs_bytes: &mut [u8]) -> Result<(Frame, u8), DecodeError> {
    let n = cobs::decode_in_place(cobs_bytes).map_err(|_| DecodeError::Cobs)?;
    let raw = &cobs_bytes[..n];
    if n < MIN_RAW_LEN {
        return Err(DecodeError::Truncated { len: n });
    }
    let (body, trailer) = raw.split_at(n - CRC_LEN);
    let got = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let expected = CRC.checksum(body);
    if expected != got {
        return Err(DecodeError::Crc { expected, got });
    }
    let version = body[0];
    if !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&version) {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    // Every version only appends to the one before, so this version's types read them all.
    let (frame, rest) =
        postcard::take_from_bytes::<Frame>(&body[HEADER_LEN..]).map_err(DecodeError::Postcard)?;
    if frame.since_version() > version {
        // A kind the header's version does not have: exactly what a receiver of that version
        // would have refused (an unknown enum variant), so it is refused here too.
        return Err(DecodeError::Postcard(postcard::Error::DeserializeBadEnum));
    }
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes(rest.len()));
    }
    Ok((frame, version))
}

/// What a [`Decoder`] has seen since it was created (all counters wrap).
///
/// Every error is one frame dropped and one resynchronisation at the next delimiter, so
/// `resyncs` is the sum of the error counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecoderStats {
    /// Frames decoded successfully.
    pub frames: u32,
    /// Of those, frames of an older protocol version than [`PROTOCOL_VERSION`] (a node running
    /// older firmware: decoded all the same, but it sends no `Phases`).
    pub older_version: u32,
    /// Frames rejected for a CRC mismatch ([`DecodeError::Crc`]).
    pub crc_errors: u32,
    /// Frames rejected as invalid COBS ([`DecodeError::Cobs`]).
    pub cobs_errors: u32,
    /// Frames too short to hold header, kind and CRC ([`DecodeError::Truncated`]).
    pub truncated: u32,
    /// Runs of bytes longer than the buffer ([`DecodeError::Oversize`]).
    pub oversize: u32,
    /// Intact frames of an unknown protocol version ([`DecodeError::UnsupportedVersion`]).
    pub unsupported_version: u32,
    /// Intact frames whose payload did not parse ([`DecodeError::Postcard`],
    /// [`DecodeError::TrailingBytes`]), including a kind their version does not have.
    pub malformed: u32,
    /// Times the decoder dropped a frame and started afresh after the next delimiter.
    pub resyncs: u32,
    /// Bytes (delimiters excluded) that belonged to dropped frames.
    pub bytes_discarded: u32,
}

impl DecoderStats {
    fn record(&mut self, result: &Result<Frame, DecodeError>, bytes: usize) {
        let counter = match result {
            Ok(_) => {
                self.frames = self.frames.wrapping_add(1);
                return;
            }
            Err(DecodeError::Crc { .. }) => &mut self.crc_errors,
            Err(DecodeError::Cobs) => &mut self.cobs_errors,
            Err(DecodeError::Truncated { .. }) => &mut self.truncated,
            Err(DecodeError::Oversize { .. }) => &mut self.oversize,
            Err(DecodeError::UnsupportedVersion(_)) => &mut self.unsupported_version,
            Err(DecodeError::Postcard(_) | DecodeError::TrailingBytes(_)) => &mut self.malformed,
        };
        *counter = counter.wrapping_add(1);
        self.resyncs = self.resyncs.wrapping_add(1);
        self.bytes_discarded = self
            .bytes_discarded
            .wrapping_add(u32::try_from(bytes).unwrap_or(u32::MAX));
    }
}

/// Streaming decoder: feed it the received bytes in any chunks; it yields a frame (or a typed
/// error) at every 0x00 delimiter.
///
/// It holds a fixed [`DECODER_BUFFER_LEN`]-byte buffer and never allocates. After any error it
/// has already resynchronised: the frame is dropped and decoding resumes after the next 0x00, so
/// the first intact frame after damage is decoded. Empty frames (0x00 0x00) are ignored, which lets
/// a sender emit a lone 0x00 to flush a receiver that holds a partial frame.
///
/// ```
/// use kare_firmware::pqlink::{encode, Decoder, Frame, Heartbeat, MAX_WIRE_LEN};
///
/// let mut wire = [0u8; MAX_WIRE_LEN];
/// let n = encode(&Frame::Heartbeat(Heartbeat::default()), &mut wire).unwrap();
///
/// let mut decoder = Decoder::new();
/// let mut frames = 0;
/// for result in decoder.feed(&wire[..n]) {
///     match result {
///         Ok(_frame) => frames += 1,
///         Err(_e) => { /* count it: decoder.stats() does too */ }
///     }
/// }
/// assert_eq!(frames, 1);
/// ```
#[derive(Clone)]
pub struct Decoder {
    buf: [u8; DECODER_BUFFER_LEN],
    len: usize,
    /// Bytes dropped since the buffer overflowed, while waiting for the next delimiter.
    overflowed: Option<usize>,
    stats: DecoderStats,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("pending", &self.pending())
            .field("stats", &self.stats)
            .finish()
    }
}

impl Decoder {
    /// An empty decoder, ready for the first byte of a frame.
    pub const fn new() -> Self {
        Decoder {
            buf: [0; DECODER_BUFFER_LEN],
            len: 0,
            overflowed: None,
            stats: DecoderStats {
                frames: 0,
                older_version: 0,
                crc_errors: 0,
                cobs_errors: 0,
                truncated: 0,
                oversize: 0,
                unsupported_version: 0,
                malformed: 0,
                resyncs: 0,
                bytes_discarded: 0,
            },
        }
    }

    /// Push one received byte. Returns `Some` when `byte` is a delimiter that ends a non-empty
    /// frame: the frame, or why it was rejected.
    pub fn push(&mut self, byte: u8) -> Option<Result<Frame, DecodeError>> {
        if byte != DELIMITER {
            match &mut self.overflowed {
                Some(dropped) => *dropped += 1,
                None if self.len == self.buf.len() => self.overflowed = Some(self.len + 1),
                None => {
                    self.buf[self.len] = byte;
                    self.len += 1;
                }
            }
            return None;
        }
        let len = core::mem::take(&mut self.len);
        let (result, bytes) = match self.overflowed.take() {
            Some(dropped) => (
                Err(DecodeError::Oversize {
                    limit: DECODER_BUFFER_LEN,
                }),
                dropped,
            ),
            None if len == 0 => return None,
            None => {
                let decoded = decode_in_place(&mut self.buf[..len]);
                if matches!(decoded, Ok((_, v)) if v < PROTOCOL_VERSION) {
                    self.stats.older_version = self.stats.older_version.wrapping_add(1);
                }
                (decoded.map(|(frame, _)| frame), len)
            }
        };
        self.stats.record(&result, bytes);
        Some(result)
    }

    /// Feed a chunk of received bytes; the returned iterator yields every frame (or error) the
    /// chunk completes, in order. Bytes of a frame still incomplete at the end of the chunk are
    /// kept for the next call. Dropping the iterator early leaves the rest of the chunk unread
    /// (see [`Feed::remaining`]).
    pub fn feed<'d, 'b>(&'d mut self, bytes: &'b [u8]) -> Feed<'d, 'b> {
        Feed {
            decoder: self,
            bytes,
        }
    }

    /// Drop any partial frame (e.g. after a UART framing error or break). The next byte starts
    /// a new frame. Counters are kept.
    pub fn clear(&mut self) {
        self.len = 0;
        self.overflowed = None;
    }

    /// Bytes of the current, incomplete frame held so far.
    pub fn pending(&self) -> usize {
        self.overflowed.unwrap_or(self.len)
    }

    /// What the decoder has seen so far.
    pub fn stats(&self) -> &DecoderStats {
        &self.stats
    }

    /// Zero the counters.
    pub fn reset_stats(&mut self) {
        self.stats = DecoderStats::default();
    }
}

/// Iterator over the frames a chunk of bytes completes; see [`Decoder::feed`].
#[derive(Debug)]
pub struct Feed<'d, 'b> {
    decoder: &'d mut Decoder,
    bytes: &'b [u8],
}

impl<'b> Feed<'_, 'b> {
    /// The bytes of the chunk not yet pushed into the decoder.
    pub fn remaining(&self) -> &'b [u8] {
        self.bytes
    }
}

impl Iterator for Feed<'_, '_> {
    type Item = Result<Frame, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        while let Some((&byte, rest)) = self.bytes.split_first() {
            self.bytes = rest;
            if let Some(result) = self.decoder.push(byte) {
                return Some(result);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pqlink::frame::*;

    fn heartbeat(seq: u32) -> Frame {
        Frame::Heartbeat(Heartbeat {
            seq,
            uptime_ms: 1234,
            frames_sent: 99,
            ..Default::default()
        })
    }

    #[test]
    fn crc_is_iso_hdlc() {
        assert_eq!(CRC.checksum(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn wire_frame_layout() {
        let mut out = [0u8; MAX_WIRE_LEN];
        let n = encode(&heartbeat(7), &mut out).unwrap();
        assert_eq!(out[n - 1], 0);
        assert!(!out[..n - 1].contains(&0));
        let mut raw = [0u8; MAX_WIRE_LEN];
        let m = cobs::decode(&out[..n - 1], &mut raw).unwrap();
        assert_eq!(raw[0], PROTOCOL_VERSION);
        assert_eq!(raw[1], 3, "Heartbeat is variant 3");
        assert_eq!(
            &raw[2..6],
            &7u32.to_le_bytes(),
            "seq is fixint little-endian"
        );
        let crc = CRC.checksum(&raw[..m - 4]);
        assert_eq!(&raw[m - 4..m], &crc.to_le_bytes());
    }

    #[test]
    fn small_buffer_is_an_error_not_a_panic() {
        let frame = heartbeat(1);
        let n = wire_len(&frame).unwrap();
        for size in 0..n {
            let mut out = [0u8; MAX_WIRE_LEN];
            let err = encode(&frame, &mut out[..size]).unwrap_err();
            assert!(
                matches!(err, EncodeError::BufferTooSmall { .. }),
                "{size}: {err}"
            );
        }
    }

    #[test]
    fn oversize_then_resync() {
        let mut d = Decoder::new();
        for _ in 0..DECODER_BUFFER_LEN + 10 {
            assert!(d.push(0x55).is_none());
        }
        assert_eq!(
            d.push(0),
            Some(Err(DecodeError::Oversize {
                limit: DECODER_BUFFER_LEN
            }))
        );
        assert_eq!(d.stats().bytes_discarded, DECODER_BUFFER_LEN as u32 + 10);
        let mut out = [0u8; MAX_WIRE_LEN];
        let n = encode(&heartbeat(2), &mut out).unwrap();
        let got: heapless::Vec<_, 4> = d.feed(&out[..n]).collect();
        assert_eq!(got.as_slice(), &[Ok(heartbeat(2))]);
        assert_eq!(d.stats().resyncs, 1);
        assert_eq!(d.stats().oversize, 1);
        assert_eq!(d.stats().frames, 1);
    }

    #[test]
    fn empty_frames_are_ignored() {
        let mut d = Decoder::new();
        assert!(d.feed(&[0, 0, 0]).next().is_none());
        assert_eq!(d.stats(), &DecoderStats::default());
    }

    #[test]
    fn unknown_version_is_reported_after_crc() {
        let mut raw = [0u8; 64];
        raw[0] = PROTOCOL_VERSION + 1;
        let n = 1 + postcard::to_slice(&heartbeat(1), &mut raw[1..60])
            .unwrap()
            .len();
        let crc = CRC.checksum(&raw[..n]);
        raw[n..n + 4].copy_from_slice(&crc.to_le_bytes());
        let mut wire = [0u8; 80];
        let m = cobs::encode(&raw[..n + 4], &mut wire);
        assert_eq!(
            decode(&wire[..m]),
            Err(DecodeError::UnsupportedVersion(PROTOCOL_VERSION + 1))
        );
    }

    #[test]
    fn errors_display_clearly() {
        let mut s: heapless::String<160> = heapless::String::new();
        use core::fmt::Write;
        write!(
            s,
            "{}",
            DecodeError::Crc {
                expected: 0x1234_5678,
                got: 0xDEAD_BEEF
            }
        )
        .unwrap();
        assert_eq!(
            s.as_str(),
            "pqlink decode: CRC mismatch (computed 0x12345678, frame carries 0xdeadbeef)"
        );
    }
}
