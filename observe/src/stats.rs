//! `GET /v1/stats?sort=&limit=&filter=`: a `switchyard.stats/v1` snapshot for one viewer.
//!
//! - `sort`: `id` (the default, ascending), `depth`, `fill`, `dropped`, `delivered` or `rate`
//!   (deliveries per second, largest first);
//! - `limit`: at most this many subscriptions (default: all);
//! - `filter`: keep subscriptions whose name or filter contains this text, ignoring ASCII case
//!   (percent-encode it: `stocks%2F%2B` for `stocks/+`; a literal `+` is kept as `+`).
//!
//! The snapshot comes from [`switchyard::Broker::stats_query`], so two viewers never disturb each
//! other's rates, and only the subscriptions returned are turned into strings. The totals always
//! cover every subscription. For `sort=rate` the endpoint keeps its own previous sample of each
//! subscription's `delivered` counter (over [`RATE_WINDOW`]), never the one `Broker::stats` shares.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::{Response, StatusCode};
use switchyard::{Explanation, StatsSelection, SubscriptionId};
use switchyard::{StatsQuery, StatsSort, SubscriptionCounts};

use crate::http::{Body, HttpError, json, query_pairs};
use crate::options::Access;
use crate::server::{State, blocking};
use crate::wire::{EndpointStats, Selection};

/// How `GET /v1/stats` orders subscriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// One of the broker's own keys.
    Key(StatsSort),
    /// Deliveries per second over the endpoint's last rate window ([`RATE_WINDOW`]).
    Rate,
}

impl SortBy {
    /// The name in the query string.
    pub fn name(self) -> &'static str {
        match self {
            Self::Key(k) => k.name(),
            Self::Rate => "rate",
        }
    }
}

impl std::str::FromStr for SortBy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "rate" {
            return Ok(Self::Rate);
        }
        s.parse::<StatsSort>().map(Self::Key).map_err(|_| {
            format!(
                "unknown sort key `{s}`; expected one of id, depth, fill, dropped, delivered, rate"
            )
        })
    }
}

/// The query parameters of `GET /v1/stats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsParams {
    /// The order.
    pub sort: SortBy,
    /// The filter text.
    pub filter: Option<String>,
    /// The limit.
    pub limit: Option<usize>,
}

impl Default for StatsParams {
    fn default() -> Self {
        Self {
            sort: SortBy::Key(StatsSort::Id),
            filter: None,
            limit: None,
        }
    }
}

impl StatsParams {
    /// Parses a query string; unknown parameters and bad values are errors naming them.
    pub(crate) fn parse(query: Option<&str>) -> Result<Self, HttpError> {
        let mut params = Self::default();
        for (key, value) in query_pairs(query)? {
            match key.as_str() {
                "sort" => params.sort = value.parse().map_err(HttpError::bad_request)?,
                "limit" => {
                    params.limit = Some(value.parse().map_err(|_| {
                        HttpError::bad_request(format!(
                            "limit must be a whole number of subscriptions, got `{value}`"
                        ))
                    })?)
                }
                "filter" => params.filter = (!value.is_empty()).then_some(value),
                other => {
                    return Err(HttpError::bad_request(format!(
                        "unknown query parameter `{other}`; expected sort, limit or filter"
                    )));
                }
            }
        }
        Ok(params)
    }

    /// The query string that asks for these parameters (empty for the defaults).
    pub fn to_query(&self) -> String {
        let mut parts = Vec::new();
        if self.sort != SortBy::Key(StatsSort::Id) {
            parts.push(format!("sort={}", self.sort.name()));
        }
        if let Some(limit) = self.limit {
            parts.push(format!("limit={limit}"));
        }
        if let Some(filter) = &self.filter {
            parts.push(format!("filter={}", crate::http::percent_encode(filter)));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }
}

pub(crate) async fn handle(
    state: &Arc<State>,
    query: Option<&str>,
) -> Result<Response<Body>, HttpError> {
    let params = StatsParams::parse(query)?;
    let state = state.clone();
    let stats = blocking(move || collect(&state, &params)).await?;
    Ok(json(StatusCode::OK, &stats))
}

/// `GET /v1/explain?topic=`: every subscription a publish on `topic` would reach now
/// ([`switchyard::Broker::explain`]), as a [`switchyard::Explanation`]; an invalid topic is `400` with
/// the library's text.
pub(crate) async fn explain(
    state: &Arc<State>,
    query: Option<&str>,
) -> Result<Response<Body>, HttpError> {
    let mut topic = None;
    for (key, value) in query_pairs(query)? {
        match key.as_str() {
            "topic" => topic = Some(value),
            other => {
                return Err(HttpError::bad_request(format!(
                    "unknown query parameter `{other}`; expected topic"
                )));
            }
        }
    }
    let topic = topic.ok_or_else(|| {
        HttpError::bad_request("missing query parameter `topic` (the topic to explain)")
    })?;
    let broker = state.broker.clone();
    let (topic, result) = blocking(move || {
        let result = broker.explain(&topic);
        (topic, result)
    })
    .await?;
    let subscriptions = result.map_err(|e| HttpError::bad_request(e.to_string()))?;
    Ok(json(
        StatusCode::OK,
        &Explanation {
            topic,
            subscriptions,
        },
    ))
}

/// Takes the snapshot `params` ask for.
fn collect(state: &State, params: &StatsParams) -> EndpointStats {
    let selection: StatsSelection = match params.sort {
        SortBy::Key(sort) => state.broker.stats_query(&StatsQuery {
            filter: params.filter.clone(),
            sort,
            limit: params.limit,
        }),
        SortBy::Rate => {
            let mut rates = state
                .rates
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            let now = Instant::now();
            rates.begin();
            let selection =
                state
                    .broker
                    .stats_query_by(params.filter.as_deref(), params.limit, |c| {
                        rates.rate(c, now)
                    });
            if params.filter.is_none() {
                rates.forget_unseen();
            }
            selection
        }
    };
    EndpointStats {
        snapshot: selection.snapshot,
        selection: Selection {
            sort: params.sort.name().to_string(),
            filter: params.filter.clone(),
            limit: params.limit,
            matching: selection.matching,
            dropped_by_reason: selection.dropped_by_reason,
        },
        endpoint: state
            .counts
            .read(matches!(state.options.access, Access::Token(_))),
    }
}

/// The window a subscription's delivery rate is measured over for `sort=rate`: a rate is recomputed
/// only when its sample is at least this old, so many viewers polling at once see the same rates.
pub const RATE_WINDOW: Duration = Duration::from_secs(1);

/// The endpoint's own previous sample of each subscription's `delivered` counter.
#[derive(Debug, Default)]
pub(crate) struct RateSampler {
    samples: HashMap<SubscriptionId, RateSample>,
    pass: u64,
}

#[derive(Debug)]
struct RateSample {
    at: Instant,
    delivered: u64,
    per_s: f64,
    seen_in_pass: u64,
}

impl RateSampler {
    /// Starts a pass over the subscriptions.
    fn begin(&mut self) {
        self.pass += 1;
    }

    /// The delivery rate of `c`, updating its sample when the window has passed.
    fn rate(&mut self, c: &SubscriptionCounts, now: Instant) -> f64 {
        let pass = self.pass;
        let sample = self.samples.entry(c.id).or_insert(RateSample {
            at: now,
            delivered: c.delivered,
            per_s: 0.0,
            seen_in_pass: pass,
        });
        sample.seen_in_pass = pass;
        let elapsed = now.saturating_duration_since(sample.at);
        if elapsed >= RATE_WINDOW {
            sample.per_s =
                c.delivered.saturating_sub(sample.delivered) as f64 / elapsed.as_secs_f64();
            sample.at = now;
            sample.delivered = c.delivered;
        }
        sample.per_s
    }

    /// Drops the samples of subscriptions the last full pass did not see (removed ones).
    fn forget_unseen(&mut self) {
        let pass = self.pass;
        self.samples.retain(|_, s| s.seen_in_pass == pass);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_parse_and_print_back() {
        let p = StatsParams::parse(Some("sort=rate&limit=5&filter=a%2F%2B")).unwrap();
        assert_eq!(p.sort, SortBy::Rate);
        assert_eq!(p.limit, Some(5));
        assert_eq!(p.filter.as_deref(), Some("a/+"));
        assert_eq!(StatsParams::parse(Some(&p.to_query()[1..])).unwrap(), p);
        assert_eq!(StatsParams::default().to_query(), "");
    }

    #[test]
    fn bad_params_name_what_was_wrong() {
        let e = StatsParams::parse(Some("sort=speed")).unwrap_err();
        assert!(e.message.contains("`speed`"), "{e:?}");
        let e = StatsParams::parse(Some("limit=-1")).unwrap_err();
        assert!(e.message.contains("`-1`"), "{e:?}");
        let e = StatsParams::parse(Some("colour=red")).unwrap_err();
        assert!(e.message.contains("`colour`"), "{e:?}");
    }

    #[test]
    fn a_rate_is_recomputed_only_after_the_window() {
        let mut r = RateSampler::default();
        let t0 = Instant::now();
        let mut c = SubscriptionCounts {
            id: 1,
            ..Default::default()
        };
        r.begin();
        assert_eq!(r.rate(&c, t0), 0.0);
        c.delivered = 500;
        r.begin();
        assert_eq!(r.rate(&c, t0 + Duration::from_millis(500)), 0.0);
        r.begin();
        assert_eq!(r.rate(&c, t0 + Duration::from_secs(2)), 250.0);
        r.begin();
        r.forget_unseen();
        assert!(r.samples.is_empty());
    }
}
