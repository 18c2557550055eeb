//! What can go wrong between the bytes on the wire and a value, in words a field engineer can act
//! on: every message says what was expected, what came, and the likely cause on a real bus.

use super::{Address, Di};
use std::fmt;

/// The error byte of an abnormal reply (control code with D6 set, e.g. `D1`): DL/T 645-2007
/// "错误信息字" (error information word), one bit per reason; several may be set at once.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ErrorFlags(pub u8);

impl ErrorFlags {
    /// Bit 0, 其他错误: other error (a meter's catch-all, also its answer to a function it lacks).
    pub const OTHER: u8 = 0x01;
    /// Bit 1, 无请求数据: the meter has no data for the identifier asked.
    pub const NO_DATA_REQUESTED: u8 = 0x02;
    /// Bit 2, 密码错/未授权: wrong password or not authorised.
    pub const PASSWORD: u8 = 0x04;
    /// Bit 3, 通信速率不能更改: the communication rate cannot be changed.
    pub const RATE_UNCHANGEABLE: u8 = 0x08;
    /// Bit 4, 年时区数超: too many year time zones.
    pub const YEAR_ZONES_EXCEEDED: u8 = 0x10;
    /// Bit 5, 日时段数超: too many day periods.
    pub const DAY_PERIODS_EXCEEDED: u8 = 0x20;
    /// Bit 6, 费率数超: too many tariffs.
    pub const TARIFFS_EXCEEDED: u8 = 0x40;

    const MEANINGS: [(u8, &'static str); 7] = [
        (Self::OTHER, "other error"),
        (
            Self::NO_DATA_REQUESTED,
            "no data requested (the meter does not have this identifier)",
        ),
        (Self::PASSWORD, "password error or not authorised"),
        (
            Self::RATE_UNCHANGEABLE,
            "communication rate cannot be changed",
        ),
        (
            Self::YEAR_ZONES_EXCEEDED,
            "number of year time zones exceeded",
        ),
        (Self::DAY_PERIODS_EXCEEDED, "number of day periods exceeded"),
        (Self::TARIFFS_EXCEEDED, "number of tariffs exceeded"),
    ];

    /// Whether `bit` (one of the constants) is set.
    pub fn contains(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    /// The meaning of every bit set, in bit order.
    pub fn reasons(self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Self::MEANINGS
            .iter()
            .filter(|(bit, _)| self.contains(*bit))
            .map(|(_, text)| *text)
            .collect();
        if self.0 & 0x80 != 0 {
            out.push("reserved bit 7 set");
        }
        out
    }
}

impl fmt::Display for ErrorFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reasons = self.reasons();
        if reasons.is_empty() {
            write!(f, "no reason given (error byte {:02X})", self.0)
        } else {
            write!(f, "{} (error byte {:02X})", reasons.join("; "), self.0)
        }
    }
}

/// Everything the codec can refuse. Decoding never panics: any input ends in a value or one of
/// these.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// Fewer bytes than the frame (or value) needs.
    #[error(
        "frame cut short: {needed} bytes needed, only {got} received \
         (the reply was interrupted, or the line dropped bytes)"
    )]
    Truncated {
        /// Bytes the frame or value needs.
        needed: usize,
        /// Bytes there were.
        got: usize,
    },
    /// The first byte (after any `FE` wake-up bytes) is not `68`.
    #[error(
        "no frame start: expected 68, found {found:02X} (not a DL/T 645 frame, or line noise)"
    )]
    BadStart {
        /// The byte found.
        found: u8,
    },
    /// The byte after the address is not the second `68`.
    #[error("second frame start missing: expected 68 after the address, found {found:02X}")]
    BadSecondStart {
        /// The byte found.
        found: u8,
    },
    /// The checksum byte does not match the sum of the frame.
    #[error(
        "checksum wrong: the frame carries {got:02X} but its bytes add up to {expected:02X} \
         (noise on the RS-485 line, wrong parity setting, or two meters answering at once)"
    )]
    BadChecksum {
        /// Sum mod 256 of the bytes from the first 68 through the data.
        expected: u8,
        /// The checksum byte in the frame.
        got: u8,
    },
    /// The last byte is not `16`.
    #[error("frame does not end with 16 (found {found:02X}): bytes were lost or the length byte is damaged")]
    BadEndByte {
        /// The byte found where `16` belongs.
        found: u8,
    },
    /// The length byte disagrees with the bytes given.
    #[error("length byte says {declared} data bytes but the frame holds {actual}")]
    BadLength {
        /// Data bytes the length byte announces.
        declared: usize,
        /// Data bytes actually there.
        actual: usize,
    },
    /// A data field longer than one frame can carry.
    #[error("data field of {len} bytes is too long for one frame (at most 255)")]
    DataTooLong {
        /// The length asked for.
        len: usize,
    },
    /// A byte of a value has a nibble above 9.
    #[error(
        "byte {byte:02X} at position {position} of the value is not BCD (each half must be 0-9): \
         the meter sent something other than the identifier table describes"
    )]
    BadBcd {
        /// The byte (after removing the 33 offset).
        byte: u8,
        /// Its position, 0 = first byte of the value on the wire.
        position: usize,
    },
    /// A date-time field that is BCD but not a date (month 13, 31 February, hour 25…).
    #[error("not a valid date and time: {0} (is the meter's clock set?)")]
    BadDateTime(String),
    /// A value does not fit the format it is to be encoded in.
    #[error("value {value} does not fit format {format}")]
    OutOfRange {
        /// The value.
        value: f64,
        /// The format, as the standard writes it.
        format: String,
    },
    /// A reply with a control code that does not answer the request.
    #[error("unexpected control code {got:02X} (expected {expected:02X}): not the answer to this request")]
    UnexpectedControl {
        /// The control code expected.
        expected: u8,
        /// The control code received.
        got: u8,
    },
    /// A reply from another meter than the one asked.
    #[error(
        "reply from meter {got}, but meter {expected} was asked \
         (two meters with one address, or a late reply to an earlier request)"
    )]
    AddressMismatch {
        /// The address asked.
        expected: Address,
        /// The address in the reply.
        got: Address,
    },
    /// A reply about another identifier than the one asked.
    #[error("reply carries identifier {got}, but {expected} was asked")]
    IdentifierMismatch {
        /// The identifier asked.
        expected: Di,
        /// The identifier in the reply.
        got: Di,
    },
    /// A follow-up reply numbered other than the frame asked.
    #[error(
        "follow-up frame {got} came when frame {expected} was asked (a repeated or lost frame)"
    )]
    SequenceMismatch {
        /// The frame number asked.
        expected: u8,
        /// The frame number received.
        got: u8,
    },
    /// A reply whose data does not have the layout the standard gives it.
    #[error("malformed reply: {0}")]
    Malformed(String),
    /// The meter answered with an abnormal reply.
    #[error("the meter refused: {0}")]
    ErrorReply(ErrorFlags),
    /// An identifier the table does not describe.
    #[error(
        "identifier {0} is not in the identifier table (describe it in an extra identifier file)"
    )]
    UnknownIdentifier(Di),
    /// A value of another length than the table says.
    #[error("value of identifier {di} is {got} bytes long, the identifier table says {expected}")]
    ValueLength {
        /// The identifier.
        di: Di,
        /// Bytes the table describes.
        expected: usize,
        /// Bytes received.
        got: usize,
    },
    /// A malformed load-profile record.
    #[error("load-profile record: {0}")]
    BadLoadRecord(String),
    /// A malformed identifier table file.
    #[error("identifier table: {0}")]
    Table(String),
}
