//! [`StatsParams`]: the query of `GET /v1/stats` (order, filter, limit), parsed by the server and
//! written by the [`crate::Client`], so the two cannot drift apart.

use switchyard::StatsSort;

use crate::http::{HttpError, percent_encode, query_params};

/// How `GET /v1/stats` orders subscriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// One of the broker's own keys.
    Key(StatsSort),
    /// Deliveries per second over the endpoint's last rate window ([`RATE_WINDOW`](crate::RATE_WINDOW)).
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

/// The query parameters of `GET /v1/stats?sort=&limit=&filter=`, which answers a `switchyard.stats/v1`
/// snapshot for one viewer ([`EndpointStats`](crate::EndpointStats)).
///
/// - `sort`: `id` (the default, ascending), `depth`, `fill`, `dropped`, `delivered` or `rate`
///   (deliveries per second, largest first);
/// - `limit`: at most this many subscriptions (default: all);
/// - `filter`: keep subscriptions whose name or filter contains this text, ignoring ASCII case
///   (percent-encode it: `stocks%2F%2B` for `stocks/+`; a literal `+` is kept as `+`).
///
/// The snapshot comes from [`switchyard::Broker::stats_query`], so two viewers never disturb each
/// other's rates, and only the subscriptions returned are turned into strings. The totals always
/// cover every subscription. For `sort=rate` the endpoint keeps its own previous sample of each
/// subscription's `delivered` counter (over [`RATE_WINDOW`](crate::RATE_WINDOW)), never the one `Broker::stats` shares.
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
        for (key, value) in query_params(query, &["sort", "limit", "filter"])? {
            match key.as_str() {
                "sort" => params.sort = value.parse().map_err(HttpError::bad_request)?,
                "limit" => {
                    params.limit = Some(value.parse().map_err(|_| {
                        HttpError::bad_request(format!(
                            "limit must be a whole number of subscriptions, got `{value}`"
                        ))
                    })?)
                }
                _ => params.filter = (!value.is_empty()).then_some(value),
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
            parts.push(format!("filter={}", percent_encode(filter)));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
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
}
