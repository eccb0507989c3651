//! `GET /v1/stats?sort=&limit=&filter=`: a `switchyard.stats/v1` snapshot for one viewer (the query is
//! a [`StatsParams`]); and `GET /v1/explain?topic=`.

use std::sync::Arc;
use std::time::Instant;

use hyper::{Response, StatusCode};
use switchyard::{Explanation, StatsQuery, StatsSelection};

use crate::http::{Body, HttpError, blocking, json, query_params};
use crate::options::Access;
use crate::state::State;
use crate::stats_params::{SortBy, StatsParams};
use crate::wire::{EndpointStats, Selection};

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
    let topic = query_params(query, &["topic"])?
        .into_iter()
        .next()
        .map(|(_, value)| value)
        .ok_or_else(|| {
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
        sections: crate::sections::read_all(&state.options.sections),
    }
}
