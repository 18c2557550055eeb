//! DL/T 645-2007, the Chinese multifunction-meter protocol on RS-485: a pure codec (bytes in,
//! values out, typed errors, no I/O). The poller that drives a bus is
//! [`crate::sources::meters::dlt645`].
//!
//! - [`frame`]: frames (`68 A0…A5 68 C L data+33 CS 16`, optional `FE` wake-up bytes), the
//!   control code's bits, and [`FrameBuffer`] / [`scan`] to find frames in a serial stream
//!   that splits, joins and garbles them.
//! - [`request`]: read data `11`, read follow-up `12`, read address `13`, broadcast time set
//!   `08`, and the checks that a reply (`91`/`B1`, `92`/`B2`, `93`, or the abnormal `D1`…)
//!   answers its request.
//! - [`bcd`]: BCD numbers with a fixed decimal point and an optional sign bit, and BCD
//!   date-times, lowest byte first.
//! - [`table`]: the data identifiers as data (`data/dlt645-identifiers.toml`), each checked
//!   against the standard, extensible per site.
//! - [`load_profile`]: load-profile reads (`06 00 00 0x`) and their records.
//!
//! A read of phase-A voltage from meter `123456789012`, and its reply:
//!
//! ```
//! use kare::sources::meters::dlt645::codec::{self as dlt645, Address, Di, IdentifierTable, Value};
//! let meter: Address = "123456789012".parse().unwrap();
//! let request = dlt645::read_data(meter, Di(0x0201_0100));
//! assert_eq!(
//!     request.encode().unwrap(),
//!     [0x68, 0x12, 0x90, 0x78, 0x56, 0x34, 0x12, 0x68, 0x11, 0x04,
//!      0x33, 0x34, 0x34, 0x35, 0x6B, 0x16]
//! );
//! let reply = dlt645::Frame::decode(&[
//!     0xFE, 0xFE, 0x68, 0x12, 0x90, 0x78, 0x56, 0x34, 0x12, 0x68, 0x91, 0x06,
//!     0x33, 0x34, 0x34, 0x35, 0x34, 0x55, 0x76, 0x16,
//! ]).unwrap();
//! let value = dlt645::decode_read_reply(&reply, meter, Di(0x0201_0100)).unwrap().value;
//! let id = IdentifierTable::builtin().require(Di(0x0201_0100)).unwrap();
//! assert_eq!(id.decode(&value).unwrap(), [Value::Number(220.1)]);
//! ```

pub mod bcd;
mod error;
pub mod frame;
pub mod load_profile;
pub mod request;
pub mod table;

pub use bcd::{decode_datetime, decode_number, encode_datetime, encode_number, NumberFormat};
pub use error::{Error, ErrorFlags};
pub use frame::{
    function, scan, Address, AddressParseError, Control, Di, DiParseError, Frame, FrameBuffer, Scan,
};
pub use load_profile::{parse_load_records, LoadProfileRead, LoadRecord, LoadRecords};
pub use request::{
    broadcast_time, decode_address_reply, decode_follow_up_reply, decode_read_reply, read_address,
    read_data, read_data_with, read_follow_up, DataReply,
};
pub use table::{Field, Identifier, IdentifierTable, Record, Value};
