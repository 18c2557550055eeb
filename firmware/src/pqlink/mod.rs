//! pqlink: the sensor node → edge computer wire protocol over a UART.
//!
//! One wire frame is
//!
//! ```text
//! COBS( version:u8 ‖ postcard(Frame) ‖ CRC-32/ISO-HDLC:u32 LE ) 0x00
//! ```
//!
//! * **postcard** payloads (varints, fields in declaration order) of fixed-capacity `heapless`
//!   types: no allocation on either side.
//! * **COBS** framing with 0x00 as the delimiter, so a receiver that joins mid-stream, or loses
//!   bytes, resynchronises at the next 0x00.
//! * **CRC-32** over header and payload: damaged frames are rejected, never half-trusted.
//! * **Versioned**: the first byte of every frame is [`PROTOCOL_VERSION`] (2: version 1 plus
//!   the `Phases` frame); a receiver decodes every version from [`MIN_PROTOCOL_VERSION`] up to
//!   its own and rejects newer ones ([`DecodeError::UnsupportedVersion`]).
//!
//! Encode with [`encode`] into a caller's buffer ([`MAX_WIRE_LEN`] bytes always suffice); decode a
//! byte stream with a [`Decoder`] ([`Decoder::push`] one byte, or [`Decoder::feed`] a chunk), which
//! yields `Result<Frame, DecodeError>` per delimiter and keeps [`DecoderStats`].
//!
//! The full specification, with byte counts and the link budget, is `firmware/PROTOCOL.md`.

mod budget;
mod codec;
mod frame;

pub use budget::{
    link_use_permille, LinkBudget, BITS_PER_BYTE_8N1, DEFAULT_UTILISATION_PERCENT,
    LINK_BYTES_PER_SECOND, UART_BAUD,
};
pub use codec::{
    decode, encode, wire_len, DecodeError, Decoder, DecoderStats, EncodeError, Feed, CRC, CRC_LEN,
    DECODER_BUFFER_LEN, DELIMITER, HEADER_LEN, MAX_RAW_LEN, MAX_WIRE_LEN, MIN_PROTOCOL_VERSION,
    PROTOCOL_VERSION,
};
pub use frame::{
    Capture, ChannelFlags, ChannelInfo, ChannelReading, FirmwareVersion, Frame, FrameKind,
    HalfCycle, Heartbeat, Hello, NodeStatus, Phases, CAPTURE_MAX_SAMPLES, CHANNEL_NAME_LEN,
    MAX_CHANNELS, POS_ONE,
};
