//! What the service does about events: the ticket rules (pure), the site they are judged for,
//! a ticket change recorded with its deliveries, the in-memory ticket view, and delivery to the
//! repair desk's endpoints.
pub mod delivery;
pub mod record;
pub mod rules;
pub mod site;
pub mod tickets;
