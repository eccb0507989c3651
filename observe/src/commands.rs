//! Commands: publish, taps and policy changes, off unless the endpoint has a token; the routes and
//! their bodies are in the [crate docs](crate#commands).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use hyper::body::Incoming;
use hyper::header::AUTHORIZATION;
use hyper::{Method, Request, Response, StatusCode};
use switchyard::{OverflowPolicy, Priority, PublishOptions, SubscriptionId};

use crate::http::{Body, HttpError, blocking, json, parse_input, query_params, read_json};
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
    query_params(req.uri().query(), &[])?;
    // `HEAD` is answered wherever `GET` is (hyper leaves the body out).
    let method = match req.method() {
        &Method::HEAD => Method::GET,
        other => other.clone(),
    };
    let limit = state.options.max_body_bytes;
    let timeout = state.options.body_timeout;
    match (&method, segments.as_slice()) {
        (&Method::POST, ["v1", "publish"]) => {
            let request: PublishRequest = read_json(req, limit, timeout).await?;
            publish(state, request).await
        }
        (&Method::POST, ["v1", "taps"]) => {
            let request: TapRequest = read_json(req, limit, timeout).await?;
            let info = state.taps.open(&state.broker, request, &state.options)?;
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
        (_, route) => {
            let allow = match route {
                ["v1", "taps"] => "GET, HEAD, POST",
                ["v1", "taps", _] => "GET, HEAD, DELETE",
                ["v1", "subscriptions", ..] => "PUT",
                _ => "POST",
            };
            Err(HttpError::method_not_allowed(req.method(), &path, allow))
        }
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
    // RFC 7235: the scheme is case-insensitive; one or more spaces before the token.
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let Some(header) = header else {
        return Err(HttpError::new(
            StatusCode::UNAUTHORIZED,
            "commands need an `Authorization: Bearer <token>` header",
        ));
    };
    let (scheme, given) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(HttpError::new(
            StatusCode::UNAUTHORIZED,
            format!(
                "the Authorization scheme is `{}`; commands need `Authorization: Bearer <token>`",
                scheme.escape_debug()
            ),
        ));
    }
    if constant_time_eq(given.trim().as_bytes(), token.as_bytes()) {
        Ok(())
    } else {
        Err(HttpError::new(
            StatusCode::UNAUTHORIZED,
            "the bearer token is wrong",
        ))
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
    let deadline = tokio::time::Instant::now() + state.options.command_timeout;
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
    // A `block` queue keeps each message waiting for room no later than the request's own limit.
    let options = PublishOptions::new()
        .priority(priority)
        .retain(request.retain)
        .deadline(deadline.into_std());
    let limit = humantime::format_duration(state.options.command_timeout);
    // One publish at a time holds a blocking thread, so reads keep the others (see `server.rs`).
    let Ok(Ok(slot)) =
        tokio::time::timeout_at(deadline, state.publish_slot.clone().acquire_owned()).await
    else {
        return Err(HttpError::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "nothing published: another publish is still waiting for room in a full `block` \
                 queue, and this one could not start within the command limit of {limit}"
            ),
        ));
    };
    // Stops the loop below between two messages when the request ends early: its client went away
    // (the handler's future is dropped) or its time ran out. A message waiting for room when that
    // happens gives up at the deadline at the latest (`PublishOptions::deadline`).
    let progress = Arc::new(PublishProgress::default());
    let _cancel_on_drop = CancelOnDrop(progress.clone());
    let broker = state.broker.clone();
    let work = {
        let progress = progress.clone();
        let std_deadline = deadline.into_std();
        blocking(move || {
            let _slot = slot;
            let payload = bytes::Bytes::from(request.payload);
            let mut response = PublishResponse::default();
            for _ in 0..count {
                if progress.cancelled.load(Ordering::Relaxed)
                    || std::time::Instant::now() >= std_deadline
                {
                    break;
                }
                // A `block` subscription may make this wait, until the deadline at the latest.
                let outcome = broker.publish_with(&request.topic, payload.clone(), options)?;
                response.published += 1;
                progress.published.fetch_add(1, Ordering::Relaxed);
                response.matched += outcome.matched as u64;
                response.queued += outcome.queued as u64;
                response.dropped += outcome.dropped as u64;
                response.unrouted += u64::from(outcome.matched == 0);
            }
            Ok::<_, switchyard::PublishError>(response)
        })
    };
    let timed_out = |published: u64, dropped: &str| {
        HttpError::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "the publish did not finish within the command limit of {limit}: {published} of \
                 {count} messages published{dropped}; a full `block` queue on this topic is making \
                 publishes wait (see /v1/stats); no more of them will be published"
            ),
        )
    };
    // The work ends by the deadline (its last wait gives up then); the grace is for a pool too busy
    // to run it, when the answer can only say how far it got.
    match tokio::time::timeout_at(deadline + DEADLINE_GRACE, work).await {
        Err(_) => {
            progress.cancelled.store(true, Ordering::Relaxed);
            Err(timed_out(progress.published.load(Ordering::Relaxed), ""))
        }
        Ok(result) => match result? {
            Ok(response) if response.published == count => Ok(json(StatusCode::OK, &response)),
            Ok(response) => Err(timed_out(
                response.published,
                &format!(
                    " ({} of them dropped, {} queued)",
                    response.dropped, response.queued
                ),
            )),
            Err(e) => Err(HttpError::bad_request(e.to_string())),
        },
    }
}

/// How long past its deadline a publish's answer waits for the publishing thread to report.
const DEADLINE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// How far a publish got, shared between the request and the thread that publishes.
#[derive(Default)]
struct PublishProgress {
    published: AtomicU64,
    cancelled: AtomicBool,
}

/// Marks a publish cancelled when the request that started it ends, however it ends.
struct CancelOnDrop(Arc<PublishProgress>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancelled.store(true, Ordering::Relaxed);
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
