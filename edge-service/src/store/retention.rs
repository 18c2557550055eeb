//! Retention while the service runs: prune at start and hourly (by age and size, never an open
//! ticket or an undelivered row), on the writer thread between batches.

use super::{StoreConfig, StoreError, StoreHandle};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Prunes at start and then every `every`, until `shutdown` is cancelled; logs what it removed.
pub async fn run_retention(
    store: StoreHandle,
    cfg: StoreConfig,
    every: Duration,
    shutdown: CancellationToken,
) {
    loop {
        match store.prune(cfg.max_age(), cfg.max_db_bytes()).await {
            Ok(r) if r.removed_anything() || r.still_over_limit => {
                tracing::info!(store = store.path(), "{r}")
            }
            Ok(_) => {}
            Err(StoreError::Closed) => return,
            Err(e) => tracing::warn!("{e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
