//! The application layer this crate speaks: read data (`11`), read follow-up data (`12`), read
//! address (`13`) and broadcast time set (`08`), and the checks that a reply answers its
//! request.

use super::bcd::encode_datetime;
use super::frame::function;
use super::{Address, Control, Di, Error, ErrorFlags, Frame};
use chrono::NaiveDateTime;

/// Read data `11`: the DI, DI0 first.
pub fn read_data(address: Address, di: Di) -> Frame {
    read_data_with(address, di, &[])
}

/// Read data `11` with parameters after the DI (load-profile reads carry a block count and a
/// time). The parameters must be short: a request holds the DI plus at most 251 bytes, and this
/// crate's requests carry at most 6.
pub fn read_data_with(address: Address, di: Di, parameters: &[u8]) -> Frame {
    let mut data = di.to_wire().to_vec();
    data.extend_from_slice(parameters);
    Frame {
        address,
        control: Control::request(function::READ_DATA),
        data,
    }
}

/// Read follow-up data `12`: frame `seq` (1, 2, …) of a multi-frame reply to a read of `di`.
pub fn read_follow_up(address: Address, di: Di, seq: u8) -> Frame {
    let mut data = di.to_wire().to_vec();
    data.push(seq);
    Frame {
        address,
        control: Control::request(function::READ_FOLLOW_UP),
        data,
    }
}

/// Read address `13` to the wildcard `AA…AA`: valid only with one meter on the bus, which then
/// answers `93` with its address.
pub fn read_address() -> Frame {
    Frame {
        address: Address::WILDCARD,
        control: Control::request(function::READ_ADDRESS),
        data: Vec::new(),
    }
}

/// Broadcast time set `08` to `99…99`: `YYMMDDhhmmss` by the meters' clock, sent lowest unit
/// first (`ss mm hh DD MM YY`). Meters do not answer. Most meters accept it at most once a day
/// and only within a few minutes of their own clock (a guard against tampering).
pub fn broadcast_time(time: NaiveDateTime) -> Result<Frame, Error> {
    Ok(Frame {
        address: Address::BROADCAST,
        control: Control::request(function::BROADCAST_TIME),
        data: encode_datetime(time, true)?,
    })
}

/// A normal reply to a read (`91`/`B1`) or follow-up read (`92`/`B2`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DataReply {
    /// The identifier it answers.
    pub di: Di,
    /// The value's bytes after the DI (and before the frame number of a follow-up reply),
    /// offset removed.
    pub value: Vec<u8>,
    /// D5: more frames follow; read them with [`read_follow_up`].
    pub more: bool,
    /// The frame number a follow-up reply carries.
    pub seq: Option<u8>,
}

/// Checks that `frame` comes from a meter at `address` and is a reply to `function`; turns an
/// abnormal reply into [`Error::ErrorReply`].
fn check_reply(frame: &Frame, address: Option<Address>, function: u8) -> Result<(), Error> {
    if !frame.control.is_reply() || frame.control.function() != function {
        return Err(Error::UnexpectedControl {
            expected: Control::reply(function, false).0,
            got: frame.control.0,
        });
    }
    if let Some(expected) = address {
        if frame.address != expected {
            return Err(Error::AddressMismatch {
                expected,
                got: frame.address,
            });
        }
    }
    if frame.control.is_abnormal() {
        let Some(&flags) = frame.data.first() else {
            return Err(Error::Truncated { needed: 1, got: 0 });
        };
        return Err(Error::ErrorReply(ErrorFlags(flags)));
    }
    Ok(())
}

fn split_di(frame: &Frame, expected: Di) -> Result<&[u8], Error> {
    if frame.data.len() < 4 {
        return Err(Error::Truncated {
            needed: 4,
            got: frame.data.len(),
        });
    }
    let got = Di::from_wire([frame.data[0], frame.data[1], frame.data[2], frame.data[3]]);
    if got != expected {
        return Err(Error::IdentifierMismatch { expected, got });
    }
    Ok(&frame.data[4..])
}

/// The reply to [`read_data`] of `di` from `address`.
pub fn decode_read_reply(frame: &Frame, address: Address, di: Di) -> Result<DataReply, Error> {
    check_reply(frame, Some(address), function::READ_DATA)?;
    let value = split_di(frame, di)?;
    Ok(DataReply {
        di,
        value: value.to_vec(),
        more: frame.control.has_follow_up(),
        seq: None,
    })
}

/// The reply to [`read_follow_up`] of `di`, frame `seq`, from `address`: the value bytes are
/// followed by the frame number, which must be `seq`.
pub fn decode_follow_up_reply(
    frame: &Frame,
    address: Address,
    di: Di,
    seq: u8,
) -> Result<DataReply, Error> {
    check_reply(frame, Some(address), function::READ_FOLLOW_UP)?;
    let rest = split_di(frame, di)?;
    let Some((&got_seq, value)) = rest.split_last() else {
        return Err(Error::Truncated {
            needed: 5,
            got: frame.data.len(),
        });
    };
    if got_seq != seq {
        return Err(Error::SequenceMismatch {
            expected: seq,
            got: got_seq,
        });
    }
    Ok(DataReply {
        di,
        value: value.to_vec(),
        more: frame.control.has_follow_up(),
        seq: Some(got_seq),
    })
}

/// The address in the reply (`93`) to [`read_address`]; the frame's address and its data must
/// agree.
pub fn decode_address_reply(frame: &Frame) -> Result<Address, Error> {
    check_reply(frame, None, function::READ_ADDRESS)?;
    let Ok(wire) = <[u8; 6]>::try_from(frame.data.as_slice()) else {
        return Err(Error::Malformed(format!(
            "address reply carries {} data bytes, not 6",
            frame.data.len()
        )));
    };
    let address = Address::from_wire(wire);
    if address != frame.address {
        return Err(Error::AddressMismatch {
            expected: frame.address,
            got: address,
        });
    }
    Ok(address)
}
