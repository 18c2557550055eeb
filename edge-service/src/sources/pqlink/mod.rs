//! A sensor node on a serial port: pqlink frames in, readings and events out.
//!
//! [`stream`] is the pure part ([`NodeStream`]). [`run`] is the I/O edge: it opens the port with
//! tokio-serial through a [`Link`] (reopened with back-off when it disappears), notices a node
//! that has gone silent, puts half-cycle readings on a broadcast (a lagging viewer misses the
//! oldest and is told how many) and hands events to the service through an [`Outbox`], never
//! waiting on a slow consumer.

pub mod config;
pub mod stream;

pub use stream::{
    NodeStream, PhaseAngles, ProfileRecord, Reading, RmsProfile, StreamOutput, StreamStats,
    Waveform,
};

use crate::sources::link::Link;
use crate::sources::outbox::{Classify, MessageClass, Outbox, DRAIN_AT_SHUTDOWN};
use chrono::{DateTime, Utc};
use kare_firmware::detector::Thresholds;
use kare_firmware::pqlink::Decoder;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How to reach one sensor node.
#[derive(Clone, Debug, PartialEq)]
pub struct PqlinkSourceConfig {
    /// Name used in events and logs.
    pub name: String,
    /// Serial port path (a USB adapter, a UART, a pseudo-terminal).
    pub port: String,
    /// Baud rate (pqlink runs at 115 200 8N1).
    pub baud: u32,
    /// Declared voltage and thresholds, volts.
    pub thresholds: Thresholds,
    /// A node silent this long is reported lost.
    pub silence: Duration,
}

/// What a source task sends to the service. Events are never dropped; readings may be.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceMessage {
    /// A voltage event began or ended, or the node said hello.
    Stream(Arc<str>, StreamOutput),
    /// Nothing heard from the node for the silence timeout (or the port is gone).
    SensorLost {
        /// Source name.
        source: Arc<str>,
        /// Last time anything was heard.
        since: DateTime<Utc>,
        /// Why: silence, or the port error.
        reason: String,
    },
    /// The node is heard again.
    SensorBack {
        /// Source name.
        source: Arc<str>,
        /// When it came back.
        at: DateTime<Utc>,
    },
    /// Fresh counters.
    Stats(Arc<str>, StreamStats),
    /// Something from a meter bus (Modbus, DL/T 645): the service takes every source's news
    /// through this one channel.
    Meter(crate::sources::meters::readings::MeterMessage),
    /// A delivery the outbox gave up on.
    DeadLetter(crate::actions::delivery::DeadLetter),
    /// A delivery endpoint accepted a message (the first since start or since it failed).
    Delivered {
        /// Endpoint name.
        endpoint: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The UPS changed state (mains lost or back, battery low).
    Ups(crate::sources::ups::UpsSignal, DateTime<Utc>),
}

impl Classify for SourceMessage {
    fn class(&self) -> MessageClass {
        match self {
            SourceMessage::Stream(_, StreamOutput::Reading(_)) => MessageClass::Reading,
            // Live information like a reading, should one ever be forwarded: the next one comes
            // within a second.
            SourceMessage::Stream(_, StreamOutput::Phases(_)) => MessageClass::Reading,
            SourceMessage::Stats(..) => MessageClass::Stats,
            SourceMessage::Meter(m) => m.class(),
            _ => MessageClass::Event,
        }
    }
}

/// Runs one source until `shutdown` is cancelled: open, read, judge, reopen.
pub async fn run(
    cfg: PqlinkSourceConfig,
    events: mpsc::Sender<SourceMessage>,
    readings: broadcast::Sender<Reading>,
    shutdown: CancellationToken,
) {
    let name: Arc<str> = cfg.name.as_str().into();
    let mut stream = NodeStream::new(&cfg.name, cfg.thresholds);
    let mut outbox = Outbox::new(name.clone(), events);
    let mut node = Heard {
        name: name.clone(),
        last: Utc::now(),
        lost: false,
    };
    let (path, baud) = (cfg.port.clone(), cfg.baud);
    let mut link = Link::new(name.clone(), &cfg.port, move || {
        crate::sources::serial::open(&path, baud)
    });
    let mut buf = vec![0u8; 4096];
    while let Some(mut port) = link
        .open(&mut outbox, &shutdown, |why, out| {
            node.lose(why.into(), out)
        })
        .await
    {
        let mut decoder = Decoder::new();
        // The node is judged on valid frames, not on bytes: a wrong baud rate or a failing UART
        // delivers a steady stream of bytes that never decode, and must not pass for a node.
        let mut silent_at = Instant::now() + cfg.silence;
        let mut garbage = 0u64;
        let lost = loop {
            let read = tokio::select! {
                r = tokio::time::timeout_at(silent_at, port.read(&mut buf)) => r,
                _ = outbox.hand_over() => continue,
                _ = shutdown.cancelled() => break None,
            };
            let now = Utc::now();
            match read {
                Err(_) => {
                    node.no_frame(garbage, cfg.silence, &mut outbox);
                    silent_at = Instant::now() + cfg.silence;
                    garbage = 0;
                }
                Ok(Ok(0)) => break Some("end of file".to_string()),
                Ok(Err(e)) => break Some(e.to_string()),
                Ok(Ok(n)) => {
                    let mut got_frame = false;
                    for frame in decoder.feed(&buf[..n]) {
                        match frame {
                            Ok(f) => {
                                got_frame = true;
                                stream.on_frame(f, now, &mut |o| match o {
                                    StreamOutput::Reading(r) => {
                                        // Readings are for live views: a lagging viewer misses
                                        // the oldest and is told how many.
                                        let _ = readings.send(r);
                                    }
                                    // Only commissioning reads phase angles (from its own
                                    // NodeStream); the service would only queue one a second.
                                    StreamOutput::Phases(_) => {}
                                    other => {
                                        outbox.send(SourceMessage::Stream(name.clone(), other))
                                    }
                                });
                            }
                            Err(e) => tracing::debug!(source = %name, "bad frame: {e}"),
                        }
                    }
                    if got_frame {
                        node.heard(now, &mut outbox);
                        silent_at = Instant::now() + cfg.silence;
                        garbage = 0;
                    } else {
                        garbage += n as u64;
                        // Bytes keep the read ready, so the silence timeout alone would never
                        // fire: the deadline is checked here too.
                        if Instant::now() >= silent_at {
                            node.no_frame(garbage, cfg.silence, &mut outbox);
                            silent_at = Instant::now() + cfg.silence;
                            garbage = 0;
                        }
                    }
                    let mut stats = stream.stats().clone();
                    stats.absorb(decoder.stats());
                    outbox.send(SourceMessage::Stats(name.clone(), stats));
                }
            }
            if outbox.is_closed() {
                break None;
            }
        };
        match lost {
            Some(why) => link.lost(&mut outbox, why, |why, out| node.lose(why.into(), out)),
            None => break,
        }
    }
    outbox.drain(DRAIN_AT_SHUTDOWN).await;
}

/// Whether the node is heard, and since when.
struct Heard {
    name: Arc<str>,
    last: DateTime<Utc>,
    lost: bool,
}

impl Heard {
    /// Reported once per loss, however it goes on (silence, then the port gone).
    fn lose(&mut self, reason: String, out: &mut Outbox<SourceMessage>) {
        if !self.lost {
            self.lost = true;
            out.send(SourceMessage::SensorLost {
                source: self.name.clone(),
                since: self.last,
                reason,
            });
        }
    }

    /// No valid frame for the silence limit: silence, or bytes that never made a frame.
    fn no_frame(&mut self, garbage: u64, silence: Duration, out: &mut Outbox<SourceMessage>) {
        let reason = if garbage > 0 {
            format!(
                "{garbage} bytes but no valid frame for {silence:?}: wrong baud rate or a failing link"
            )
        } else {
            format!("no frame for {silence:?}")
        };
        if !self.lost {
            tracing::warn!(source = %self.name, "sensor node lost: {reason}");
        }
        self.lose(reason, out);
    }

    fn heard(&mut self, now: DateTime<Utc>, out: &mut Outbox<SourceMessage>) {
        self.last = now;
        if self.lost {
            self.lost = false;
            tracing::info!(source = %self.name, "sensor node heard again");
            out.send(SourceMessage::SensorBack {
                source: self.name.clone(),
                at: now,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_source_waiting_to_reopen_its_port_stops_when_cancelled() {
        // A port that cannot open: the source waits to retry, and must stop at once when told.
        let (tx, mut rx) = mpsc::channel(16);
        let (readings, _) = broadcast::channel(16);
        let stop = CancellationToken::new();
        let shutdown = stop.clone();
        let task = tokio::spawn(run(
            PqlinkSourceConfig {
                name: "gone".into(),
                port: "/nonexistent/kare-test-port".into(),
                baud: 115_200,
                thresholds: Thresholds::typical(230.0),
                silence: Duration::from_secs(2),
            },
            tx,
            readings,
            shutdown,
        ));
        assert!(matches!(
            rx.recv().await,
            Some(SourceMessage::SensorLost { .. })
        ));
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .expect("the source ended")
            .unwrap();
    }
}
