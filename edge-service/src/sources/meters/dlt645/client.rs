//! The DL/T 645 client of one bus: request, reply, retries, follow-up frames, typed errors.
//!
//! The bus is half duplex and every meter hears every frame, so a request goes out only after
//! the line has been quiet for the inter-frame gap, and a reply is what answers *this* request
//! (an old reply, another meter's frame and line noise are passed over). Frames themselves are
//! the pure [`codec`](super::codec)'s; the schedule, the devices and their standing are
//! [`bus`](super::bus)'s.

use super::codec::{
    self as dlt645, decode_follow_up_reply, decode_read_reply, function, read_follow_up, Address,
    DataReply, Di, ErrorFlags, Frame, FrameBuffer,
};
use super::Dlt645BusConfig;
use crate::sources::meters::readings::BusStats;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// Follow-up frames accepted for one value before the reply is given up as runaway.
const MAX_FOLLOW_UPS: u8 = 32;

/// Why a request did not give a value.
#[derive(Debug, Error)]
pub(crate) enum TxError {
    /// The meter answered with an abnormal reply: it is alive, it refuses this.
    #[error("refused: {0}")]
    Refused(ErrorFlags),
    /// No usable reply after the retries: the reason, for the offline event.
    #[error("{0}")]
    Link(String),
    /// The port failed.
    #[error("port failed: {0}")]
    Port(String),
}

/// One bus's line: what was heard, when it was last busy, and the counters.
pub(crate) struct Client {
    source: Arc<str>,
    /// Requests, replies, timeouts and bad frames; the bus adds its own.
    pub(crate) stats: BusStats,
    rx: FrameBuffer,
    last_activity: Instant,
    gap: Duration,
    timeout: Duration,
    retries: u32,
}

impl Client {
    pub(crate) fn new(source: Arc<str>, cfg: &Dlt645BusConfig) -> Client {
        Client {
            source,
            stats: BusStats::default(),
            rx: FrameBuffer::new(),
            last_activity: Instant::now(),
            gap: Duration::from_millis(cfg.inter_frame_ms),
            timeout: cfg.timeout,
            retries: cfg.retries,
        }
    }

    /// A new stream: nothing half-received carries over from the old one.
    pub(crate) fn reset(&mut self) {
        self.rx.clear();
        self.last_activity = Instant::now();
    }

    /// Sends a frame nobody answers (a broadcast), after the line's quiet time.
    pub(crate) async fn broadcast<P>(&mut self, port: &mut P, frame: &Frame) -> Result<(), String>
    where
        P: AsyncRead + AsyncWrite + Unpin,
    {
        self.quiet(port).await?;
        self.send(port, frame).await
    }

    /// Waits until the line has been quiet for the inter-frame gap, throwing away anything
    /// that arrives meanwhile (late replies, noise).
    async fn quiet<P>(&mut self, port: &mut P) -> Result<(), String>
    where
        P: AsyncRead + AsyncWrite + Unpin,
    {
        let mut buf = [0u8; 256];
        loop {
            let until = self.last_activity + self.gap;
            if Instant::now() >= until {
                break;
            }
            match tokio::time::timeout_at(until, port.read(&mut buf)).await {
                Err(_) => break,
                Ok(Ok(0)) => return Err("end of file".into()),
                Ok(Err(e)) => return Err(e.to_string()),
                Ok(Ok(n)) => {
                    self.last_activity = Instant::now();
                    tracing::debug!(source = %self.source, bytes = n, "bytes between requests ignored");
                }
            }
        }
        let stale = self.rx.clear();
        if stale > 0 {
            tracing::debug!(source = %self.source, bytes = stale, "unfinished frame dropped");
        }
        Ok(())
    }

    async fn send<P>(&mut self, port: &mut P, frame: &Frame) -> Result<(), String>
    where
        P: AsyncRead + AsyncWrite + Unpin,
    {
        // Frames built here are a few bytes long: encoding cannot fail.
        let bytes = frame.encode_with_wake_up().map_err(|e| e.to_string())?;
        port.write_all(&bytes).await.map_err(|e| e.to_string())?;
        port.flush().await.map_err(|e| e.to_string())?;
        self.last_activity = Instant::now();
        self.stats.requests += 1;
        Ok(())
    }

    /// Sends `request` (again, up to the retries) until `accept` takes a reply. `accept` says
    /// `None` for frames that are not the answer (another meter, an old reply).
    pub(crate) async fn transact<P, T>(
        &mut self,
        port: &mut P,
        request: &Frame,
        accept: &(dyn Fn(&Frame) -> Option<Result<T, dlt645::Error>> + Sync),
    ) -> Result<T, TxError>
    where
        P: AsyncRead + AsyncWrite + Unpin,
    {
        let tries = self.retries + 1;
        let mut last = String::new();
        for _ in 0..tries {
            self.quiet(port).await.map_err(TxError::Port)?;
            self.send(port, request).await.map_err(TxError::Port)?;
            let deadline = Instant::now() + self.timeout;
            match self.await_reply(port, deadline, accept).await? {
                Heard::Answer(Ok(t)) => {
                    self.stats.replies += 1;
                    return Ok(t);
                }
                Heard::Answer(Err(dlt645::Error::ErrorReply(flags))) => {
                    self.stats.error_replies += 1;
                    return Err(TxError::Refused(flags));
                }
                Heard::Answer(Err(e)) => {
                    self.stats.bad_frames += 1;
                    last = format!("malformed reply: {e}");
                }
                Heard::Garbled(e) => last = format!("garbled reply: {e}"),
                Heard::Nothing => {
                    self.stats.timeouts += 1;
                    last = format!("no reply within {} ms", self.timeout.as_millis());
                }
            }
        }
        let tries_word = if tries == 1 { "try" } else { "tries" };
        Err(TxError::Link(format!("{last} ({tries} {tries_word})")))
    }

    /// Reads until `accept` takes a frame or the deadline passes. A bad frame shortens the
    /// wait: the meter has spoken, and a good frame would follow at once.
    async fn await_reply<P, T>(
        &mut self,
        port: &mut P,
        mut deadline: Instant,
        accept: &(dyn Fn(&Frame) -> Option<Result<T, dlt645::Error>> + Sync),
    ) -> Result<Heard<T>, TxError>
    where
        P: AsyncRead + AsyncWrite + Unpin,
    {
        let mut buf = [0u8; 512];
        let mut garbled = None;
        loop {
            while let Some(found) = self.rx.next_frame() {
                match found {
                    Ok(frame) => {
                        if let Some(answer) = accept(&frame) {
                            return Ok(Heard::Answer(answer));
                        }
                        if frame.control.is_reply() {
                            tracing::debug!(
                                source = %self.source,
                                address = %frame.address,
                                control = ?frame.control,
                                "frame that does not answer the request ignored"
                            );
                        }
                    }
                    Err(e) => {
                        self.stats.bad_frames += 1;
                        tracing::debug!(source = %self.source, "bad frame: {e}");
                        garbled = Some(e);
                        let soon = Instant::now() + self.gap.max(Duration::from_millis(50));
                        deadline = deadline.min(soon);
                    }
                }
            }
            match tokio::time::timeout_at(deadline, port.read(&mut buf)).await {
                Err(_) => {
                    return Ok(match garbled {
                        Some(e) => Heard::Garbled(e),
                        None => Heard::Nothing,
                    })
                }
                Ok(Ok(0)) => return Err(TxError::Port("end of file".into())),
                Ok(Err(e)) => return Err(TxError::Port(e.to_string())),
                Ok(Ok(n)) => {
                    self.last_activity = Instant::now();
                    self.rx.push(&buf[..n]);
                }
            }
        }
    }

    /// Reads `di` (and its follow-up frames) from `address`; the value's bytes.
    pub(crate) async fn read_value<P>(
        &mut self,
        port: &mut P,
        address: Address,
        first: &Frame,
        di: Di,
    ) -> Result<Vec<u8>, TxError>
    where
        P: AsyncRead + AsyncWrite + Unpin,
    {
        let accept = move |f: &Frame| -> Option<Result<DataReply, dlt645::Error>> {
            answers(f, address, function::READ_DATA)
                .then(|| decode_read_reply(f, address, di))
                .and_then(not_an_old_reply)
        };
        let reply = self.transact(port, first, &accept).await?;
        let mut value = reply.value;
        let mut more = reply.more;
        let mut seq: u8 = 0;
        while more {
            if seq >= MAX_FOLLOW_UPS {
                return Err(TxError::Link(format!(
                    "{di}: more than {MAX_FOLLOW_UPS} follow-up frames; reply given up"
                )));
            }
            seq += 1;
            let request = read_follow_up(address, di, seq);
            let accept = move |f: &Frame| -> Option<Result<DataReply, dlt645::Error>> {
                answers(f, address, function::READ_FOLLOW_UP)
                    .then(|| decode_follow_up_reply(f, address, di, seq))
                    .and_then(not_an_old_reply)
            };
            let next = self.transact(port, &request, &accept).await?;
            value.extend(next.value);
            more = next.more;
        }
        Ok(value)
    }
}

/// What came back for one request.
enum Heard<T> {
    /// A frame `accept` took: the answer or the meter's refusal or a malformed answer.
    Answer(Result<T, dlt645::Error>),
    /// Only bad frames.
    Garbled(dlt645::Error),
    /// Nothing.
    Nothing,
}

/// Whether `f` is a reply to `function` from `address` (normal or abnormal).
pub(crate) fn answers(f: &Frame, address: Address, function: u8) -> bool {
    f.control.is_reply() && f.control.function() == function && f.address == address
}

/// A reply about another identifier is an old reply to an earlier request: not the answer.
pub(crate) fn not_an_old_reply(
    r: Result<DataReply, dlt645::Error>,
) -> Option<Result<DataReply, dlt645::Error>> {
    match r {
        Err(dlt645::Error::IdentifierMismatch { .. }) => None,
        other => Some(other),
    }
}
