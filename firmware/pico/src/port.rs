//! The UART as the node's `embedded_io::Write` port, without ever blocking the sample loop.
//!
//! At 115 200 baud a byte takes 87 µs and a sample period is 267 µs, so writing a 45-byte
//! half-cycle frame straight to the UART would stall the loop for 4 ms and lose 15 samples.
//! Instead frames go into a RAM queue, and [`UartPort::drain`] moves bytes into the UART's
//! 32-byte hardware FIFO whenever the loop has a moment (it is called while waiting for DRDY,
//! many times per sample period; the FIFO lasts 2.8 ms). The node's link budget keeps the
//! average rate under the line rate, so the queue only has to absorb bursts.

use rp2040_hal::uart::{Enabled, UartDevice, UartPeripheral, ValidUartPinout};

/// Bytes the transmit queue holds: eight maximum-size frames, far more than the largest burst the
/// node's link budget lets through (a Hello, a HalfCycle, a Heartbeat, its Phases and a Capture
/// part).
pub const TX_QUEUE_LEN: usize = 2048;

/// The transmit queue had no room for a whole frame; the frame was not queued (the node counts it
/// as dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueFull;

impl embedded_io::Error for QueueFull {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::OutOfMemory
    }
}

/// An enabled UART with a transmit queue in front of it.
pub struct UartPort<D: UartDevice, P: ValidUartPinout<D>> {
    uart: UartPeripheral<Enabled, D, P>,
    buf: [u8; TX_QUEUE_LEN],
    /// Index of the oldest queued byte.
    head: usize,
    /// Number of queued bytes.
    len: usize,
}

impl<D: UartDevice, P: ValidUartPinout<D>> UartPort<D, P> {
    /// An empty queue in front of `uart`.
    pub fn new(uart: UartPeripheral<Enabled, D, P>) -> Self {
        UartPort {
            uart,
            buf: [0; TX_QUEUE_LEN],
            head: 0,
            len: 0,
        }
    }

    /// Moves as many queued bytes into the UART FIFO as it takes now; never waits.
    pub fn drain(&mut self) {
        while self.len > 0 {
            let end = (self.head + self.len).min(TX_QUEUE_LEN);
            let chunk = &self.buf[self.head..end];
            // write_raw fills the FIFO and returns what did not fit; WouldBlock when it is full.
            let Ok(rest) = self.uart.write_raw(chunk) else {
                return;
            };
            let sent = chunk.len() - rest.len();
            let fifo_full = !rest.is_empty();
            self.head = (self.head + sent) % TX_QUEUE_LEN;
            self.len -= sent;
            if fifo_full {
                return;
            }
        }
    }
}

impl<D: UartDevice, P: ValidUartPinout<D>> embedded_io::ErrorType for UartPort<D, P> {
    type Error = QueueFull;
}

impl<D: UartDevice, P: ValidUartPinout<D>> embedded_io::Write for UartPort<D, P> {
    /// Queues all of `data` or nothing: half a frame on the wire would only cost the receiver a
    /// CRC error, but a whole dropped frame is what the node's counters report.
    fn write(&mut self, data: &[u8]) -> Result<usize, QueueFull> {
        if data.len() > TX_QUEUE_LEN - self.len {
            return Err(QueueFull);
        }
        let tail = (self.head + self.len) % TX_QUEUE_LEN;
        let first = data.len().min(TX_QUEUE_LEN - tail);
        self.buf[tail..tail + first].copy_from_slice(&data[..first]);
        self.buf[..data.len() - first].copy_from_slice(&data[first..]);
        self.len += data.len();
        // Start sending at once: the FIFO may be idle.
        self.drain();
        Ok(data.len())
    }

    /// Waits until every queued byte is in the UART FIFO. The sample loop never calls this.
    fn flush(&mut self) -> Result<(), QueueFull> {
        while self.len > 0 {
            self.drain();
        }
        Ok(())
    }
}
