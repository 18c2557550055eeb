//! Step "Meters": every configured meter read through the service's own pollers (the same code
//! `kare run` polls with, so what passes here polls there), for a short while: each device
//! either answers with its values or is reported with the poller's reason.

use super::check::{Check, Status, Step};
use crate::config::Config;
use crate::sources::meters::readings::{MeterEvent, MeterMessage, Quantity};
use crate::web::i18n::Lang;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One device's values, latest first read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MeterValues {
    /// Bus name.
    pub bus: String,
    /// Device name.
    pub device: String,
    /// `modbus` or `dlt645`.
    pub protocol: &'static str,
    /// The latest value of every quantity read.
    pub values: BTreeMap<Quantity, f64>,
    /// The poller's last reason for calling it offline, if it did and it never answered.
    pub offline: Option<String>,
}

impl MeterValues {
    /// The phase voltages, when the meter reads all three.
    pub fn phase_voltages(&self) -> Option<[f64; 3]> {
        let v = |q| self.values.get(&q).copied();
        Some([
            v(Quantity::VoltageA)?,
            v(Quantity::VoltageB)?,
            v(Quantity::VoltageC)?,
        ])
    }
}

/// Polls every configured bus until each device has answered or been reported offline, or
/// `listen` has passed; `progress` gets the fraction of devices settled.
pub async fn read_configured(
    cfg: &Config,
    listen: Duration,
    mut progress: impl FnMut(f64),
) -> anyhow::Result<Vec<MeterValues>> {
    let mut meters: BTreeMap<(String, String), MeterValues> = BTreeMap::new();
    let (tx, mut rx) = mpsc::channel(256);
    let stop = CancellationToken::new();
    let mut tasks = Vec::new();
    for (i, b) in cfg.modbus.iter().enumerate() {
        let bus = b
            .bus_config()
            .map_err(|p| anyhow::anyhow!("{}", p.under(&format!("modbus[{i}]"))))?;
        for d in &b.device {
            meters.insert(
                (b.name.clone(), d.name.clone()),
                MeterValues {
                    bus: b.name.clone(),
                    device: d.name.clone(),
                    protocol: "modbus",
                    ..Default::default()
                },
            );
        }
        let (tx, stop) = (tx.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let name = bus.name.clone();
            if let Err(e) = crate::sources::meters::modbus::run(bus, tx, stop).await {
                tracing::warn!(bus = %name, "Modbus bus not started: {e}");
            }
        }));
    }
    for (i, b) in cfg.dlt645.iter().enumerate() {
        let bus = b
            .bus_config()
            .map_err(|p| anyhow::anyhow!("{}", p.under(&format!("dlt645[{i}]"))))?;
        for d in &b.device {
            meters.insert(
                (b.name.clone(), d.name.clone()),
                MeterValues {
                    bus: b.name.clone(),
                    device: d.name.clone(),
                    protocol: "dlt645",
                    ..Default::default()
                },
            );
        }
        tasks.push(tokio::spawn(crate::sources::meters::dlt645::run(
            bus,
            tx.clone(),
            stop.clone(),
        )));
    }
    drop(tx);
    if meters.is_empty() {
        return Ok(Vec::new());
    }
    // A device is settled when it has given its voltages (or anything at all, for a meter
    // without them) or been declared offline.
    let total = meters.len();
    let mut settled: BTreeSet<(String, String)> = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + listen;
    while settled.len() < total {
        let msg = tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break,
            m = rx.recv() => match m { Some(m) => m, None => break },
        };
        match msg {
            MeterMessage::Readings(rs) => {
                for r in rs {
                    let key = (r.source.to_string(), r.device.to_string());
                    if let Some(m) = meters.get_mut(&key) {
                        m.values.insert(r.quantity, r.value);
                        m.offline = None;
                        if m.phase_voltages().is_some() || m.values.len() >= 3 {
                            settled.insert(key);
                        }
                    }
                }
            }
            MeterMessage::Event(MeterEvent::Offline {
                source,
                device,
                reason,
                ..
            }) => {
                let key = (source.to_string(), device.to_string());
                if let Some(m) = meters.get_mut(&key) {
                    if m.values.is_empty() {
                        m.offline = Some(reason);
                        settled.insert(key);
                    }
                }
            }
            _ => {}
        }
        progress(settled.len() as f64 / total as f64);
    }
    stop.cancel();
    for t in tasks {
        let _ = t.await;
    }
    progress(1.0);
    Ok(meters.into_values().collect())
}

/// One check per configured device.
pub fn meter_checks(lang: Lang, meters: &[MeterValues], listen: Duration) -> Vec<Check> {
    meters
        .iter()
        .map(|m| {
            let subject = format!("{}/{}", m.bus, m.device);
            if m.values.is_empty() {
                let why = m.offline.clone().unwrap_or_else(|| {
                    lang.ta(
                        "cm-meter-no-answer-within",
                        &[("seconds", &format!("{:.0}", listen.as_secs_f64()))],
                    )
                });
                return Check::new(
                    Step::Meters,
                    "meters.answer",
                    &subject,
                    Status::Fail,
                    lang.ta(
                        "cm-meter-silent",
                        &[("meter", subject.as_str()), ("why", why.as_str())],
                    ),
                )
                .fix(lang.ta("cm-meter-silent-fix", &[("protocol", m.protocol)]));
            }
            let mut c = Check::new(
                Step::Meters,
                "meters.answer",
                &subject,
                Status::Pass,
                lang.ta(
                    "cm-meter-ok",
                    &[
                        ("meter", subject.as_str()),
                        ("values", &m.values.len().to_string()),
                    ],
                ),
            );
            for (q, v) in &m.values {
                c = c.number(q.as_str(), *v, Some(q.unit()));
            }
            c
        })
        .collect()
}
