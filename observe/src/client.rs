//! [`Client`]: a blocking client of the endpoint.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use switchyard::{Explanation, SubscriptionId};

use crate::stats_params::StatsParams;
use crate::wire::{
    EndpointStats, ErrorBody, PolicyRequest, PublishRequest, PublishResponse, TapInfo, TapRequest,
};

/// Why a request to the endpoint failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No connection could be made.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The exchange took longer than the client's timeout.
    #[error("{addr} did not answer within {timeout}")]
    Timeout {
        /// The address.
        addr: String,
        /// The timeout, for people.
        timeout: String,
    },
    /// The endpoint answered with an error status.
    #[error("{addr} answered {status}: {message}")]
    Status {
        /// The address.
        addr: String,
        /// The HTTP status.
        status: u16,
        /// The endpoint's `error` text.
        message: String,
    },
    /// The connection broke, or the answer could not be read.
    #[error("{addr}: {message}")]
    Protocol {
        /// The address.
        addr: String,
        /// What went wrong.
        message: String,
    },
    /// The client's runtime could not start.
    #[error("cannot start the client: {0}")]
    Runtime(std::io::Error),
}

impl ClientError {
    /// The HTTP status, when the endpoint answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A blocking client of one endpoint, used by `switchyard stats --attach` and `switchyard dashboard
/// --attach`.
///
/// It is hyper's HTTP/1.1 client on a private current-thread tokio runtime: one connection per
/// request (a viewer asks a few times a second, so there is nothing to gain from pooling), a timeout
/// around the whole exchange, and errors that name the address. Using hyper, already a dependency of
/// the server, means no hand-written HTTP parsing; the runtime costs one thread's worth of state and
/// no extra thread.
///
/// ```no_run
/// use switchyard_observe::{Client, StatsParams};
///
/// let client = Client::new("127.0.0.1:9475")?;
/// let stats = client.stats(&StatsParams::default())?;
/// println!("{} subscriptions", stats.snapshot.totals.subscriptions);
/// # Ok::<(), switchyard_observe::ClientError>(())
/// ```
#[derive(Debug)]
pub struct Client {
    addr: String,
    token: Option<String>,
    timeout: Duration,
    runtime: tokio::runtime::Runtime,
}

/// How long one exchange of a [`Client`] may take by default ([`Client::with_timeout`] sets another).
pub const DEFAULT_CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

impl Client {
    /// A client of the endpoint at `addr` (`host:port`, optionally after `http://`). Nothing is sent
    /// yet.
    pub fn new(addr: &str) -> Result<Self, ClientError> {
        let addr = addr
            .trim()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(ClientError::Runtime)?;
        Ok(Self {
            addr,
            token: None,
            timeout: DEFAULT_CLIENT_TIMEOUT,
            runtime,
        })
    }

    /// Sends `Authorization: Bearer <token>` with every request.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// Sets how long one exchange may take.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The address requests go to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends one request and returns the status and body as they came, whatever the status.
    pub fn request(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let protocol = |e: &dyn std::fmt::Display| ClientError::Protocol {
            addr: self.addr.clone(),
            message: e.to_string(),
        };
        let exchange = async {
            let stream = tokio::net::TcpStream::connect(&self.addr)
                .await
                .map_err(|source| ClientError::Connect {
                    addr: self.addr.clone(),
                    source,
                })?;
            let _ = stream.set_nodelay(true);
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(|e| protocol(&e))?;
            let connection = tokio::spawn(connection);
            let mut builder = Request::builder()
                .method(method)
                .uri(path_and_query)
                .header(HOST, &self.addr);
            if let Some(token) = &self.token {
                builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
            }
            if body.is_some() {
                builder = builder.header(CONTENT_TYPE, "application/json");
            }
            let request = builder
                .body(Full::new(Bytes::from(body.unwrap_or_default())))
                .map_err(|e| protocol(&e))?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| protocol(&e))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| protocol(&e))?
                .to_bytes();
            connection.abort();
            Ok((status, body))
        };
        self.runtime.block_on(async {
            tokio::time::timeout(self.timeout, exchange)
                .await
                .unwrap_or_else(|_| {
                    Err(ClientError::Timeout {
                        addr: self.addr.clone(),
                        timeout: humantime::format_duration(self.timeout).to_string(),
                    })
                })
        })
    }

    /// Sends a request with an optional JSON body and decodes a JSON answer; an error status becomes
    /// [`ClientError::Status`] with the endpoint's message.
    fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, ClientError> {
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| ClientError::Protocol {
                addr: self.addr.clone(),
                message: format!("cannot encode the request: {e}"),
            })?;
        let (status, bytes) = self.request(method, path, body)?;
        if !status.is_success() {
            let message = serde_json::from_slice::<ErrorBody>(&bytes)
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
            return Err(ClientError::Status {
                addr: self.addr.clone(),
                status: status.as_u16(),
                message,
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol {
            addr: self.addr.clone(),
            message: format!("the answer to {path} is not what was expected: {e}"),
        })
    }

    /// `GET /healthz`.
    pub fn health(&self) -> Result<(), ClientError> {
        self.call::<serde_json::Value>(Method::GET, "/healthz", None::<&()>)
            .map(drop)
    }

    /// `GET /v1/stats` with `params`.
    pub fn stats(&self, params: &StatsParams) -> Result<EndpointStats, ClientError> {
        self.call(
            Method::GET,
            &format!("/v1/stats{}", params.to_query()),
            None::<&()>,
        )
    }

    /// `GET /v1/explain?topic=`: the subscriptions a publish on `topic` would reach now. An invalid
    /// topic is [`ClientError::Status`] `400` with the library's text.
    pub fn explain(&self, topic: &str) -> Result<Explanation, ClientError> {
        self.call(
            Method::GET,
            &format!("/v1/explain?topic={}", crate::http::percent_encode(topic)),
            None::<&()>,
        )
    }

    /// `GET /metrics`, as text.
    pub fn metrics(&self) -> Result<String, ClientError> {
        let (status, bytes) = self.request(Method::GET, "/metrics", None)?;
        if !status.is_success() {
            return Err(ClientError::Status {
                addr: self.addr.clone(),
                status: status.as_u16(),
                message: String::from_utf8_lossy(&bytes).into_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// `POST /v1/publish`.
    pub fn publish(&self, request: &PublishRequest) -> Result<PublishResponse, ClientError> {
        self.call(Method::POST, "/v1/publish", Some(request))
    }

    /// `POST /v1/taps`.
    pub fn open_tap(&self, request: &TapRequest) -> Result<TapInfo, ClientError> {
        self.call(Method::POST, "/v1/taps", Some(request))
    }

    /// `GET /v1/taps`.
    pub fn taps(&self) -> Result<Vec<TapInfo>, ClientError> {
        self.call(Method::GET, "/v1/taps", None::<&()>)
    }

    /// `GET /v1/taps/{id}`: the tap with its recent messages.
    pub fn tap(&self, id: SubscriptionId) -> Result<TapInfo, ClientError> {
        self.call(Method::GET, &format!("/v1/taps/{id}"), None::<&()>)
    }

    /// `POST /v1/taps/{id}/pause` or `/resume`.
    pub fn set_tap_paused(&self, id: SubscriptionId, paused: bool) -> Result<TapInfo, ClientError> {
        let action = if paused { "pause" } else { "resume" };
        self.call(
            Method::POST,
            &format!("/v1/taps/{id}/{action}"),
            None::<&()>,
        )
    }

    /// `DELETE /v1/taps/{id}`.
    pub fn delete_tap(&self, id: SubscriptionId) -> Result<(), ClientError> {
        self.call::<serde_json::Value>(Method::DELETE, &format!("/v1/taps/{id}"), None::<&()>)
            .map(drop)
    }

    /// `PUT /v1/subscriptions/{id}/policy` with `policy` (`drop-oldest`, `block:250ms`, ...).
    pub fn set_policy(&self, id: SubscriptionId, policy: &str) -> Result<(), ClientError> {
        let body = PolicyRequest {
            policy: policy.to_string(),
        };
        self.call::<serde_json::Value>(
            Method::PUT,
            &format!("/v1/subscriptions/{id}/policy"),
            Some(&body),
        )
        .map(drop)
    }
}
