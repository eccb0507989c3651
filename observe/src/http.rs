//! Small HTTP pieces the routes share: JSON replies, JSON errors, query strings, bounded bodies.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::wire::ErrorBody;

/// Every response body: one buffer.
pub(crate) type Body = Full<Bytes>;

/// A request that cannot be served, as its status and a message naming what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    /// The methods the route allows, sent as `Allow` with a `405`.
    pub(crate) allow: Option<&'static str>,
}

impl HttpError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            allow: None,
        }
    }

    /// `405`, with the `Allow` header naming `allow` (e.g. `GET, HEAD`).
    pub(crate) fn method_not_allowed(method: &Method, path: &str, allow: &'static str) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("method {method} is not allowed on {path}; use {allow}"),
            )
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// The JSON error response (`401` also says which scheme to use).
    pub(crate) fn into_response(self) -> Response<Body> {
        let unauthorized = self.status == StatusCode::UNAUTHORIZED;
        let allow = self.allow;
        let mut response = json(
            self.status,
            &ErrorBody {
                error: self.message,
            },
        );
        if unauthorized {
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"switchyard\""),
            );
        }
        if let Some(allow) = allow {
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
        }
        response
    }
}

/// A JSON response.
pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(body) => bytes_response(status, "application/json", body.into()),
        Err(e) => bytes_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "application/json",
            format!("{{\"error\":\"cannot encode the response: {e}\"}}").into(),
        ),
    }
}

/// A response with `body` of `content_type`.
pub(crate) fn bytes_response(
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
) -> Response<Body> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// `text` as a `T` (a policy, a priority), or `400` with the library's own text for why it is not one.
pub(crate) fn parse_input<T: std::str::FromStr>(text: &str) -> Result<T, HttpError>
where
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e: T::Err| HttpError::bad_request(e.to_string()))
}

/// The `key=value` pairs of a query string, percent-decoded. A `+` stays a `+` (topic filters use
/// it); send a space as `%20`.
pub(crate) fn query_pairs(query: Option<&str>) -> Result<Vec<(String, String)>, HttpError> {
    let Some(query) = query else {
        return Ok(Vec::new());
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

/// The query parameters of a route that takes `allowed` (none for most), each at most once: an unknown
/// or a repeated parameter is `400` naming it. The one rule of every route.
pub(crate) fn query_params(
    query: Option<&str>,
    allowed: &[&str],
) -> Result<Vec<(String, String)>, HttpError> {
    let pairs = query_pairs(query)?;
    for (i, (key, _)) in pairs.iter().enumerate() {
        if !allowed.contains(&key.as_str()) {
            let expected = match allowed {
                [] => "this route takes no query parameters".to_string(),
                [one] => format!("expected {one}"),
                [rest @ .., last] => format!("expected {} or {last}", rest.join(", ")),
            };
            return Err(HttpError::bad_request(format!(
                "unknown query parameter `{key}`; {expected}"
            )));
        }
        if pairs[..i].iter().any(|(k, _)| k == key) {
            return Err(HttpError::bad_request(format!(
                "query parameter `{key}` is given more than once; give it once"
            )));
        }
    }
    Ok(pairs)
}

/// Decodes `%XX` escapes; anything else is kept as it is.
pub(crate) fn percent_decode(text: &str) -> Result<String, HttpError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    HttpError::bad_request(format!("bad percent escape in query `{text}`"))
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| HttpError::bad_request(format!("query `{text}` is not UTF-8 once decoded")))
}

/// Encodes everything but unreserved characters as `%XX`, for query values the client sends.
pub(crate) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reads the body of `req` as JSON of type `T`: at most `limit` bytes (`413` beyond, checked against
/// `Content-Length` first), within `timeout` (`408`), valid JSON of the right shape (`400`, with
/// serde's message naming the field).
pub(crate) async fn read_json<T: DeserializeOwned>(
    req: Request<Incoming>,
    limit: usize,
    timeout: Duration,
) -> Result<T, HttpError> {
    let too_large = || {
        HttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is over the limit of {limit} bytes"),
        )
    };
    if let Some(len) = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(too_large());
    }
    let body = Limited::new(req.into_body(), limit);
    let collected = tokio::time::timeout(timeout, body.collect())
        .await
        .map_err(|_| {
            HttpError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {}",
                    humantime::format_duration(timeout)
                ),
            )
        })?
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                too_large()
            } else {
                HttpError::bad_request(format!("cannot read the request body: {e}"))
            }
        })?
        .to_bytes();
    serde_json::from_slice(&collected)
        .map_err(|e| HttpError::bad_request(format!("the request body is not valid JSON: {e}")))
}

/// `405` (with `Allow: GET, HEAD`) unless `method` is `GET` or `HEAD`; hyper leaves out the body of
/// an answer to `HEAD`.
pub(crate) fn only_get(method: &Method, path: &str) -> Result<(), HttpError> {
    if *method == Method::GET || *method == Method::HEAD {
        Ok(())
    } else {
        Err(HttpError::method_not_allowed(method, path, "GET, HEAD"))
    }
}

/// Runs broker work on the blocking pool, so the accept loop and other connections never wait on it.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, HttpError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the request's work failed: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_decoded_and_plus_is_kept() {
        let pairs = query_pairs(Some("filter=stocks%2F+%2Fprice&limit=5&&sort")).unwrap();
        assert_eq!(
            pairs,
            [
                ("filter".to_string(), "stocks/+/price".to_string()),
                ("limit".to_string(), "5".to_string()),
                ("sort".to_string(), String::new()),
            ]
        );
    }

    #[test]
    fn bad_escapes_are_400() {
        assert_eq!(
            query_pairs(Some("filter=%zz")).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert!(percent_decode("%f").is_err());
    }

    #[test]
    fn encoding_round_trips() {
        let text = "a/+/#ü x&y=z%";
        assert_eq!(percent_decode(&percent_encode(text)).unwrap(), text);
    }
}
