//! The Modbus client of one bus: one request at a time through tokio-modbus, with what a
//! shared RS-485 line needs around it.
//!
//! tokio-modbus frames requests and checks CRCs; this adds the 3.5-character silence between
//! frames (it sends as soon as asked), a timeout per request (it has none), recovery from a
//! garbled reply (its frame stream ends after a decoding error, so the client is rebuilt), and
//! typed errors: no reply, an exception reply, a bad reply, or the port itself failing.
//!
//! The line is a serial port (RTU), or a TCP stream carrying either Modbus TCP frames (MBAP
//! header, no CRC) or RTU frames to a serial gateway ([`Framing`]); the client is the same.

use super::plan::Batch;
use super::profile::{Parity, RegisterKind};
use super::{ModbusBusConfig, StopBits};
use futures::FutureExt;
use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_modbus::client::{Context, Reader};
use tokio_modbus::prelude::{Slave, SlaveContext};
use tokio_serial::{SerialPort, SerialPortBuilderExt, SerialStream};

/// Modbus RTU's inter-frame silence: 3.5 character times at `baud`, or the fixed 1.75 ms the
/// spec prescribes above 19200 baud (Modbus over serial line V1.02, §2.5.1.1).
pub fn inter_frame_gap(baud: u32, parity: Parity, stop_bits: StopBits) -> Duration {
    if baud > 19_200 {
        return Duration::from_micros(1750);
    }
    Duration::from_secs_f64(3.5 * f64::from(bits_per_char(parity, stop_bits)) / f64::from(baud))
}

/// Start bit, 8 data bits, parity bit if any, stop bits.
fn bits_per_char(parity: Parity, stop_bits: StopBits) -> u32 {
    let parity = u32::from(parity != Parity::None);
    let stop = match stop_bits {
        StopBits::One => 1,
        StopBits::Two => 2,
    };
    1 + 8 + parity + stop
}

/// How long `bytes` take on the wire.
pub(crate) fn wire_time(baud: u32, parity: Parity, stop_bits: StopBits, bytes: usize) -> Duration {
    Duration::from_secs_f64(
        bytes as f64 * f64::from(bits_per_char(parity, stop_bits)) / f64::from(baud.max(1)),
    )
}

/// Why one request failed.
#[derive(Debug, Error)]
pub(crate) enum RequestError {
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    #[error("exception {code:#04x} ({text})")]
    Exception { code: u8, text: String },
    #[error("bad reply: {0}")]
    BadFrame(String),
    #[error("{0}")]
    Port(io::Error),
}

/// Opens the bus's serial port with its line settings.
pub(crate) fn open_port(cfg: &ModbusBusConfig) -> tokio_serial::Result<SerialStream> {
    tokio_serial::new(&cfg.port, cfg.baud)
        .data_bits(tokio_serial::DataBits::Eight)
        .parity(match cfg.parity {
            Parity::None => tokio_serial::Parity::None,
            Parity::Even => tokio_serial::Parity::Even,
            Parity::Odd => tokio_serial::Parity::Odd,
        })
        .stop_bits(match cfg.stop_bits {
            StopBits::One => tokio_serial::StopBits::One,
            StopBits::Two => tokio_serial::StopBits::Two,
        })
        .flow_control(tokio_serial::FlowControl::None)
        .open_native_async()
}

/// A byte stream a Modbus client can run on, and how to throw away what is waiting in it.
pub trait Line: AsyncRead + AsyncWrite + Send + Unpin + 'static {
    /// Drops whatever has been received and not read (a late reply, noise).
    fn discard_input(&mut self);
}

impl Line for SerialStream {
    fn discard_input(&mut self) {
        if let Err(e) = self.clear(tokio_serial::ClearBuffer::Input) {
            tracing::debug!("cannot flush serial input: {e}");
        }
    }
}

impl Line for Box<dyn Line> {
    fn discard_input(&mut self) {
        (**self).discard_input();
    }
}

impl Line for TcpStream {
    fn discard_input(&mut self) {
        // A late reply on a TCP stream would be read as this request's reply: read what has
        // arrived until the socket has nothing more ready. Best effort (tokio reports only the
        // readiness its reactor has seen); over Modbus TCP a reply that slips through carries
        // another transaction id and is refused as a bad reply, not taken for this one.
        let mut buf = [0u8; 512];
        while let Ok(n) = self.try_read(&mut buf) {
            if n == 0 {
                break;
            }
        }
    }
}

/// How requests are framed on the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Modbus RTU: address, PDU, CRC (a serial line, or a TCP gateway that passes RTU frames).
    Rtu,
    /// Modbus TCP: MBAP header with a transaction id, no CRC.
    Tcp,
}

/// The open port and the tokio-modbus client on it: one request at a time.
pub(crate) struct Client {
    port: SharedPort,
    framing: Framing,
    /// Rebuilt after any failure other than an exception reply: a request abandoned at its
    /// timeout may leave the client's framed reader mid-frame, and tokio-modbus ends its frame
    /// stream after a decoding error.
    client: Option<Context>,
    /// No request before this instant: the bus must be silent 3.5 characters between frames.
    quiet_until: Instant,
    inter_frame: Duration,
    timeout: Duration,
    /// Added to the timeout: the request's own time on the wire (discovery counts its timeout
    /// from the end of the request; the poller's timeout already covers it).
    lead: Duration,
    /// Added to the deadline once a reply has begun to arrive: its time on the wire (a
    /// discovery probe's timeout is only the wait for a reply to begin).
    reply_grace: Duration,
}

impl Client {
    pub(crate) fn new(port: impl Line, cfg: &ModbusBusConfig) -> Client {
        let framing = cfg.transport.framing();
        let mut c = Client::bare(port, framing, cfg.timeout);
        if cfg.transport.is_serial() {
            // Modbus RTU's 3.5 character times, from the line's own settings: tokio-modbus
            // sends a request as soon as it is asked, so the poller keeps this silence after
            // each reply (or timeout) before the next request. Over TCP the gateway keeps it.
            c.inter_frame = inter_frame_gap(cfg.baud, cfg.parity, cfg.stop_bits);
        }
        c
    }

    /// A client with no inter-frame silence, no lead and no grace (set them as needed).
    pub(crate) fn bare(port: impl Line, framing: Framing, timeout: Duration) -> Client {
        let port: Box<dyn Line> = Box::new(port);
        Client {
            port: SharedPort {
                stream: Arc::new(Mutex::new(port)),
                received: Arc::new(AtomicU64::new(0)),
            },
            framing,
            client: None,
            quiet_until: Instant::now(),
            inter_frame: Duration::ZERO,
            timeout,
            lead: Duration::ZERO,
            reply_grace: Duration::ZERO,
        }
    }

    /// Discovery's timing: `gap` of silence before each request, the timeout counted from
    /// `lead` after the request is handed over (its time on the wire), and `grace` more once
    /// a reply has begun.
    pub(crate) fn with_timing(mut self, gap: Duration, lead: Duration, grace: Duration) -> Client {
        self.inter_frame = gap;
        self.lead = lead;
        self.reply_grace = grace;
        self
    }

    /// Reads one batch of registers from `slave`: one request, one reply or a typed error.
    pub(crate) async fn read(
        &mut self,
        slave: u8,
        batch: &Batch,
    ) -> Result<Vec<u16>, RequestError> {
        tokio::time::sleep_until(self.quiet_until).await;
        // Whatever is waiting in the input queue answers no request of ours (a reply that came
        // after its timeout, line noise): drop it so it is not taken for this reply's start.
        self.port.discard_input();
        let received_before = self.port.received();
        let port = self.port.clone();
        let framing = self.framing;
        let client = self.client.get_or_insert_with(|| match framing {
            Framing::Rtu => tokio_modbus::client::rtu::attach(port),
            Framing::Tcp => tokio_modbus::client::tcp::attach(port),
        });
        client.set_slave(Slave(slave));
        let (start, count) = (batch.start, batch.count);
        let (lead, timeout, grace) = (self.lead, self.timeout, self.reply_grace);
        let line = self.port.clone();
        let sent = Instant::now();
        let result = {
            let call = async {
                match batch.kind {
                    RegisterKind::Input => client.read_input_registers(start, count).await,
                    RegisterKind::Holding => client.read_holding_registers(start, count).await,
                }
            };
            // tokio-modbus has `debug_assert`s on the reply's register count: a stray reply that
            // matches slave and function but not the count must not take the bus task down in a
            // debug build, so a panic in the client is caught and treated as a bad reply.
            let call = AssertUnwindSafe(call).catch_unwind();
            tokio::pin!(call);
            let mut deadline = sent + lead + timeout;
            let mut extended = grace.is_zero();
            loop {
                tokio::select! {
                    r = &mut call => break Ok(r),
                    _ = tokio::time::sleep_until(deadline) => {
                        // A reply that has begun is waited for to its end.
                        if !extended && line.received() > received_before {
                            extended = true;
                            deadline += grace;
                            continue;
                        }
                        break Err(());
                    }
                }
            }
        };
        self.quiet_until = Instant::now() + self.inter_frame;
        if result.is_err() && !lead.is_zero() && self.port.received() == received_before {
            // Silence since the request left the wire (`lead` after it was handed over): the
            // line has been quiet that long already, so the next request need not wait again.
            self.quiet_until = (sent + lead + self.inter_frame).min(self.quiet_until);
        }
        let (outcome, reset) = match result {
            Err(_) if self.port.received() > received_before => (
                Err(RequestError::BadFrame(
                    "garbled or incomplete reply (CRC or length wrong)".into(),
                )),
                true,
            ),
            Err(_) => (Err(RequestError::Timeout(self.timeout)), true),
            Ok(Err(_panic)) => (
                Err(RequestError::BadFrame(
                    "reply does not match the request".into(),
                )),
                true,
            ),
            Ok(Ok(Ok(Ok(words)))) if words.len() == usize::from(count) => (Ok(words), false),
            Ok(Ok(Ok(Ok(words)))) => (
                Err(RequestError::BadFrame(format!(
                    "{} registers in a reply to a read of {count}",
                    words.len()
                ))),
                true,
            ),
            Ok(Ok(Ok(Err(code)))) => (
                Err(RequestError::Exception {
                    code: u8::from(code),
                    text: code.to_string(),
                }),
                false,
            ),
            Ok(Ok(Err(tokio_modbus::Error::Protocol(e)))) => {
                (Err(RequestError::BadFrame(e.to_string())), true)
            }
            // tokio-modbus's decoder gives up on a reply after dropping bytes it cannot frame.
            Ok(Ok(Err(tokio_modbus::Error::Transport(e))))
                if e.kind() == io::ErrorKind::InvalidData =>
            {
                (
                    Err(RequestError::BadFrame(format!("garbled reply ({e})"))),
                    true,
                )
            }
            Ok(Ok(Err(tokio_modbus::Error::Transport(e)))) => (Err(RequestError::Port(e)), true),
        };
        if reset {
            self.client = None;
        }
        outcome
    }
}

/// The serial port, shared so that a new tokio-modbus client can be attached to it after a
/// failure without reopening the port, and counting received bytes so that a timeout with
/// bytes on the line is told apart from silence (tokio-modbus waits on through a reply whose
/// CRC is wrong, so a garbled reply surfaces as a timeout).
#[derive(Clone)]
struct SharedPort {
    stream: Arc<Mutex<Box<dyn Line>>>,
    received: Arc<AtomicU64>,
}

// tokio-modbus's TCP client asks its transport for Debug.
impl std::fmt::Debug for SharedPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedPort")
            .field("received", &self.received())
            .finish_non_exhaustive()
    }
}

impl SharedPort {
    fn lock(&self) -> MutexGuard<'_, Box<dyn Line>> {
        self.stream.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn discard_input(&self) {
        self.lock().discard_input();
    }

    fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

impl AsyncRead for SharedPort {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut *self.lock()).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            let n = buf.filled().len() - before;
            self.received.fetch_add(n as u64, Ordering::Relaxed);
        }
        result
    }
}

impl AsyncWrite for SharedPort {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.lock()).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.lock()).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.lock()).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inter_frame_gap_is_three_and_a_half_characters() {
        let g = inter_frame_gap(9600, Parity::None, StopBits::One);
        assert!(
            (g.as_secs_f64() - 3.5 * 10.0 / 9600.0).abs() < 1e-9,
            "{g:?}"
        );
        let g = inter_frame_gap(9600, Parity::Even, StopBits::One);
        assert!(
            (g.as_secs_f64() - 3.5 * 11.0 / 9600.0).abs() < 1e-9,
            "{g:?}"
        );
        assert_eq!(
            inter_frame_gap(38400, Parity::Even, StopBits::One),
            Duration::from_micros(1750)
        );
    }
}
