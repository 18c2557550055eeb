//! A source's port, reopened with back-off whenever it cannot be opened or goes away.
//!
//! A USB adapter that is unplugged, a UART whose device node is not there yet at boot, a
//! gateway that resets: every source meets these the same way. [`Link::open`] tries the port;
//! on failure it tells the source (a closure: it reports its devices unreachable), then waits 200 ms,
//! doubling to 5 s, before the next try, handing queued messages to the service meanwhile and
//! stopping at once on shutdown. The operator hears of an outage once (tracing `warn`, "check
//! the cable or USB adapter"), not at every retry. A port that stays open for [`STABLE_AFTER`]
//! ends the outage and resets the back-off; one that opens and fails at once (a flaky adapter,
//! a gateway in a reset loop) keeps the outage and its growing back-off, so it is neither spun
//! on nor warned about at every retry. How the port is opened is the source's closure (or, for a
//! TCP connection, an asynchronous one wrapped in [`Connect`]), so tests can hand any stream.

use crate::sources::outbox::{Classify, Outbox};
use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// First wait before reopening a port.
pub const BACKOFF_MIN: Duration = Duration::from_millis(200);
/// Longest wait between attempts: a replugged adapter is in use within this.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A port open this long before it fails was a working link: its loss is a new outage.
pub const STABLE_AFTER: Duration = Duration::from_secs(10);

/// How a port is opened: a plain closure (`FnMut() -> Result<P, E>`: a serial port opens at
/// once) or, through [`Connect`], an asynchronous one (a TCP connection takes a round trip and
/// must not block the runtime while it does).
pub trait Opener {
    /// The open port.
    type Port;
    /// Why it could not be opened.
    type Error: Display;
    /// One attempt.
    fn open(&mut self) -> impl Future<Output = Result<Self::Port, Self::Error>> + Send;
}

impl<F, P, E> Opener for F
where
    F: FnMut() -> Result<P, E>,
    P: Send,
    E: Display + Send,
{
    type Port = P;
    type Error = E;
    fn open(&mut self) -> impl Future<Output = Result<P, E>> + Send {
        std::future::ready(self())
    }
}

/// An asynchronous opener: `Connect(|| async { TcpStream::connect(a).await })`.
pub struct Connect<F>(pub F);

impl<F, Fut, P, E> Opener for Connect<F>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<P, E>> + Send,
    E: Display,
{
    type Port = P;
    type Error = E;
    fn open(&mut self) -> impl Future<Output = Result<P, E>> + Send {
        (self.0)()
    }
}

/// How a link names its port in messages, and what it advises when the port fails.
#[derive(Clone, Copy, Debug)]
pub struct Medium {
    /// "serial port", "TCP connection to".
    pub noun: &'static str,
    /// What the operator should check.
    pub advice: &'static str,
}

impl Medium {
    /// A serial port (the default).
    pub const SERIAL: Medium = Medium {
        noun: "serial port",
        advice: "check the cable or USB adapter",
    };
    /// A TCP connection (a Modbus TCP meter or an RS-485 gateway).
    pub const TCP: Medium = Medium {
        noun: "TCP connection to",
        advice: "check the network, the address and that the gateway is powered",
    };
}

/// How to (re)open one port, and where its outage stands.
pub struct Link<F> {
    source: Arc<str>,
    port: String,
    medium: Medium,
    open: F,
    backoff: Duration,
    /// An open failure was warned about in this outage.
    reported: bool,
    /// The last attempt failed or the port was lost: wait before trying again, so a port that
    /// opens and fails at once is not spun on.
    wait_first: bool,
    outages: u64,
    /// When the port was last opened (while it is open).
    opened_at: Option<Instant>,
}

impl<F> std::fmt::Debug for Link<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("source", &self.source)
            .field("port", &self.port)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

impl<F: Opener> Link<F> {
    /// A link for `source` to the port named `port`, opened by `open`.
    pub fn new(source: impl Into<Arc<str>>, port: impl Into<String>, open: F) -> Link<F> {
        Link {
            source: source.into(),
            port: port.into(),
            medium: Medium::SERIAL,
            open,
            backoff: BACKOFF_MIN,
            reported: false,
            wait_first: false,
            outages: 0,
            opened_at: None,
        }
    }

    /// The same link, its messages worded for `medium` (a serial port unless told).
    pub fn over(mut self, medium: Medium) -> Link<F> {
        self.medium = medium;
        self
    }

    /// The wait before the next attempt, if it fails.
    pub fn backoff(&self) -> Duration {
        self.backoff
    }

    /// Outages reported so far (one per spell of failed opens, however many retries).
    pub fn outages(&self) -> u64 {
        self.outages
    }

    /// Opens the port, retrying with back-off. At each failed attempt `unreachable` hears why
    /// (the port and the error, for the source's events: it should report a change of state
    /// once); meanwhile `out` hands queued messages over. `None` when shutdown is asked for or
    /// the service has gone: the source should stop.
    pub async fn open<M: Classify>(
        &mut self,
        out: &mut Outbox<M>,
        shutdown: &CancellationToken,
        mut unreachable: impl FnMut(&str, &mut Outbox<M>),
    ) -> Option<F::Port> {
        loop {
            if self.wait_first {
                let until = Instant::now() + self.backoff;
                self.backoff = next_backoff(self.backoff);
                if out.idle_until(until, shutdown).await.stops() {
                    return None;
                }
            }
            if shutdown.is_cancelled() || out.is_closed() {
                return None;
            }
            let attempt = tokio::select! {
                r = self.open.open() => r,
                _ = shutdown.cancelled() => return None,
            };
            let noun = self.medium.noun;
            match attempt {
                Ok(port) => {
                    let name = &self.port;
                    if self.reported {
                        tracing::debug!(source = %self.source, "{noun} {name} open again");
                    } else {
                        tracing::info!(source = %self.source, "{noun} {name} open");
                    }
                    self.opened_at = Some(Instant::now());
                    self.wait_first = false;
                    return Some(port);
                }
                Err(e) => {
                    let reason = format!(
                        "cannot open {noun} {}: {e}; {}",
                        self.port, self.medium.advice
                    );
                    if self.reported {
                        tracing::debug!(source = %self.source, "{reason}");
                    } else {
                        tracing::warn!(source = %self.source, "{reason}; retrying");
                        self.reported = true;
                        self.outages += 1;
                    }
                    unreachable(&reason, out);
                    out.flush();
                    self.wait_first = true;
                }
            }
        }
    }

    /// The open port failed (`why`): `unreachable` hears it, and the next [`Link::open`] waits
    /// the back-off first.
    pub fn lost<M: Classify>(
        &mut self,
        out: &mut Outbox<M>,
        why: impl Display,
        unreachable: impl FnOnce(&str, &mut Outbox<M>),
    ) {
        let reason = format!("{} {} lost: {why}", self.medium.noun, self.port);
        let stable = self
            .opened_at
            .take()
            .is_some_and(|t| t.elapsed() >= STABLE_AFTER);
        if stable {
            // A working link went away: a new outage, retried quickly at first.
            self.backoff = BACKOFF_MIN;
            self.reported = false;
        }
        if self.reported {
            tracing::debug!(source = %self.source, "{reason}; reopening");
        } else {
            tracing::warn!(source = %self.source, "{reason}; reopening");
            self.reported = true;
            self.outages += 1;
        }
        unreachable(&reason, out);
        out.flush();
        self.wait_first = true;
    }
}

/// The wait after `wait`: twice as long, up to [`BACKOFF_MAX`].
fn next_backoff(wait: Duration) -> Duration {
    (wait * 2).min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::outbox::MessageClass;
    use std::io;
    use tokio::sync::mpsc;

    struct Event;

    impl Classify for Event {
        fn class(&self) -> MessageClass {
            MessageClass::Event
        }
    }

    /// A source's outbox, and what it was told of the port.
    struct Source {
        outbox: Outbox<Event>,
        reasons: Vec<String>,
    }

    impl Source {
        async fn open(
            &mut self,
            link: &mut Link<impl FnMut() -> io::Result<u32>>,
            stop: &CancellationToken,
        ) -> Option<u32> {
            let reasons = &mut self.reasons;
            link.open(&mut self.outbox, stop, |reason, out| {
                reasons.push(reason.to_string());
                out.send(Event);
            })
            .await
        }
    }

    fn source() -> (Source, mpsc::Receiver<Event>) {
        let (tx, rx) = mpsc::channel(64);
        let outbox = Outbox::new("s", tx);
        (
            Source {
                outbox,
                reasons: vec![],
            },
            rx,
        )
    }

    /// Fails the first `failures` opens, then opens.
    fn port_after(failures: u32) -> impl FnMut() -> io::Result<u32> {
        let mut tries = 0;
        move || {
            tries += 1;
            if tries <= failures {
                Err(io::Error::new(io::ErrorKind::NotFound, "no such file"))
            } else {
                Ok(tries)
            }
        }
    }

    #[tokio::test]
    async fn back_off_doubles_from_200_ms_while_the_port_cannot_open() {
        let (mut src, _rx) = source();
        let mut link = Link::new("s", "/dev/ttyX", port_after(3));
        let stop = CancellationToken::new();
        let started = Instant::now();
        assert_eq!(src.open(&mut link, &stop).await, Some(4));
        // Three waits: 200 + 400 + 800 ms.
        assert!(started.elapsed() >= Duration::from_millis(1400));
        assert_eq!(
            link.backoff(),
            Duration::from_millis(1600),
            "not reset by an open alone: only by a port that stays up"
        );
        assert_eq!(src.reasons.len(), 3);
        assert_eq!(
            src.reasons[0],
            "cannot open serial port /dev/ttyX: no such file; check the cable or USB adapter"
        );
    }

    #[test]
    fn back_off_stops_growing_at_five_seconds() {
        let waits: Vec<u128> = std::iter::successors(Some(BACKOFF_MIN), |w| Some(next_backoff(*w)))
            .take(7)
            .map(|w| w.as_millis())
            .collect();
        assert_eq!(waits, [200, 400, 800, 1600, 3200, 5000, 5000]);
    }

    #[tokio::test]
    async fn an_outage_is_reported_once_however_many_retries() {
        let (mut src, _rx) = source();
        let mut link = Link::new("s", "p", port_after(2));
        let stop = CancellationToken::new();
        src.open(&mut link, &stop).await.unwrap();
        assert_eq!(link.outages(), 1);
        let reasons = &mut src.reasons;
        link.lost(&mut src.outbox, "end of file", |r, _| {
            reasons.push(r.into())
        });
        assert_eq!(
            src.reasons.last().unwrap(),
            "serial port p lost: end of file"
        );
        // Reopens (after the back-off) without a new open failure: no new outage report.
        src.open(&mut link, &stop).await.unwrap();
        assert_eq!(link.outages(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_port_that_fails_at_once_keeps_its_back_off_and_one_that_stayed_up_resets_it() {
        let (mut src, _rx) = source();
        let mut link = Link::new("s", "p", port_after(3));
        let stop = CancellationToken::new();
        src.open(&mut link, &stop).await.unwrap();
        let grown = link.backoff();
        // Opens and fails at once (a flaky adapter): still the same outage, still backing off.
        link.lost(&mut src.outbox, "end of file", |_, _| {});
        src.open(&mut link, &stop).await.unwrap();
        assert!(link.backoff() > grown, "{:?}", link.backoff());
        assert_eq!(link.outages(), 1, "one outage, one warning");
        // Up for a while, then lost: a new outage, retried quickly at first.
        tokio::time::advance(STABLE_AFTER).await;
        link.lost(&mut src.outbox, "end of file", |_, _| {});
        assert_eq!(link.backoff(), BACKOFF_MIN);
        assert_eq!(link.outages(), 2);
    }

    #[tokio::test]
    async fn waiting_to_retry_stops_at_once_on_shutdown() {
        let (mut src, mut rx) = source();
        let mut link = Link::new("s", "p", port_after(u32::MAX));
        link.backoff = BACKOFF_MAX;
        let stop = CancellationToken::new();
        let cancel = stop.clone();
        let opened = tokio::spawn(async move {
            let got = src.open(&mut link, &stop).await;
            (got, src.reasons.len())
        });
        // The first attempt has failed: the link is now waiting 5 s to retry.
        rx.recv().await.unwrap();
        cancel.cancel();
        let (got, _) = tokio::time::timeout(Duration::from_secs(2), opened)
            .await
            .expect("stopped within the back-off")
            .unwrap();
        assert_eq!(got, None);
    }
}
