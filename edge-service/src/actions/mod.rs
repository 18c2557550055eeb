//! What the service does about events: the ticket rules (pure), the site they are judged for,
//! tickets stored with their deliveries, and delivery to the repair desk's endpoints.
pub mod delivery;
pub mod desk;
pub mod rules;
pub mod site;
pub mod tickets;
