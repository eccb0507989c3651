//! Identifiers every layer shares.

/// Identifies a subscription within its broker. Ids are never reused.
pub type SubscriptionId = u64;
