//! Where a request's replies go, as the message that carries the request sees it.
//!
//! A message published by `Broker::request` carries a reply address. The request feature
//! (`src/features/request.rs`) implements it; the message knows only this trait, so the message layer
//! does not depend on the feature above it.

use std::fmt;

use bytes::Bytes;

use super::reason::DropReason;

/// A request's reply address: what a [`super::Message`] carrying a request can do with it.
pub(crate) trait ReplyAddress: Send + Sync + fmt::Debug {
    /// A responder's reply to the request, published on `topic`.
    fn reply(&self, topic: &str, payload: Bytes) -> Result<(), ReplyError>;
    /// A queue dropped a copy of the request for `reason`.
    fn note_dropped(&self, reason: DropReason);
    /// The last copy of the request is gone: if nobody replied, nobody can.
    fn abandon(&self);
}

/// Why a reply was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// The message was published without a reply address (not by `request`).
    #[error("the message is not a request: it has no reply address")]
    NotARequest,
    /// Another responder answered first.
    #[error("the request was already answered by another responder")]
    AlreadyAnswered,
    /// The requester timed out or stopped waiting; the reply was counted as late and discarded.
    #[error(
        "the requester stopped waiting (timed out); the reply was discarded and counted as late"
    )]
    RequesterGone,
}
