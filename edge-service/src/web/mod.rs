//! The appliance's web server: the JSON API ([`api`]) and, composed here, the pages
//! ([`pages`]: Now, Events, Tickets, Report), the printable report ([`report`]), their two
//! languages ([`i18n`]) and charts ([`charts`]).

pub mod api;
pub mod auth;
pub mod charts;
pub mod i18n;
pub mod pages;
pub mod report;
pub mod tls;

pub use api::{meter_json, reading_json, ApiState};
pub use i18n::Lang;
pub use report::report_document;

/// Every route the appliance serves.
pub fn router(state: ApiState) -> axum::Router {
    api::api_router(state.clone()).merge(pages::router(state))
}

/// Every route, behind the authentication gate when `[auth]` is set (`auth::guard`).
pub fn guarded_router(state: ApiState, access: &auth::Access) -> axum::Router {
    auth::guard(router(state), access.auth.clone())
}
