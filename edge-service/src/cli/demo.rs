//! `kare demo`: the whole service on a simulated sensor node and two simulated meters, each on a
//! pseudo-terminal, with a local repair desk (a webhook receiver) and a store in a folder.

use super::run::{routes, serve, warn_at_start, Retention, StopSignals};
use crate::actions::site::Site;
use crate::config::Config;
use crate::pipeline::service::{Service, ServiceConfig};
use crate::sim::pty::Pty;
use crate::sim::{self, Pace, Scenario};
use crate::sources::pqlink::PqlinkSourceConfig;
use anyhow::Context;
use chrono::SecondsFormat;
use kare_firmware::detector::Thresholds;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The demo's repair desk: a local webhook receiver that checks each delivery's signature and
/// prints what arrived. Returns its URL.
async fn demo_desk(secret: &'static str) -> anyhow::Result<String> {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, StatusCode};
    let app = axum::Router::new().route(
        "/tickets",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| async move {
            let h = |k: &str| {
                headers
                    .get(k)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string()
            };
            let ok = crate::actions::delivery::webhook::verify(
                secret.as_bytes(),
                &h("x-kare-timestamp"),
                &body,
                &h("x-kare-signature"),
            );
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            crate::cli::outln!(
                "{}  DESK   received {} [{}] {}{}",
                chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
                h("idempotency-key"),
                v["state"].as_str().unwrap_or("?"),
                v["title"].as_str().unwrap_or("?"),
                if ok { "" } else { "  (BAD SIGNATURE)" }
            );
            if ok {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot start the demo's webhook receiver")?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}/tickets"))
}

/// What `kare demo` was asked for.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Configuration (listen address, demo scenario and speed).
    pub config: Config,
    /// Scenario file, overriding the configuration's.
    pub scenario: Option<PathBuf>,
    /// Speed factor, overriding the configuration's (1 = real time, 0 = as fast as possible).
    pub speed: Option<f64>,
    /// Stop after this long (default: run until Ctrl-C).
    pub duration: Option<Duration>,
    /// Where the demo keeps its store (default: a new temporary folder).
    pub data_dir: Option<PathBuf>,
}

/// `kare demo`: a simulated sensor node on a pseudo-terminal pair, and the real pipeline on the
/// other end, opened as a serial port.
pub async fn demo(opts: DemoOptions) -> anyhow::Result<()> {
    let signals = StopSignals::catch()?;
    // No open doors, as `kare run`: beyond loopback only with [auth].
    let access = super::run::access(&opts.config, opts.config.listen)?;
    // The pages' address first: it is what a person running the demo opens.
    let listener = super::run::bind(opts.config.listen).await?;
    crate::cli::outln!(
        "kare demo: open {}://{}/now (events, tickets, the report, in 简体中文 or English)",
        if access.tls.is_some() {
            "https"
        } else {
            "http"
        },
        listener.local_addr()?
    );
    let scenario_path = opts
        .scenario
        .clone()
        .or_else(|| opts.config.demo.scenario.clone().map(PathBuf::from));
    let scenario = match &scenario_path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read scenario {}", p.display()))?;
            Scenario::from_toml(&text).with_context(|| format!("scenario {}", p.display()))?
        }
        None => Scenario::demo(),
    };
    let speed = opts.speed.or(opts.config.demo.speed).unwrap_or(1.0);
    let pace = Pace::from_speed(speed).with_context(|| {
        format!("--speed must be 0 (as fast as possible) or a positive factor, not {speed}")
    })?;
    let pty = Pty::open().context("cannot open a pseudo-terminal pair for the simulated node")?;
    let port = pty.path.to_string_lossy().into_owned();
    crate::cli::outln!(
        "kare demo: simulated sensor node writing pqlink to {} ({} V, {} Hz, {} channels, speed {speed}x)",
        port,
        scenario.udin,
        scenario.nominal_hz,
        scenario.channels.len()
    );
    let mut nodes = vec![PqlinkSourceConfig {
        name: "demo-node".into(),
        port: port.clone(),
        baud: 115_200,
        thresholds: Thresholds::typical(scenario.udin as f32),
        silence: Duration::from_secs(2),
    }];
    nodes.extend(opts.config.sources());
    let site = opts.config.site.clone().unwrap_or_else(Site::demo);
    crate::cli::outln!(
        "kare demo: site {} ({}, {:?} tier); generator request after {} min of outage",
        site.id,
        site.customer_name,
        site.tier,
        site.generator.after_minutes
    );
    let dir = match &opts.data_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("kare-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut store_cfg = opts.config.store.clone().unwrap_or_default();
    store_cfg.path = dir.join("kare.db");
    let store = crate::store::StoreHandle::open(&store_cfg)
        .with_context(|| format!("cannot open the demo's store in {}", dir.display()))?;
    let store_for_retention = store.clone();
    // Without configured endpoints the demo delivers to its own local repair desk.
    let (delivery, routes) = match &opts.config.delivery {
        Some(d) => {
            warn_at_start(&opts.config.routes.warnings());
            (d.clone(), routes(&opts.config))
        }
        None => {
            const SECRET: &str = "kare-demo-secret";
            let url = demo_desk(SECRET).await?;
            crate::cli::outln!(
                "kare demo: repair desk (webhook receiver) on {url}; store in {}",
                dir.display()
            );
            let mut d = crate::actions::delivery::DeliveryConfig::default();
            d.endpoint
                .push(crate::actions::delivery::EndpointConfig::Webhook(
                    crate::actions::delivery::config::WebhookConfig {
                        name: "demo-desk".into(),
                        url,
                        secret: SECRET.into(),
                        secret_file: None,
                        timeout_s: 5.0,
                        headers: Default::default(),
                    },
                ));
            let mut r = crate::actions::record::Routes::default();
            for kind in crate::actions::rules::TicketKind::ALL {
                r.by_kind.insert(
                    kind.as_str().into(),
                    vec![("demo-desk".into(), crate::store::Channel::Webhook)],
                );
            }
            (d, r)
        }
    };
    if let Some(i) = &opts.config.influx {
        crate::cli::outln!(
            "kare demo: writing to InfluxDB at {} ({}), store-and-forward backlog in {}",
            i.url,
            match i.api {
                crate::sinks::influx::Api::V1 => format!("database {}", i.database),
                crate::sinks::influx::Api::V2 => format!("org {}, bucket {}", i.org, i.bucket),
            },
            dir.display()
        );
    }
    let (mut meter_buses, mut coarse) = opts.config.meter_buses()?;
    // Two simulated meters on the node's supply, each on its own pseudo-terminal and polled by
    // the real pollers: readings, and the coarse outage detector's view of the same outage.
    let supply = sim::meters::Supply::new(scenario.udin, f64::from(scenario.nominal_hz));
    let modbus_meter = sim::meters::start_modbus_meter(supply.clone())
        .context("cannot start the simulated Modbus meter")?;
    let dlt645_meter = sim::meters::start_dlt645_meter(supply.clone())
        .context("cannot start the simulated DL/T 645 meter")?;
    // The meters live on the simulation's data clock, the node's: the supply's time is that of
    // the half cycle its levels were copied from (set by the follower below), and the pollers
    // stamp readings with it. Their poll periods are periods of that clock: at --speed 10 they
    // poll ten times as often by the wall clock, so they see what they would see in real time.
    let data_period = |d: Duration| match speed {
        s if s > 0.0 => d.div_f64(s),
        _ => d, // as fast as possible: no relation to the wall clock; poll at the real periods
    };
    let mut modbus_bus = sim::meters::modbus_bus(
        "demo-modbus",
        &modbus_meter.port.to_string_lossy(),
        data_period(Duration::from_secs(2)),
    )?;
    modbus_bus.clock = supply.clock();
    // DL/T 645 is 8E1 on a real bus; pseudo-terminals refuse parity, so the demo runs 8N1.
    let mut dlt645_bus =
        sim::meters::dlt645_bus("demo-dlt645", &dlt645_meter.port.to_string_lossy());
    dlt645_bus.clock = supply.clock();
    for poll in dlt645_bus
        .devices
        .iter_mut()
        .flat_map(|d| d.polls.iter_mut())
    {
        poll.every = data_period(poll.every);
    }
    // A pseudo-terminal needs no line silence between frames; the standard's 50 ms gap would
    // stretch a cycle of ten reads over 5 s of data at --speed 10.
    dlt645_bus.inter_frame_ms =
        (data_period(Duration::from_millis(dlt645_bus.inter_frame_ms)).as_millis() as u64).max(5);
    crate::cli::outln!(
        "kare demo: simulated meters: Eastron SDM630 (Modbus RTU, slave {}) on {}, DL/T 645 meter {} on {}",
        sim::meters::MODBUS_SLAVE_ID,
        modbus_meter.port.display(),
        sim::meters::DLT645_ADDRESS,
        dlt645_meter.port.display()
    );
    for bus in [&modbus_bus.name, &dlt645_bus.name] {
        coarse.push((bus.clone(), Thresholds::typical(scenario.udin as f32)));
    }
    meter_buses.push(Box::new(move |tx, shutdown| {
        Box::pin(async move {
            if let Err(e) = crate::sources::meters::modbus::run(modbus_bus, tx, shutdown).await {
                tracing::error!("demo Modbus bus not started: {e}");
            }
        })
    }));
    meter_buses.push(Box::new(move |tx, shutdown| {
        Box::pin(crate::sources::meters::dlt645::run(
            dlt645_bus, tx, shutdown,
        ))
    }));
    let service = Service::start(ServiceConfig {
        nodes,
        site,
        rules: opts.config.rules.clone(),
        meter_buses,
        coarse,
        ups: None,
        store: Some(store),
        delivery: Some(delivery),
        routes,
        influx: opts.config.influx_for(&dir),
    });
    // The meters measure what the node measures: follow its half-cycle readings (a lagging
    // follower just skips some; the meters poll every few seconds anyway).
    let mut node_readings = service.readings.subscribe();
    let udin = scenario.udin as f32;
    let follower = tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match node_readings.recv().await {
                Ok(r) if &*r.source == "demo-node" && r.channels > 0 => {
                    for phase in 0..3 {
                        let ch = phase.min(usize::from(r.channels) - 1);
                        if let Some(v) = r.volts.get(ch) {
                            supply.set_percent(phase, v / udin * 100.0);
                        }
                    }
                    // The levels are those of this half cycle: the meters' time is its end.
                    supply.set_time(r.end);
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break,
            }
        }
    });

    let stop = Arc::new(AtomicBool::new(false));
    let sim_stop = stop.clone();
    let master = pty.master.try_clone().context("pseudo-terminal")?;
    // If the pipeline stops reading, the simulator must not hang in a write: it retries briefly,
    // then counts the frame dropped (as a node whose UART queue is full).
    crate::sim::pty::set_nonblocking(&master).context("pseudo-terminal")?;
    let sim = std::thread::Builder::new()
        .name("sensor-sim".into())
        .spawn(move || {
            crate::fault::trip("panic-sim");
            sim::run(&scenario, master, pace, &sim_stop)
        })
        .context("cannot start the simulator thread")?;

    let retention = Retention::start(&store_for_retention, &store_cfg);
    let result = serve(service, listener, opts.duration, signals, access).await;
    retention.stop().await;
    store_for_retention.close().await;
    stop.store(true, Ordering::Relaxed);
    match sim.join() {
        Ok(Ok(stats)) => crate::cli::outln!(
            "kare demo: simulator sent {} frames ({} bytes) over {:.1} s of scenario",
            stats.frames_written,
            stats.bytes_written,
            stats.scenario_s
        ),
        Ok(Err(e)) => eprintln!("kare demo: simulator stopped: {e}"),
        Err(_) => eprintln!("kare demo: simulator thread panicked"),
    }
    follower.abort();
    drop((modbus_meter, dlt645_meter));
    drop(pty);
    result
}
