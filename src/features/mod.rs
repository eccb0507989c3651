//! The classic broker features that hook in below the subscription: acknowledgements, joinable work
//! queues, dead letters, retained messages, and request/reply.

pub(crate) mod ack;
pub(crate) mod dead_letter;
pub(crate) mod join;
pub(crate) mod request;
pub(crate) mod retained;
