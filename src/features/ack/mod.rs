//! Acknowledged subscriptions, below the subscription: the settings, the tokens, the errors and the
//! in-flight table. The receiver handle that uses them is `crate::subscription::acked`.

pub(crate) mod error;
pub(crate) mod in_flight;
pub(crate) mod options;
pub(crate) mod token;
