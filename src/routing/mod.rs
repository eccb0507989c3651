//! Routing: the table that maps a topic to the subscriptions it reaches, and the delivery of one
//! message (or a batch) along such a route.

pub(crate) mod delivery;
pub(crate) mod table;
