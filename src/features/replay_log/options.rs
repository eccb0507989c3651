//! How a replay log is bounded, and where a subscription's replay starts.

use std::fmt;
use std::time::{Duration, SystemTime};

use crate::topic::Filter;

/// The replay log a broker keeps ([`BrokerOptions::replay_log`](crate::BrokerOptions::replay_log)):
/// which topics it keeps, and its three bounds. The oldest messages are evicted as soon as any bound
/// is passed.
///
/// ```
/// use std::time::Duration;
/// use switchyard::{Broker, BrokerOptions, Filter, ReplayLogOptions};
///
/// let log = ReplayLogOptions::new(Filter::new("orders/#")?)
///     .max_messages(1_000_000)
///     .max_bytes(256 << 20)
///     .max_age(Duration::from_secs(3600));
/// let broker = Broker::with_options(BrokerOptions::new().replay_log(log));
/// assert_eq!(broker.replay_log_stats().unwrap().max_messages, 1_000_000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayLogOptions {
    /// The topics kept: those this filter matches.
    pub filter: Filter,
    /// At most this many messages (at least 1).
    pub max_messages: u64,
    /// At most this many bytes of topic and payload, over all messages kept.
    pub max_bytes: u64,
    /// A message older than this is evicted; `None` keeps messages whatever their age.
    pub max_age: Option<Duration>,
}

impl ReplayLogOptions {
    /// The default number of messages kept: 100,000.
    pub const DEFAULT_MAX_MESSAGES: u64 = 100_000;
    /// The default number of bytes kept: 64 MiB.
    pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;

    /// A log of the topics `filter` matches, with the default bounds: 100,000 messages, 64 MiB, no
    /// age limit.
    ///
    /// ```
    /// use switchyard::{Filter, ReplayLogOptions};
    ///
    /// let log = ReplayLogOptions::new(Filter::new("#")?);
    /// assert_eq!(log.max_messages, ReplayLogOptions::DEFAULT_MAX_MESSAGES);
    /// assert_eq!(log.max_age, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(filter: Filter) -> Self {
        Self {
            filter,
            max_messages: Self::DEFAULT_MAX_MESSAGES,
            max_bytes: Self::DEFAULT_MAX_BYTES,
            max_age: None,
        }
    }

    /// Keeps at most `n` messages (a zero is raised to 1).
    ///
    /// ```
    /// use switchyard::{Filter, ReplayLogOptions};
    ///
    /// let log = ReplayLogOptions::new(Filter::new("#")?).max_messages(0);
    /// assert_eq!(log.max_messages, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_messages(mut self, n: u64) -> Self {
        self.max_messages = n.max(1);
        self
    }

    /// Keeps at most `bytes` of topic and payload in all. A message larger than the bound on its own
    /// is evicted as soon as it is logged (it is still delivered live).
    ///
    /// ```
    /// use switchyard::{Filter, ReplayLogOptions};
    ///
    /// let log = ReplayLogOptions::new(Filter::new("#")?).max_bytes(1 << 30);
    /// assert_eq!(log.max_bytes, 1 << 30);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Evicts messages older than `age`. Age is enforced whenever the log is touched: by a logged
    /// publish, a subscription that starts a replay, or a stats snapshot.
    ///
    /// ```
    /// use std::time::Duration;
    /// use switchyard::{Filter, ReplayLogOptions};
    ///
    /// let log = ReplayLogOptions::new(Filter::new("#")?).max_age(Duration::from_secs(60));
    /// assert_eq!(log.max_age, Some(Duration::from_secs(60)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age);
        self
    }
}

/// Where a subscription starts ([`SubscriptionOptions::replay`](crate::SubscriptionOptions::replay)):
/// what it is handed from the broker's replay log before live traffic. The log's messages that the
/// subscription's filter matches are replayed in sequence order, then live delivery takes over with
/// no message lost and none twice (see `docs/library.md`, "Replay").
///
/// ```
/// use switchyard::{Broker, BrokerOptions, Filter, ReplayFrom, ReplayLogOptions, SubscriptionOptions};
///
/// let log = ReplayLogOptions::new(Filter::new("orders/#")?);
/// let broker = Broker::with_options(BrokerOptions::new().replay_log(log));
/// for n in 1..=5 {
///     broker.publish("orders/eu", n.to_string())?;
/// }
/// let late = broker.subscribe_with("orders/#", SubscriptionOptions::new().replay(ReplayFrom::Last(2)))?;
/// assert_eq!(late.try_recv()?.message().seq(), Some(4));
/// assert_eq!(late.try_recv()?.message().seq(), Some(5));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayFrom {
    /// Nothing from the log: only what is published from now on (Kafka's `latest`, JetStream's
    /// `DeliverNew`). Live messages on logged topics still carry their sequence numbers.
    Newest,
    /// Everything the log still holds (JetStream's `DeliverAll`). Never a gap: what was evicted
    /// before the subscription was made was not asked for.
    Oldest,
    /// From this sequence number on (the first is 1). If the log has already evicted it, the receiver
    /// is told the gap in-band (see [`Delivery::missed`](crate::Delivery::missed)).
    Seq(u64),
    /// The messages appended at or after this time.
    Time(SystemTime),
    /// The last `n` messages the filter matches, as of the subscribe.
    Last(u64),
}

impl fmt::Display for ReplayFrom {
    /// `newest`, `oldest`, `seq:N`, `time:RFC3339`, `last:N`: the form the stats show.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Newest => f.write_str("newest"),
            Self::Oldest => f.write_str("oldest"),
            Self::Seq(n) => write!(f, "seq:{n}"),
            Self::Time(t) => write!(f, "time:{}", humantime::format_rfc3339_millis(*t)),
            Self::Last(n) => write!(f, "last:{n}"),
        }
    }
}
