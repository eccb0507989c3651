//! The classic broker features that hook in below the subscription: acknowledgements, joinable work
//! queues, dead letters, retained messages, request/reply, and the replay log.

pub(crate) mod ack;
pub(crate) mod dead_letter;
pub(crate) mod join;
pub(crate) mod replay_log;
pub(crate) mod request;
pub(crate) mod retained;
