//! `kare run`: the service on the configured sensor nodes and meters, serving the API and printing
//! events until Ctrl-C or SIGTERM; and what `kare demo` shares with it (serving, stopping,
//! retention, routes).

use super::console::{describe, describe_ticket};
use crate::config::Config;
use crate::pipeline::service::{Service, ServiceConfig};
use crate::web::{guarded_router, ApiState};
use anyhow::Context;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Ctrl-C (SIGINT) and SIGTERM (systemd's stop), caught from the moment this is made. Made first
/// thing by `kare run` and `kare demo`: a signal that arrives while the service is still starting
/// (the store opening, restored tickets being delivered) is kept and stops it cleanly once it
/// serves, instead of killing the process with the default disposition.
pub(super) struct StopSignals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    /// Starts catching the signals now.
    pub(super) fn catch() -> anyhow::Result<StopSignals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let int = signal(SignalKind::interrupt()).context("cannot catch Ctrl-C (SIGINT)")?;
            let term = match signal(SignalKind::terminate()) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!(
                        "cannot watch for SIGTERM ({e}); Ctrl-C still stops kare cleanly"
                    );
                    None
                }
            };
            Ok(StopSignals { int, term })
        }
        #[cfg(not(unix))]
        Ok(StopSignals {})
    }

    /// Resolves at the first Ctrl-C or SIGTERM (at once if one came already).
    async fn requested(&mut self) {
        #[cfg(unix)]
        {
            match &mut self.term {
                Some(term) => {
                    tokio::select! {
                        _ = self.int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                None => {
                    self.int.recv().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Binds the web server's address (before the service starts, so `kare demo` can print the
/// pages' URL first).
pub(super) async fn bind(listen: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen).await.with_context(|| {
        format!("cannot listen on {listen}: is another kare (or another program) using it? choose another with --listen")
    })
}

/// Serves the pages and the API and prints events until Ctrl-C or SIGTERM, or until `until`
/// has passed.
pub(super) async fn serve(
    service: Service,
    listener: tokio::net::TcpListener,
    until: Option<Duration>,
    mut signals: StopSignals,
    access: crate::web::auth::Access,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let scheme = if access.tls.is_some() {
        "https"
    } else {
        "http"
    };
    crate::cli::outln!(
        "kare: API on {scheme}://{addr}/api/v1/status  /api/v1/events  /api/v1/stream (SSE){}",
        match &access.auth {
            Some(_) => "; authentication required ([auth])",
            None => "",
        }
    );
    let app = guarded_router(ApiState::new(&service), &access);
    let server = match access.tls.clone() {
        None => tokio::spawn(async move { axum::serve(listener, app).await }),
        Some(tls) => {
            let std_listener = listener.into_std()?;
            std_listener.set_nonblocking(true)?;
            let config = axum_server::tls_rustls::RustlsConfig::from_config(tls);
            tokio::spawn(async move {
                axum_server::from_tcp_rustls(std_listener, config)
                    .serve(app.into_make_service())
                    .await
            })
        }
    };

    let mut updates = service.updates.subscribe();
    let mut tickets = service.ticket_updates.subscribe();
    let printer = tokio::spawn(async move {
        loop {
            let line = tokio::select! {
                t = tickets.recv() => match t {
                    Ok(t) => describe_ticket(&t),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        format!("kare: console fell behind, {n} ticket updates not printed (all are in /api/v1/tickets)")
                    }
                    Err(_) => break,
                },
                u = updates.recv() => match u {
                    Ok(ev) => describe(&ev),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        format!("kare: console fell behind, {n} event updates not printed (all are in /api/v1/events)")
                    }
                    Err(_) => break,
                },
            };
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    });
    // Ctrl-C or SIGTERM (systemd's stop) end it cleanly, with or without a --duration.
    let stop = async {
        let limit = async {
            match until {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = limit => {}
            _ = signals.requested() => {}
        }
    };
    let battery = service.battery_low.clone();
    // The store is open, the sources started, the server listens: ready for systemd, and the
    // watchdog pings while the consumer and the store writer progress.
    let watchdog = crate::watchdog::Watchdog::ready(service.heartbeats.clone());
    tokio::select! {
        _ = stop => {}
        _ = battery.notified() => {
            crate::cli::outln!("kare: UPS battery low: tickets updated, shutting down cleanly");
        }
        r = server => {
            r.context("API server task")?.context("API server")?;
        }
    }
    watchdog.stopping().await;
    let all = service.log.all();
    crate::cli::outln!(
        "kare: stopping; {} event(s) logged, {} still open",
        all.len(),
        all.iter().filter(|e| e.is_open()).count()
    );
    let influx = service.influx.clone();
    let pending = service.pending.clone();
    let store = service.store.clone();
    service.stop().await;
    if let Some(stats) = influx {
        let s = stats.lock().unwrap_or_else(|p| p.into_inner()).clone();
        crate::cli::outln!(
            "kare: InfluxDB: {} points written, {} kept in the backlog for the next start{}",
            s.written_points,
            s.backlog_points,
            s.last_error
                .map(|e| format!(" (last error: {e})"))
                .unwrap_or_default()
        );
    }
    printer.abort();
    // Issue 11: a run that lost events or ticket changes to a store that could not write must
    // not end as a success (the consumer has logged each; this is the summary and exit status).
    let p = pending.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let lost = p.events as u64 + p.events_dropped;
    let lost_tickets = (p.ticket_changes as u64) + p.ticket_changes_dropped;
    if lost + lost_tickets > 0 {
        anyhow::bail!(
            "{lost} event(s) and {lost_tickets} ticket change(s) never reached the store{}",
            store
                .and_then(|s| s.health().problem())
                .map(|p| format!(": {p}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// `kare run`: the configured sensor nodes, for real.
pub async fn run(config: Config, until: Option<Duration>) -> anyhow::Result<()> {
    let signals = StopSignals::catch()?;
    // No open doors: beyond loopback only with [auth]; every secret file 0600.
    let access = access(&config, config.listen)?;
    if config.node.is_empty() {
        anyhow::bail!(
            "the configuration has no [[node]]: add one with its serial port and udin (see systemd/kare.toml)"
        );
    }
    let Some(site) = config.site.clone() else {
        anyhow::bail!(
            "the configuration has no [site]: tickets need the customer, tier and contacts (see systemd/kare.toml)"
        );
    };
    let store_cfg = config.store.clone().unwrap_or_default();
    let store = crate::store::StoreHandle::open(&store_cfg).with_context(|| {
        format!(
            "cannot open the store {}: check that its directory exists and is writable (set [store] path)",
            store_cfg.path.display()
        )
    })?;
    let (meter_buses, coarse) = config.meter_buses()?;
    let ups = config.ups_task()?;
    if config.delivery.is_none() {
        tracing::warn!("no [delivery] endpoints: tickets are stored and shown, but sent nowhere");
    }
    warn_at_start(&config.routes.warnings());
    let service = Service::start(ServiceConfig {
        nodes: config.sources(),
        site,
        rules: config.rules.clone(),
        meter_buses,
        ups,
        coarse,
        store: Some(store.clone()),
        delivery: config.delivery.clone(),
        routes: routes(&config),
        influx: config.influx_for(
            store_cfg
                .path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new(".")),
        ),
    });
    let retention = Retention::start(&store, &store_cfg);
    let listener = bind(config.listen).await?;
    crate::cli::outln!(
        "kare: pages on {}://{}/now",
        if access.tls.is_some() {
            "https"
        } else {
            "http"
        },
        listener.local_addr()?
    );
    let result = serve(service, listener, until, signals, access).await;
    retention.stop().await;
    store.close().await;
    result
}

/// The web server's gate for `listen`: refuses an address beyond loopback without `[auth]`,
/// and any secret file (token, users, TLS key) that others may read.
pub(super) fn access(
    config: &Config,
    listen: std::net::SocketAddr,
) -> anyhow::Result<crate::web::auth::Access> {
    let access =
        crate::web::auth::Access::for_listen(listen, config.auth.as_ref(), config.tls.as_ref())?;
    if let Some(a) = &access.auth {
        tracing::info!(
            auth = ?a,
            "authentication on: bearer tokens and the pages' users from [auth]"
        );
    }
    Ok(access)
}

/// The store's retention, pruning at start and hourly (by age and size, never an open ticket
/// or an undelivered row) while the service runs.
pub(super) struct Retention(CancellationToken, tokio::task::JoinHandle<()>);

impl Retention {
    pub(super) fn start(
        store: &crate::store::StoreHandle,
        cfg: &crate::store::StoreConfig,
    ) -> Retention {
        let stop = CancellationToken::new();
        let task = tokio::spawn(crate::store::run_retention(
            store.clone(),
            cfg.clone(),
            Duration::from_secs(3600),
            stop.clone(),
        ));
        Retention(stop, task)
    }

    pub(super) async fn stop(self) {
        self.0.cancel();
        let _ = self.1.await;
    }
}

/// The configured routes with each endpoint's channel.
pub(super) fn routes(config: &Config) -> crate::actions::record::Routes {
    let endpoints = config
        .delivery
        .as_ref()
        .map(|d| d.endpoint.as_slice())
        .unwrap_or_default();
    config.routes.resolve(endpoints)
}

/// Says at start what the configuration leaves undone (a kind of ticket routed nowhere): in the
/// log, and on stderr where an operator starting kare by hand sees it whatever `KARE_LOG` says.
pub(super) fn warn_at_start(warnings: &[String]) {
    for w in warnings {
        tracing::warn!("{w}");
        eprintln!("kare: warning: {w}");
    }
}
