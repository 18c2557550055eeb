//! The planned-outage rule: an outage beginning inside a window the utility announced (`[site]
//! planned_outage`) is recorded as a `planned` ticket (P4, no repair crew, no generator), with
//! the announcement's reference; it ends as the outage does.

use super::{Rules, TicketState};
use chrono::{DateTime, Utc};

impl Rules {
    /// The reference of the announced window covering `at`, if any.
    pub(super) fn planned_reference(&self, at: DateTime<Utc>) -> Option<String> {
        self.site.planned_at(at).map(|p| p.reference.clone())
    }

    /// A planned outage's title.
    pub(super) fn planned_title(
        who: &str,
        reference: &str,
        state: TicketState,
        duration_s: Option<f64>,
    ) -> String {
        match (state, duration_s) {
            (TicketState::Open, _) => format!("Planned outage at {who} ({reference})"),
            (_, Some(d)) => format!("Planned outage at {who} ({reference}) over after {d:.0} s"),
            _ => format!("Supply at {who}"),
        }
    }
}
