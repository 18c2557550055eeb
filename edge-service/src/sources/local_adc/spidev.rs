//! The ADS131M04's SPI link on the Pi: an embedded-hal [`SpiDevice`] over a Linux spidev.

use embedded_hal::spi::{Operation, SpiDevice};
use rppal::spi::{Segment, Spi};

/// An embedded-hal [`SpiDevice`] over a Linux spidev, chip select handled by the kernel.
///
/// rppal's own `SimpleHalSpiDevice` (0.22) sends zeros for `TransferInPlace`, which is the one
/// operation the ADS131M04 driver uses, so its commands would never reach the ADC. This device
/// lays every operation of a transaction out in one scratch buffer and hands the kernel one
/// segment per operation, all under one chip select.
pub struct SpidevDevice {
    spi: Spi,
    tx: Vec<u8>,
    rx: Vec<u8>,
}

impl SpidevDevice {
    /// Wraps an open spidev.
    pub fn new(spi: Spi) -> Self {
        SpidevDevice {
            spi,
            tx: Vec::new(),
            rx: Vec::new(),
        }
    }
}

impl embedded_hal::spi::ErrorType for SpidevDevice {
    type Error = rppal::spi::Error;
}

impl SpiDevice<u8> for SpidevDevice {
    fn transaction(&mut self, operations: &mut [Operation<'_, u8>]) -> Result<(), Self::Error> {
        let SpidevDevice { spi, tx, rx } = self;
        gather(operations, tx);
        rx.clear();
        rx.resize(tx.len(), 0);
        {
            let mut segments = Vec::with_capacity(operations.len());
            let (mut tx_rest, mut rx_rest) = (&tx[..], &mut rx[..]);
            for op in operations.iter() {
                let n = wire_len(op);
                let (tx_now, t) = tx_rest.split_at(n);
                let (rx_now, r) = std::mem::take(&mut rx_rest).split_at_mut(n);
                (tx_rest, rx_rest) = (t, r);
                segments.push(match op {
                    Operation::DelayNs(ns) => {
                        let us = ns.div_ceil(1000).min(u16::MAX as u32) as u16;
                        Segment::with_settings(None, None, 0, us, 0, false)
                    }
                    _ => Segment::new(rx_now, tx_now),
                });
            }
            spi.transfer_segments(&segments)?;
        }
        scatter(operations, rx);
        Ok(())
    }
}

/// Bytes an operation clocks: the longer buffer of a transfer, nothing for a delay.
fn wire_len(op: &Operation<'_, u8>) -> usize {
    match op {
        Operation::Read(buf) => buf.len(),
        Operation::Write(buf) => buf.len(),
        Operation::Transfer(read, write) => read.len().max(write.len()),
        Operation::TransferInPlace(buf) => buf.len(),
        Operation::DelayNs(_) => 0,
    }
}

/// Lays out what the operations send, one after another (reads and short writes send zeros).
fn gather(operations: &[Operation<'_, u8>], tx: &mut Vec<u8>) {
    tx.clear();
    for op in operations {
        let start = tx.len();
        match op {
            Operation::Write(buf) | Operation::Transfer(_, buf) => tx.extend_from_slice(buf),
            Operation::TransferInPlace(buf) => tx.extend_from_slice(buf),
            Operation::Read(_) | Operation::DelayNs(_) => {}
        }
        tx.resize(start + wire_len(op), 0);
    }
}

/// Copies what came back into the operations' read buffers.
fn scatter(operations: &mut [Operation<'_, u8>], rx: &[u8]) {
    let mut at = 0;
    for op in operations.iter_mut() {
        let n = wire_len(op);
        match op {
            Operation::Read(buf) | Operation::Transfer(buf, _) => {
                let len = buf.len();
                buf.copy_from_slice(&rx[at..at + len]);
            }
            Operation::TransferInPlace(buf) => buf.copy_from_slice(&rx[at..at + n]),
            Operation::Write(_) | Operation::DelayNs(_) => {}
        }
        at += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transactions_send_what_transfer_in_place_holds() {
        // The bug this device exists for: the ADC driver's commands travel in TransferInPlace.
        let mut frame = [0x00, 0x11, 0x00, 0xAA];
        let mut read = [0u8; 3];
        let mut short_read = [0u8; 1];
        let mut ops = [
            Operation::Write(&[0x60, 0x01]),
            Operation::DelayNs(1500),
            Operation::TransferInPlace(&mut frame),
            Operation::Read(&mut read),
            Operation::Transfer(&mut short_read, &[7, 8]),
        ];
        let mut tx = Vec::new();
        gather(&ops, &mut tx);
        assert_eq!(tx, [0x60, 0x01, 0x00, 0x11, 0x00, 0xAA, 0, 0, 0, 7, 8]);
        assert_eq!(ops.iter().map(wire_len).sum::<usize>(), tx.len());
        // A loopback bus that answers every byte with its complement.
        let rx: Vec<u8> = tx.iter().map(|b| !b).collect();
        scatter(&mut ops, &rx);
        assert_eq!(frame, [0xFF, 0xEE, 0xFF, 0x55]);
        assert_eq!(read, [0xFF; 3]);
        assert_eq!(short_read, [!7]);
    }
}
