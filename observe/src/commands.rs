//! Commands: publish, taps and policy changes, off unless the endpoint has a token; the routes and
//! their bodies are in the [crate docs](crate#commands).

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::AUTHORIZATION;
use hyper::{Method, Request, Response, StatusCode};
use switchyard::{OverflowPolicy, Priority, PublishOptions, SubscriptionId};

use crate::http::{Body, HttpError, blocking, json, parse_input, read_json};
use crate::options::Access;
use crate::state::State;
use crate::wire::{MAX_PUBLISH_COUNT, PolicyRequest, PublishRequest, PublishResponse, TapRequest};

pub(crate) async fn handle(
    req: Request<Incoming>,
    state: &Arc<State>,
) -> Result<Response<Body>, HttpError> {
    authorize(&req, &state.options.access)?;
    let path = req.uri().path().trim_end_matches('/').to_string();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let method = req.method().clone();
    let limit = state.options.max_body_bytes;
    let timeout = state.options.body_timeout;
    match (&method, segments.as_slice()) {
        (&Method::POST, ["v1", "publish"]) => {
            let request: PublishRequest = read_json(req, limit, timeout).await?;
            publish(state, request).await
        }
        (&Method::POST, ["v1", "taps"]) => {
            let request: TapRequest = read_json(req, limit, timeout).await?;
            let info = state
                .taps
                .open(&state.broker, request, state.options.max_tap_capacity)?;
            Ok(json(StatusCode::CREATED, &info))
        }
        (&Method::GET, ["v1", "taps"]) => Ok(json(StatusCode::OK, &state.taps.list())),
        (&Method::GET, ["v1", "taps", id]) => {
            Ok(json(StatusCode::OK, &state.taps.get(parse_id(id)?)?))
        }
        (&Method::DELETE, ["v1", "taps", id]) => {
            let id = parse_id(id)?;
            state.taps.close(&state.broker, id)?;
            Ok(json(StatusCode::OK, &serde_json::json!({ "deleted": id })))
        }
        (&Method::POST, ["v1", "taps", id, action @ ("pause" | "resume")]) => {
            let info = state.taps.set_paused(parse_id(id)?, *action == "pause")?;
            Ok(json(StatusCode::OK, &info))
        }
        (&Method::PUT, ["v1", "subscriptions", id, "policy"]) => {
            let id = parse_id(id)?;
            let request: PolicyRequest = read_json(req, limit, timeout).await?;
            let policy: OverflowPolicy = parse_input(&request.policy)?;
            state
                .broker
                .set_policy(id, policy)
                .map_err(|e| HttpError::not_found(e.to_string()))?;
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({ "id": id, "policy": policy.to_string() }),
            ))
        }
        (_, ["v1", "taps", _, other]) if !matches!(*other, "pause" | "resume") => Err(
            HttpError::not_found(format!("no tap action `{other}`; expected pause or resume")),
        ),
        _ => Err(HttpError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method {method} is not allowed on {path}"),
        )),
    }
}

/// `403` on a read-only endpoint; `401` without the right bearer token.
fn authorize(req: &Request<Incoming>, access: &Access) -> Result<(), HttpError> {
    let Access::Token(token) = access else {
        return Err(HttpError::new(
            StatusCode::FORBIDDEN,
            "this endpoint is read-only: commands are off (start it with a token to turn them on)",
        ));
    };
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(given) if constant_time_eq(given.trim().as_bytes(), token.as_bytes()) => Ok(()),
        Some(_) => Err(HttpError::new(
            StatusCode::UNAUTHORIZED,
            "the bearer token is wrong",
        )),
        None => Err(HttpError::new(
            StatusCode::UNAUTHORIZED,
            "commands need an `Authorization: Bearer <token>` header",
        )),
    }
}

/// Compares without stopping at the first difference, so timing does not tell how much matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn parse_id(text: &str) -> Result<SubscriptionId, HttpError> {
    text.parse().map_err(|_| {
        HttpError::bad_request(format!(
            "`{text}` is not a subscription id (a whole number)"
        ))
    })
}

async fn publish(state: &Arc<State>, request: PublishRequest) -> Result<Response<Body>, HttpError> {
    let count = request.count.unwrap_or(1);
    if count == 0 || count > MAX_PUBLISH_COUNT {
        return Err(HttpError::bad_request(format!(
            "count must be from 1 to {MAX_PUBLISH_COUNT}, got {count}"
        )));
    }
    let priority = request
        .priority
        .as_deref()
        .map(parse_input)
        .transpose()?
        .unwrap_or(Priority::Normal);
    switchyard::validate_topic(&request.topic, &state.broker.limits())
        .map_err(|e| HttpError::bad_request(format!("invalid topic: {e}")))?;
    let options = PublishOptions::new()
        .priority(priority)
        .retain(request.retain);
    let broker = state.broker.clone();
    // On the blocking pool: a `block` subscription may make each publish wait.
    let result = blocking(move || {
        let payload = bytes::Bytes::from(request.payload);
        let mut response = PublishResponse::default();
        for _ in 0..count {
            let outcome = broker.publish_with(&request.topic, payload.clone(), options)?;
            response.published += 1;
            response.matched += outcome.matched as u64;
            response.queued += outcome.queued as u64;
            response.dropped += outcome.dropped as u64;
            response.unrouted += u64::from(outcome.matched == 0);
        }
        Ok::<_, switchyard::PublishError>(response)
    })
    .await?;
    match result {
        Ok(response) => Ok(json(StatusCode::OK, &response)),
        Err(e) => Err(HttpError::bad_request(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
