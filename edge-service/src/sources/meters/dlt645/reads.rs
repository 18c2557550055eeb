//! What a DL/T 645 reply becomes: a present value ([`MeterMessage::Readings`]), a power-down
//! the meter recorded ([`MeterEvent::PowerDown`], each record once, with the meter's own
//! times), or load-profile records ([`MeterMessage::Interval`], stamped with their interval:
//! history, kept apart from the present).
//!
//! [`MeterEvent::PowerDown`]: crate::sources::meters::readings::MeterEvent::PowerDown

use super::bus::Bus;
use super::client::TxError;
use super::codec::{
    self as dlt645, parse_load_records, read_data, Address, Identifier, LoadProfileRead, Record,
    Value,
};
use super::LOAD_PROFILE_BLOCKS;
use crate::sources::meters::readings::{MeterEvent, MeterMessage, MeterReading};
use chrono::Timelike;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

impl Bus {
    pub(super) async fn poll_value<P>(
        &mut self,
        idx: usize,
        port: &mut P,
        address: Address,
        id: &Identifier,
        readings: &mut Vec<MeterReading>,
    ) -> Result<(), TxError>
    where
        P: AsyncRead + AsyncWrite + Unpin,
    {
        let value = self
            .client
            .read_value(port, address, &read_data(address, id.di), id.di)
            .await?;
        let device = self.devices[idx].health.device().clone();
        let values = match id.decode(&value) {
            Ok(v) => v,
            Err(e) => {
                // A reply that passed the checksum but does not fit the table: counted as a
                // bad frame; the meter is alive.
                self.client.stats.bad_frames += 1;
                tracing::warn!(source = %self.name, device = %device, di = %id.di, name = %id.name, "{e}");
                return Ok(());
            }
        };
        if id.record == Some(Record::PowerDown) {
            self.power_down(idx, &values);
        } else if let Some((quantity, value)) = id.reading(&values) {
            readings.push(MeterReading {
                source: self.name.clone(),
                device,
                at: self.cfg.clock.now(),
                quantity,
                value,
            });
        } else {
            tracing::debug!(source = %self.name, device = %device, di = %id.di, name = %id.name, ?values, "value without a quantity");
        }
        Ok(())
    }

    /// A power-down record: reported when it differs from the last one seen (a new power-down,
    /// or the end time of one now filled in).
    pub(super) fn power_down(&mut self, idx: usize, values: &[Value]) {
        let [Value::Time(Some(start)), Value::Time(end)] = values else {
            return; // All zeros: the meter has recorded no power-down.
        };
        let record = (*start, *end);
        if self.devices[idx].last_power_down == Some(record) {
            return;
        }
        self.devices[idx].last_power_down = Some(record);
        let event = MeterEvent::PowerDown {
            source: self.name.clone(),
            device: self.devices[idx].health.device().clone(),
            start: self.to_utc(record.0),
            end: record.1.map(|t| self.to_utc(t)),
        };
        tracing::info!(source = %self.name, device = %self.devices[idx].health.device(), start = %record.0, "power-down recorded by the meter");
        self.outbox.send(MeterMessage::Event(event));
    }

    pub(super) async fn poll_load_profile<P>(
        &mut self,
        idx: usize,
        port: &mut P,
        address: Address,
        id: &Identifier,
        readings: &mut Vec<MeterReading>,
    ) -> Result<(), TxError>
    where
        P: AsyncRead + AsyncWrite + Unpin,
    {
        let blocks = LOAD_PROFILE_BLOCKS;
        let read = match id.di {
            dlt645::load_profile::DI_EARLIEST => LoadProfileRead::Earliest { blocks },
            dlt645::load_profile::DI_LATEST => LoadProfileRead::Latest { blocks },
            _ => {
                // First read: the records of the last hour or so.
                let from = self.devices[idx].profile_from.unwrap_or_else(|| {
                    let period = self.devices[idx]
                        .polls
                        .iter()
                        .find(|p| p.id.di == id.di)
                        .map(|p| p.every)
                        .unwrap_or(Duration::from_secs(900));
                    let back = chrono::Duration::from_std(period * u32::from(blocks))
                        .unwrap_or_else(|_| chrono::Duration::hours(1));
                    self.meter_now() - back
                });
                LoadProfileRead::Since {
                    from: from
                        .with_second(0)
                        .unwrap_or(from)
                        .with_nanosecond(0)
                        .unwrap_or(from),
                    blocks,
                }
            }
        };
        let request = match read.request(address) {
            Ok(r) => r,
            Err(e) => return Err(TxError::Link(format!("cannot build the request: {e}"))),
        };
        let value = self
            .client
            .read_value(port, address, &request, id.di)
            .await?;
        let device = self.devices[idx].health.device().clone();
        let records = match parse_load_records(&value) {
            Ok(r) => r,
            Err(e) => {
                self.client.stats.bad_frames += 1;
                tracing::warn!(source = %self.name, device = %device, di = %id.di, "{e}");
                return Ok(());
            }
        };
        if records.flagged_bad > 0 {
            tracing::warn!(source = %self.name, device = %device, count = records.flagged_bad, "load-profile records the meter marks as not correct, skipped");
        }
        for r in &records.records {
            let at = self.to_utc(r.time);
            readings.extend(r.values.iter().map(|&(quantity, value)| MeterReading {
                source: self.name.clone(),
                device: device.clone(),
                at,
                quantity,
                value,
            }));
        }
        if let Some(last) = records.records.iter().map(|r| r.time).max() {
            self.devices[idx].profile_from = Some(last + chrono::Duration::minutes(1));
        }
        Ok(())
    }
}
