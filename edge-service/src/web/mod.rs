//! The appliance's web server: the JSON API ([`api`]) and, composed here, the pages.

pub mod api;

pub use api::{meter_json, reading_json, ApiState};

/// Every route the appliance serves.
pub fn router(state: ApiState) -> axum::Router {
    api::api_router(state)
}
