//! Link budget: what a 115 200 baud UART carries, and how capture frames share it with the
//! half-cycle frames that must never wait.
//!
//! The node's transmit policy (see `PROTOCOL.md`, "Interleaving"):
//!
//! 1. `HalfCycle`, `Heartbeat`, `Phases` and `Hello` frames are always sent, as soon as they
//!    exist, and charged to a [`LinkBudget`].
//! 2. A `Capture` frame is started only when the UART transmit queue holds no other frame **and**
//!    [`LinkBudget::try_capture`] grants it. Frames are never interrupted, so a half-cycle frame
//!    waits at most for one capture frame already on the wire (≤ [`MAX_WIRE_LEN`] bytes, 22 ms
//!    at 11 520 bytes/s).
//! 3. The budget refills at a configured rate (by default 90 % of the link) and holds at most one
//!    maximal frame of credit, so captures can never build a queue in front of half-cycle frames
//!    and the long-run total stays under the configured rate.

use super::codec::MAX_WIRE_LEN;

/// The UART's bit rate.
pub const UART_BAUD: u32 = 115_200;

/// Bits per byte on an 8N1 UART: start bit, 8 data bits, stop bit.
pub const BITS_PER_BYTE_8N1: u32 = 10;

/// Bytes per second a 115 200 baud 8N1 link carries: 11 520.
pub const LINK_BYTES_PER_SECOND: u32 = UART_BAUD / BITS_PER_BYTE_8N1;

/// The share of the link [`LinkBudget::default`] allows, in percent; the rest is margin for
/// clock tolerance between node and receiver and for the receiver's scheduling jitter.
pub const DEFAULT_UTILISATION_PERCENT: u32 = 90;

const MICROS_PER_SECOND: i64 = 1_000_000;

/// Credit-based gate for capture frames (a token bucket counted in millionths of a byte).
///
/// Call [`elapse`](Self::elapse) as time passes, [`charge`](Self::charge) for every frame that
/// is always sent (half-cycle, heartbeat, phases, hello), and [`try_capture`](Self::try_capture) before
/// starting a capture frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkBudget {
    bytes_per_second: u32,
    /// Credit in millionths of a byte (bytes/s × µs).
    credit: i64,
    max_credit: i64,
}

impl Default for LinkBudget {
    fn default() -> Self {
        Self::new(LINK_BYTES_PER_SECOND * DEFAULT_UTILISATION_PERCENT / 100)
    }
}

impl LinkBudget {
    /// A budget that refills at `bytes_per_second`, starting with no credit.
    pub const fn new(bytes_per_second: u32) -> Self {
        LinkBudget {
            bytes_per_second,
            credit: 0,
            max_credit: MAX_WIRE_LEN as i64 * MICROS_PER_SECOND,
        }
    }

    /// The refill rate in bytes per second.
    pub const fn bytes_per_second(&self) -> u32 {
        self.bytes_per_second
    }

    /// `micros` microseconds have passed: add their share of the link.
    pub fn elapse(&mut self, micros: u32) {
        let add = i64::from(self.bytes_per_second) * i64::from(micros);
        self.credit = (self.credit + add).min(self.max_credit);
    }

    /// A frame of `wire_len` bytes that is always sent was put on the UART. The credit may go
    /// negative: captures then wait until the link has caught up.
    pub fn charge(&mut self, wire_len: usize) {
        self.credit -= wire_len as i64 * MICROS_PER_SECOND;
    }

    /// Whether a capture frame of `wire_len` bytes may start now; if so it is charged. The
    /// caller must also check that no other frame is waiting in its transmit queue.
    pub fn try_capture(&mut self, wire_len: usize) -> bool {
        let cost = wire_len as i64 * MICROS_PER_SECOND;
        if self.credit >= cost {
            self.credit -= cost;
            true
        } else {
            false
        }
    }

    /// Current credit in whole bytes (negative while the always-sent frames are ahead).
    pub fn credit_bytes(&self) -> i64 {
        self.credit.div_euclid(MICROS_PER_SECOND)
    }
}

/// Share of an 8N1 link at `baud` used by `frames_per_second` frames of `wire_len` bytes, in
/// parts per thousand (rounded up).
pub const fn link_use_permille(wire_len: u32, frames_per_second: u32, baud: u32) -> u32 {
    let bytes = wire_len * frames_per_second;
    let capacity = baud / BITS_PER_BYTE_8N1;
    (bytes * 1000).div_ceil(capacity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_capacity() {
        assert_eq!(LINK_BYTES_PER_SECOND, 11_520);
        assert_eq!(link_use_permille(48, 120, UART_BAUD), 500);
    }

    #[test]
    fn credit_is_capped_and_charged() {
        let mut b = LinkBudget::new(10_000);
        b.elapse(1_000_000);
        assert_eq!(b.credit_bytes(), MAX_WIRE_LEN as i64);
        assert!(b.try_capture(200));
        assert!(!b.try_capture(200));
        b.charge(100);
        assert_eq!(b.credit_bytes(), -44);
        b.elapse(4_400);
        assert_eq!(b.credit_bytes(), 0);
    }
}
