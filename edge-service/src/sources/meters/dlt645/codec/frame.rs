//! The link layer: one frame is
//!
//! ```text
//! [FE FE FE FE]  68  A0 A1 A2 A3 A4 A5  68  C  L  D0 … D(L-1)  CS  16
//! wake-up (opt.)     address, A0 first      ctl len data +33 each  sum of 68…data mod 256
//! ```
//!
//! [`Frame`] holds a frame with its data already stripped of the `33` offset; [`Frame::encode`]
//! and [`Frame::decode`] convert one whole frame; [`scan`] and [`FrameBuffer`] find frames in a
//! stream of serial reads that may split or join frames and carry garbage.

use super::Error;
use std::fmt;
use std::str::FromStr;

/// Frame start byte.
pub const START: u8 = 0x68;
/// Frame end byte.
pub const END: u8 = 0x16;
/// Wake-up byte sent before a frame (any number may precede one).
pub const WAKE_UP_BYTE: u8 = 0xFE;
/// The usual wake-up preamble: four `FE`.
pub const WAKE_UP: [u8; 4] = [WAKE_UP_BYTE; 4];
/// Added to every data byte on the wire (and removed on receipt).
pub const DATA_OFFSET: u8 = 0x33;
/// Bytes of a frame around its data: 68, address, 68, C, L, CS, 16.
pub const OVERHEAD: usize = 12;

/// A meter address: six bytes of two BCD digits, kept in wire order (A0, the lowest two digits,
/// first). It parses from and prints as the twelve digits on the nameplate, most significant
/// first: nameplate `123456789012` is `12 90 78 56 34 12` on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address(pub [u8; 6]);

impl Address {
    /// `AA AA AA AA AA AA`: any meter answers (read-address `13` to a meter alone on the bus).
    pub const WILDCARD: Address = Address([0xAA; 6]);
    /// `99 99 99 99 99 99`: every meter listens, none answers (broadcast time set `08`).
    pub const BROADCAST: Address = Address([0x99; 6]);

    /// The address from its wire bytes, A0 first.
    pub fn from_wire(bytes: [u8; 6]) -> Address {
        Address(bytes)
    }

    /// The wire bytes, A0 first.
    pub fn wire(self) -> [u8; 6] {
        self.0
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.iter().rev() {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

/// Why a text is not a meter address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a meter address: expected the 12 digits on the nameplate, e.g. 123456789012")]
pub struct AddressParseError(pub String);

impl FromStr for Address {
    type Err = AddressParseError;

    fn from_str(s: &str) -> Result<Address, AddressParseError> {
        let digits: Vec<u8> = s.bytes().filter(|b| !matches!(b, b' ' | b'-')).collect();
        if digits.len() != 12 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(AddressParseError(s.to_string()));
        }
        let mut wire = [0u8; 6];
        for (i, pair) in digits.chunks(2).enumerate() {
            // Nameplate pair 0 is the most significant: A5, the last on the wire.
            wire[5 - i] = ((pair[0] - b'0') << 4) | (pair[1] - b'0');
        }
        Ok(Address(wire))
    }
}

/// A data identifier as the standard writes it, DI3 DI2 DI1 DI0: `0x0201_0100` is phase-A
/// voltage. On the wire it travels DI0 first (and, like all data, plus `33`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Di(pub u32);

impl Di {
    /// The four wire bytes, DI0 first, without the offset.
    pub fn to_wire(self) -> [u8; 4] {
        self.0.to_le_bytes()
    }

    /// From four wire bytes, DI0 first, offset already removed.
    pub fn from_wire(bytes: [u8; 4]) -> Di {
        Di(u32::from_le_bytes(bytes))
    }

    /// DI3, the data class: 00 energy, 01 demand, 02 variables, 03 events, 04 parameters,
    /// 05 frozen data, 06 load profile.
    pub fn class(self) -> u8 {
        (self.0 >> 24) as u8
    }
}

impl fmt::Display for Di {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08X}", self.0)
    }
}

impl fmt::Debug for Di {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Di({self})")
    }
}

/// Why a text is not a data identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a data identifier: expected 8 hex digits DI3 DI2 DI1 DI0, e.g. 02010100")]
pub struct DiParseError(pub String);

impl FromStr for Di {
    type Err = DiParseError;

    fn from_str(s: &str) -> Result<Di, DiParseError> {
        let hex: String = s.chars().filter(|c| *c != ' ').collect();
        if hex.len() != 8 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(DiParseError(s.to_string()));
        }
        u32::from_str_radix(&hex, 16)
            .map(Di)
            .map_err(|_| DiParseError(s.to_string()))
    }
}

/// Function codes (control-code bits D4–D0) this crate uses.
pub mod function {
    /// `08`: broadcast time set (to `99…99`, no reply).
    pub const BROADCAST_TIME: u8 = 0x08;
    /// `11`: read data.
    pub const READ_DATA: u8 = 0x11;
    /// `12`: read follow-up data (the next frame of a multi-frame reply).
    pub const READ_FOLLOW_UP: u8 = 0x12;
    /// `13`: read communication address.
    pub const READ_ADDRESS: u8 = 0x13;
}

/// The control code C. D7: direction (1 = reply from the meter); D6: abnormal reply (the meter
/// refuses, one error byte follows); D5: follow-up frames exist; D4–D0: function.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Control(pub u8);

impl Control {
    const REPLY: u8 = 0x80;
    const ABNORMAL: u8 = 0x40;
    const FOLLOW_UP: u8 = 0x20;

    /// A request (master to meter) for `function`.
    pub const fn request(function: u8) -> Control {
        Control(function & 0x1F)
    }

    /// The normal reply to `function` (`11` → `91`), with D5 set when more frames follow.
    pub const fn reply(function: u8, more: bool) -> Control {
        Control(Self::REPLY | (function & 0x1F) | if more { Self::FOLLOW_UP } else { 0 })
    }

    /// The abnormal reply to `function` (`11` → `D1`).
    pub const fn error_reply(function: u8) -> Control {
        Control(Self::REPLY | Self::ABNORMAL | (function & 0x1F))
    }

    /// D4–D0.
    pub fn function(self) -> u8 {
        self.0 & 0x1F
    }

    /// D7: sent by a meter.
    pub fn is_reply(self) -> bool {
        self.0 & Self::REPLY != 0
    }

    /// D6: the meter refuses (abnormal reply).
    pub fn is_abnormal(self) -> bool {
        self.0 & Self::ABNORMAL != 0
    }

    /// D5: more frames follow (read them with function `12`).
    pub fn has_follow_up(self) -> bool {
        self.0 & Self::FOLLOW_UP != 0
    }
}

impl fmt::Debug for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Control({:02X})", self.0)
    }
}

/// One frame, data without the `33` offset.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Frame {
    /// The meter it is to or from.
    pub address: Address,
    /// The control code.
    pub control: Control,
    /// The data field as meant (the codec adds and removes the `33` offset).
    pub data: Vec<u8>,
}

impl Frame {
    /// The frame on the wire, without wake-up bytes.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let len = u8::try_from(self.data.len()).map_err(|_| Error::DataTooLong {
            len: self.data.len(),
        })?;
        let mut out = Vec::with_capacity(OVERHEAD + self.data.len());
        out.push(START);
        out.extend_from_slice(&self.address.0);
        out.push(START);
        out.push(self.control.0);
        out.push(len);
        out.extend(self.data.iter().map(|b| b.wrapping_add(DATA_OFFSET)));
        out.push(checksum(&out));
        out.push(END);
        Ok(out)
    }

    /// The frame on the wire after the usual four `FE` wake-up bytes.
    pub fn encode_with_wake_up(&self) -> Result<Vec<u8>, Error> {
        let mut out = WAKE_UP.to_vec();
        out.extend(self.encode()?);
        Ok(out)
    }

    /// Decodes exactly one frame: any number of leading `FE`, then the frame, nothing after.
    pub fn decode(bytes: &[u8]) -> Result<Frame, Error> {
        let start = bytes
            .iter()
            .position(|&b| b != WAKE_UP_BYTE)
            .unwrap_or(bytes.len());
        let bytes = &bytes[start..];
        // Say what is wrong with the bytes there are before saying that some are missing.
        if let Some(&b) = bytes.first() {
            if b != START {
                return Err(Error::BadStart { found: b });
            }
        }
        if let Some(&b) = bytes.get(7) {
            if b != START {
                return Err(Error::BadSecondStart { found: b });
            }
        }
        let Some(&declared) = bytes.get(9) else {
            return Err(Error::Truncated {
                needed: OVERHEAD,
                got: bytes.len(),
            });
        };
        let declared = declared as usize;
        let needed = OVERHEAD + declared;
        let ends_like_a_frame = bytes.len() >= OVERHEAD && bytes.last() == Some(&END);
        if bytes.len() > needed || (bytes.len() < needed && ends_like_a_frame) {
            // A whole frame (it ends in 16) whose length byte disagrees with its size.
            return Err(Error::BadLength {
                declared,
                actual: bytes.len().saturating_sub(OVERHEAD),
            });
        }
        if bytes.len() < needed {
            return Err(Error::Truncated {
                needed,
                got: bytes.len(),
            });
        }
        decode_exact(bytes)
    }
}

/// Sum mod 256, as the frame checksum.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |sum, b| sum.wrapping_add(*b))
}

/// Decodes `bytes`, which must be exactly `OVERHEAD + L` long (checked by the callers).
fn decode_exact(bytes: &[u8]) -> Result<Frame, Error> {
    if bytes[0] != START {
        return Err(Error::BadStart { found: bytes[0] });
    }
    if bytes[7] != START {
        return Err(Error::BadSecondStart { found: bytes[7] });
    }
    let len = bytes[9] as usize;
    let cs_at = 10 + len;
    let expected = checksum(&bytes[..cs_at]);
    if bytes[cs_at] != expected {
        return Err(Error::BadChecksum {
            expected,
            got: bytes[cs_at],
        });
    }
    if bytes[cs_at + 1] != END {
        return Err(Error::BadEndByte {
            found: bytes[cs_at + 1],
        });
    }
    let mut address = [0u8; 6];
    address.copy_from_slice(&bytes[1..7]);
    Ok(Frame {
        address: Address(address),
        control: Control(bytes[8]),
        data: bytes[10..cs_at]
            .iter()
            .map(|b| b.wrapping_sub(DATA_OFFSET))
            .collect(),
    })
}

/// What [`scan`] found at the front of a buffer.
#[derive(Debug, Clone, PartialEq)]
pub enum Scan {
    /// A whole valid frame; `buf[..consumed]` is used up, of which `skipped` bytes before the
    /// frame were wake-up bytes or garbage.
    Frame {
        /// The frame.
        frame: Frame,
        /// Bytes before the frame's `68`.
        skipped: usize,
        /// Bytes to remove from the front of the buffer.
        consumed: usize,
    },
    /// Bytes at `skipped` had a frame's shape and length but are not a valid frame: drop `drop`
    /// bytes (through that `68`) and scan again, in case a real frame starts inside.
    Bad {
        /// Why the candidate is not a frame.
        error: Error,
        /// Bytes before the candidate's `68`.
        skipped: usize,
        /// Bytes to remove from the front of the buffer.
        drop: usize,
    },
    /// No whole frame yet: `buf[..drop]` can never be part of one; keep the rest, read more.
    Incomplete {
        /// Bytes to remove from the front of the buffer.
        drop: usize,
    },
}

enum Candidate {
    NotAFrame,
    Incomplete,
    Complete(usize),
}

/// The shape of a possible frame starting at `b[0] == 68`.
fn candidate(b: &[u8]) -> Candidate {
    match b.get(7) {
        Some(&s) if s != START => return Candidate::NotAFrame,
        Some(_) => {}
        None => return Candidate::Incomplete,
    }
    match b.get(9) {
        None => Candidate::Incomplete,
        Some(&len) => {
            let total = OVERHEAD + len as usize;
            if b.len() < total {
                Candidate::Incomplete
            } else {
                Candidate::Complete(total)
            }
        }
    }
}

/// Finds the first frame in `buf`, which may begin with garbage or wake-up bytes and may end in
/// the middle of a frame. Pure: the caller removes the bytes it is told to.
///
/// A `68` that is not followed by a second `68` seven bytes on is garbage and skipped silently.
/// A candidate whose length is not all there yet waits for more bytes, unless a whole valid
/// frame already follows it (then the candidate was noise and is skipped): a noise `68` with a
/// large length byte must not hold a real reply back until the timeout.
pub fn scan(buf: &[u8]) -> Scan {
    let mut waiting: Option<usize> = None;
    let mut i = 0;
    while let Some(p) = buf[i..].iter().position(|&b| b == START) {
        i += p;
        match candidate(&buf[i..]) {
            Candidate::NotAFrame => {}
            Candidate::Incomplete => {
                waiting.get_or_insert(i);
            }
            Candidate::Complete(total) => match decode_exact(&buf[i..i + total]) {
                Ok(frame) => {
                    return Scan::Frame {
                        frame,
                        skipped: i,
                        consumed: i + total,
                    }
                }
                Err(error) => {
                    if waiting.is_none() {
                        return Scan::Bad {
                            error,
                            skipped: i,
                            drop: i + 1,
                        };
                    }
                    // An earlier candidate may still complete: report nothing for this one yet.
                }
            },
        }
        i += 1;
    }
    Scan::Incomplete {
        drop: waiting.unwrap_or(buf.len()),
    }
}

/// A receive buffer: push what the port gives, take frames out. Garbage is dropped as it is
/// recognised; bad candidates come out as errors (one per candidate) so they can be counted.
#[derive(Debug, Default)]
pub struct FrameBuffer {
    buf: Vec<u8>,
    discarded: u64,
}

impl FrameBuffer {
    /// The most bytes kept while waiting for a frame to complete: a frame is at most 12 + 255
    /// bytes (plus wake-up bytes), so more than four frames' worth is garbage.
    pub const MAX_BUFFERED: usize = 1100;

    /// An empty buffer.
    pub fn new() -> FrameBuffer {
        FrameBuffer::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() > Self::MAX_BUFFERED {
            let excess = self.buf.len() - Self::MAX_BUFFERED;
            self.drop_front(excess);
        }
    }

    /// The next frame, or the next bad candidate, or `None` until more bytes arrive.
    pub fn next_frame(&mut self) -> Option<Result<Frame, Error>> {
        match scan(&self.buf) {
            Scan::Frame {
                frame,
                skipped,
                consumed,
            } => {
                self.drop_front(skipped);
                self.buf.drain(..consumed - skipped);
                Some(Ok(frame))
            }
            Scan::Bad { error, drop, .. } => {
                self.drop_front(drop);
                Some(Err(error))
            }
            Scan::Incomplete { drop } => {
                self.drop_front(drop);
                None
            }
        }
    }

    /// Forgets everything buffered (e.g. the rest of a reply that came too late); returns how
    /// many bytes that was.
    pub fn clear(&mut self) -> usize {
        let n = self.buf.len();
        self.drop_front(n);
        n
    }

    /// Bytes waiting for the rest of a frame.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Bytes thrown away so far, other than wake-up bytes.
    pub fn discarded(&self) -> u64 {
        self.discarded
    }

    fn drop_front(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        let garbage = self.buf[..n].iter().filter(|&&b| b != WAKE_UP_BYTE).count();
        self.discarded += garbage as u64;
        self.buf.drain(..n);
    }
}
