//! The history sink: what the reports need besides events and tickets, recorded in the store
//! (issue 12). It follows the half-cycle readings and folds them into IEC 61000-4-30 10-minute
//! Urms aggregates per channel and 10-second frequency values, each flagged when a dip, swell
//! or interruption of its source overlaps it or a window was not locked (a completed 10 s waits
//! two seconds of data for an event that began in its last half-cycles); and it folds each
//! meter's polls into 15-minute intervals (energy registers as last read, mean and highest
//! power, power factor, voltage THD). At start it saves the site record the reports read.
//!
//! Like every sink it never makes the consumer wait: the consumer's calls go into a bounded
//! queue (a full queue is counted and logged, never silent); readings come from the broadcast,
//! where falling behind is counted and logged too. Rows are written through the
//! [`StoreHandle`] as each interval completes (a few rows every 10 s). A stop writes the
//! intervals in progress; the next start writes the rest of those intervals, which the store
//! merges into the same row, so a restart inside an interval leaves one row for it that holds
//! both parts (its flag, extremes and windows from before the restart too).

mod fold;

pub use fold::{HistoryFold, Rows, SourceInfo, AGGREGATE_S, FREQUENCY_S, METER_S};

use crate::actions::tickets::TicketRecord;
use crate::pipeline::event_log::{EventBody, LoggedEvent};
use crate::pipeline::health::Health;
use crate::pipeline::status::SourceStatus;
use crate::sinks::{Sink, SinkContext, StartedSink};
use crate::sources::meters::readings::{MeterEvent, MeterReading};
use crate::store::{SiteRecord, StoreHandle};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

/// What the consumer hands over that the history needs.
enum Feed {
    Voltage {
        source: String,
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
    },
    Meter(Vec<MeterReading>),
}

/// The consumer's side: queue and return.
struct HistoryFeed {
    tx: mpsc::Sender<Feed>,
    dropped: AtomicU64,
}

impl HistoryFeed {
    fn send(&self, f: Feed) {
        if self.tx.try_send(f).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!("history sink behind: {n} event or meter updates not recorded");
            }
        }
    }
}

impl Sink for HistoryFeed {
    fn event(&self, ev: &LoggedEvent) {
        if let EventBody::Voltage(_) = &ev.body {
            self.send(Feed::Voltage {
                source: ev.source.clone(),
                start: ev.body.start(),
                end: ev.body.end(),
            });
        }
    }
    fn ticket(&self, _: &TicketRecord) {}
    fn meter_readings(&self, rs: &[MeterReading]) {
        self.send(Feed::Meter(rs.to_vec()));
    }
    fn interval(&self, _: &[MeterReading]) {}
    fn meter_event(&self, _: &MeterEvent) {}
    fn health(&self, _: &Health) {}
    fn buffered(&self) -> u64 {
        0
    }
}

/// Starts the history sink on `store`: saves `site`, then records until stopped.
/// `status` gives each node's channel names and nominal frequency once it has said hello.
pub fn start(
    store: StoreHandle,
    site: SiteRecord,
    ctx: &SinkContext,
    status: Arc<Mutex<BTreeMap<String, SourceStatus>>>,
) -> StartedSink {
    let (tx, rx) = mpsc::channel(4096);
    let stop = CancellationToken::new();
    let udin: HashMap<String, f64> = ctx.udin.iter().cloned().collect();
    let writer = tokio::spawn(run(
        store,
        site,
        ctx.readings.subscribe(),
        rx,
        udin,
        status,
        stop.clone(),
    ));
    StartedSink {
        feed: Arc::new(HistoryFeed {
            tx,
            dropped: AtomicU64::new(0),
        }),
        tasks: Vec::new(),
        stop,
        writer,
        health_every: None,
    }
}

async fn save(store: &StoreHandle, rows: Rows) {
    if rows.is_empty() {
        return;
    }
    let Rows {
        aggregates,
        frequency,
        meters,
    } = rows;
    // Each table in one write; a failure is logged and the rows are lost (history, not the
    // record of an event: the store's alarm covers a disk that cannot write).
    if !aggregates.is_empty() {
        if let Err(e) = store.save_aggregates(aggregates).await {
            tracing::warn!("10-minute aggregates not recorded: {e}");
        }
    }
    if !frequency.is_empty() {
        if let Err(e) = store.save_frequency(frequency).await {
            tracing::warn!("10-second frequency not recorded: {e}");
        }
    }
    if !meters.is_empty() {
        if let Err(e) = store.save_meter_intervals(meters).await {
            tracing::warn!("meter intervals not recorded: {e}");
        }
    }
}

fn source_info(
    status: &Mutex<BTreeMap<String, SourceStatus>>,
    udin: &HashMap<String, f64>,
    source: &str,
) -> SourceInfo {
    let st = status.lock().unwrap_or_else(|p| p.into_inner());
    let s = st.get(source);
    SourceInfo {
        channels: s.map(|s| s.channels.clone()).unwrap_or_default(),
        udin_v: udin.get(source).copied().unwrap_or(0.0),
        nominal_hz: s.and_then(|s| s.nominal_hz).map_or(0.0, f64::from),
    }
}

async fn run(
    store: StoreHandle,
    mut site: SiteRecord,
    mut readings: broadcast::Receiver<crate::sources::pqlink::Reading>,
    mut feed: mpsc::Receiver<Feed>,
    udin: HashMap<String, f64>,
    status: Arc<Mutex<BTreeMap<String, SourceStatus>>>,
    stop: CancellationToken,
) {
    if let Err(e) = store.save_site(site.clone()).await {
        tracing::warn!("site record not saved (reports read it): {e}");
    }
    let info = |s: &str| source_info(&status, &udin, s);
    let mut fold = HistoryFold::default();
    let mut latest: Option<DateTime<Utc>> = None;
    let mut lagged: u64 = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut readings_open = true;
    loop {
        let mut rows = Rows::default();
        tokio::select! {
            _ = stop.cancelled() => break,
            r = readings.recv(), if readings_open => match r {
                Ok(r) => {
                    latest = Some(latest.map_or(r.start, |l| l.max(r.start)));
                    let inf = info(&r.source);
                    if inf.nominal_hz > 0.0 && inf.nominal_hz != site.nominal_hz {
                        // The node's hello says what the supply's nominal frequency is.
                        site.nominal_hz = inf.nominal_hz;
                        if let Err(e) = store.save_site(site.clone()).await {
                            tracing::warn!("site record not saved: {e}");
                        }
                    }
                    fold.reading(&r, &inf, &mut rows);
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    lagged += n;
                    tracing::warn!(
                        "history sink fell behind the readings: {n} half cycles missed \
                         ({lagged} in all); their intervals hold fewer windows"
                    );
                }
                Err(broadcast::error::RecvError::Closed) => readings_open = false,
            },
            f = feed.recv() => match f {
                Some(Feed::Voltage { source, start, end }) => fold.voltage_event(&source, start, end),
                Some(Feed::Meter(rs)) => fold.meter_poll(&rs, &mut rows),
                None => break,
            },
            _ = tick.tick() => {
                // Sources gone quiet: their intervals end by the data clock (or the wall
                // clock when no data comes), with time for late windows.
                let now = latest.map_or(Utc::now(), |l| l.max(Utc::now()));
                fold.flush_before(now - chrono::TimeDelta::seconds(FREQUENCY_S * 2), &info, &mut rows);
            }
        }
        save(&store, rows).await;
    }
    // What the consumer handed over on its way out, then the intervals in progress.
    let mut rows = Rows::default();
    while let Ok(f) = feed.try_recv() {
        match f {
            Feed::Voltage { source, start, end } => fold.voltage_event(&source, start, end),
            Feed::Meter(rs) => fold.meter_poll(&rs, &mut rows),
        }
    }
    fold.finish(&info, &mut rows);
    save(&store, rows).await;
}
