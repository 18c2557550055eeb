//! Where the local node's frames go: an `embedded_io` port over any [`std::io::Write`], and a
//! bounded queue to a writer thread, so the sampling thread never blocks on a slow reader (a
//! full queue drops the frame, and the node counts it).

use kare_firmware::pqlink::MAX_WIRE_LEN;
use std::io::{self, ErrorKind};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

/// An `embedded_io::Write` port over any [`std::io::Write`]: how the no_std node loop writes to
/// a pipe, a socket or a pseudo-terminal.
#[derive(Debug)]
pub struct IoWrite<W> {
    inner: W,
}

impl<W> IoWrite<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        IoWrite { inner }
    }

    /// The wrapped writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Gives the wrapped writer back.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

/// A [`std::io::Error`] seen through `embedded_io`.
#[derive(Debug)]
pub struct IoWriteError(pub io::Error);

impl embedded_io::Error for IoWriteError {
    fn kind(&self) -> embedded_io::ErrorKind {
        use embedded_io::ErrorKind as E;
        match self.0.kind() {
            ErrorKind::NotFound => E::NotFound,
            ErrorKind::PermissionDenied => E::PermissionDenied,
            ErrorKind::ConnectionRefused => E::ConnectionRefused,
            ErrorKind::ConnectionReset => E::ConnectionReset,
            ErrorKind::ConnectionAborted => E::ConnectionAborted,
            ErrorKind::NotConnected => E::NotConnected,
            ErrorKind::AddrInUse => E::AddrInUse,
            ErrorKind::AddrNotAvailable => E::AddrNotAvailable,
            ErrorKind::BrokenPipe => E::BrokenPipe,
            ErrorKind::AlreadyExists => E::AlreadyExists,
            ErrorKind::InvalidInput => E::InvalidInput,
            ErrorKind::InvalidData => E::InvalidData,
            ErrorKind::TimedOut => E::TimedOut,
            ErrorKind::Interrupted => E::Interrupted,
            ErrorKind::Unsupported => E::Unsupported,
            ErrorKind::OutOfMemory => E::OutOfMemory,
            ErrorKind::WriteZero => E::WriteZero,
            _ => E::Other,
        }
    }
}

impl<W: io::Write> embedded_io::ErrorType for IoWrite<W> {
    type Error = IoWriteError;
}

impl<W: io::Write> embedded_io::Write for IoWrite<W> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, IoWriteError> {
        match self.inner.write(buf) {
            // embedded-io's write_all panics on Ok(0); std's "took nothing" becomes an error.
            Ok(0) if !buf.is_empty() => Err(IoWriteError(ErrorKind::WriteZero.into())),
            Ok(n) => Ok(n),
            Err(e) => Err(IoWriteError(e)),
        }
    }

    fn flush(&mut self) -> Result<(), IoWriteError> {
        self.inner.flush().map_err(IoWriteError)
    }
}

/// One wire frame (or a piece of a larger write) on its way to the sink.
pub(super) type Chunk = heapless::Vec<u8, MAX_WIRE_LEN>;

/// The sampling thread's side of a bounded queue to the writer thread: a [`std::io::Write`]
/// that never blocks. A full queue refuses the write (`WouldBlock`), so the node drops the frame
/// and counts it instead of missing samples behind a slow reader.
#[derive(Debug)]
pub struct FrameQueue {
    tx: SyncSender<Chunk>,
    closed: bool,
}

impl FrameQueue {
    /// The sending side of `tx`'s channel.
    pub fn new(tx: SyncSender<Chunk>) -> Self {
        FrameQueue { tx, closed: false }
    }

    /// Whether the receiving side is gone (the writer stopped).
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

impl io::Write for FrameQueue {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(MAX_WIRE_LEN);
        // A pqlink frame is at most MAX_WIRE_LEN bytes, so it always goes as one chunk.
        let chunk = Chunk::from_slice(&buf[..n]).expect("n <= capacity");
        match self.tx.try_send(chunk) {
            Ok(()) => Ok(n),
            Err(TrySendError::Full(_)) => Err(ErrorKind::WouldBlock.into()),
            Err(TrySendError::Disconnected(_)) => {
                self.closed = true;
                Err(ErrorKind::BrokenPipe.into())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The writer thread: every queued chunk to `sink`, until the queue closes or `sink` fails.
pub(super) fn write_frames(rx: Receiver<Chunk>, mut sink: impl io::Write) -> io::Result<()> {
    for chunk in rx {
        sink.write_all(&chunk)?;
        sink.flush()?;
    }
    Ok(())
}
