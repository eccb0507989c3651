//! The server: its thread and runtime, the accept loop with its connection limit, the table of routes
//! (each handled in its own module), and the handle that stops it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use switchyard::Broker;
use tokio::sync::oneshot;

use crate::error::ServeError;
use crate::http::{Body, HttpError, json, only_get, query_params};
use crate::options::ServeOptions;
use crate::pending::Eviction;
use crate::state::State;
use crate::{commands, stats_route};

/// A running endpoint. Dropping it (or [`ObserveHandle::stop`]) stops the server, closes its
/// connections and unsubscribes its taps, and waits for its thread.
#[derive(Debug)]
pub struct ObserveHandle {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ObserveHandle {
    /// The address the server listens on (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server and waits for its thread.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for ObserveHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts the endpoint for `broker` on its own thread. See the [crate docs](crate) for the routes.
///
/// Fails when `options.addr` is not loopback and non-loopback was not allowed, when the address
/// cannot be bound, or when the thread cannot start.
///
/// ```
/// use switchyard::Broker;
/// use switchyard_observe::{serve, ServeOptions};
///
/// let broker = Broker::new();
/// let endpoint = serve(&broker, ServeOptions::default().addr("127.0.0.1:0".parse().unwrap())).unwrap();
/// assert!(endpoint.local_addr().ip().is_loopback());
/// drop(endpoint); // stops it
/// ```
pub fn serve(broker: &Broker, options: ServeOptions) -> Result<ObserveHandle, ServeError> {
    options.check()?;
    let listener =
        std::net::TcpListener::bind(options.addr).map_err(|source| ServeError::Bind {
            addr: options.addr,
            source,
        })?;
    let addr = listener.local_addr().map_err(ServeError::Start)?;
    listener.set_nonblocking(true).map_err(ServeError::Start)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .max_blocking_threads(BLOCKING_THREADS)
        .thread_name("switchyard-observe-blocking")
        .build()
        .map_err(ServeError::Start)?;
    let state = Arc::new(State::new(broker.clone(), options));
    let (tx, rx) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("switchyard-observe".into())
        .spawn(move || {
            runtime.block_on(accept_loop(listener, state, rx));
            // Connection tasks and taps are dropped with the runtime; blocking work (a stats read,
            // a publish into a `block` queue) gets a moment to finish.
            runtime.shutdown_timeout(Duration::from_secs(2));
        })
        .map_err(ServeError::Start)?;
    Ok(ObserveHandle {
        addr,
        shutdown: Some(tx),
        thread: Some(thread),
    })
}

/// Threads for broker work: one for a publish (which may wait on a full `block` queue; publishes
/// take turns, `State::publish_slot`) and two for stats reads and scrapes, which therefore never wait
/// behind a publish; few enough that a flood of requests cannot take the machine's cores from the
/// service.
const BLOCKING_THREADS: usize = 3;

/// Headers and the start line may take this much (hyper's read buffer; at least 8 KiB); more gets
/// hyper's own `431`.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Decrements the open-connection count when a connection ends.
struct OpenConnection(Arc<State>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn accept_loop(
    listener: std::net::TcpListener,
    state: Arc<State>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(_) => return,
    };
    let max = state.options.max_connections;
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    backoff = ACCEPT_BACKOFF_MIN;
                    stream
                }
                // Out of file descriptors and the like: count it, free a descriptor by closing the
                // oldest connection that has sent nothing, wait a little (longer each time, up to
                // ACCEPT_BACKOFF_MAX) rather than spin, and go on accepting.
                Err(_) => {
                    state.counts.accept_errors.fetch_add(1, Ordering::Relaxed);
                    if state.pending.evict_oldest() {
                        state.counts.idle_closed.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    continue;
                }
            },
        };
        let (key, eviction, evicted) = state.pending.add();
        state
            .counts
            .idle_closed
            .fetch_add(evicted, Ordering::Relaxed);
        let open = state.open.fetch_add(1, Ordering::Relaxed);
        let guard = OpenConnection(state.clone());
        if open >= 2 * max {
            // Far over the limit: close at once rather than hold a socket to say so.
            state.pending.remove(key);
            state.counts.count(StatusCode::SERVICE_UNAVAILABLE);
            continue;
        }
        let over_limit = open >= max;
        tokio::spawn(serve_connection(
            stream,
            state.clone(),
            guard,
            (key, eviction),
            over_limit,
        ));
    }
}

/// Serves one accepted connection until it closes. A connection that has sent nothing yet stays on
/// the pending list: the oldest of them is closed when the list is full (`eviction`), and any of them
/// after `first_request_timeout`. Over the connection limit, every request gets a 503.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    state: Arc<State>,
    _guard: OpenConnection,
    (key, mut eviction): (u64, Eviction),
    over_limit: bool,
) {
    let max = state.options.max_connections;
    let counts = state.counts.clone();
    let _ = stream.set_nodelay(true);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(state.options.header_timeout)
        .max_buf_size(MAX_HEADER_BYTES)
        .keep_alive(!over_limit);
    let started = Arc::new(AtomicBool::new(false));
    let service = service_fn(|req| {
        let state = state.clone();
        if !started.swap(true, Ordering::Relaxed) {
            state.pending.remove(key);
        }
        async move {
            let response = if over_limit {
                HttpError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "too many connections: the endpoint serves at most {max} at once; \
                         try again shortly"
                    ),
                )
                .into_response()
            } else {
                route(req, &state).await
            };
            state.counts.count(response.status());
            Ok::<_, Infallible>(response)
        }
    });
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let first_deadline = tokio::time::sleep(state.options.first_request_timeout);
    tokio::pin!(first_deadline);
    let mut watching = true;
    let served = loop {
        tokio::select! {
            served = &mut connection => break Some(served),
            evicted = &mut eviction, if watching => {
                watching = false;
                if evicted.is_ok() && !started.load(Ordering::Relaxed) {
                    break None;
                }
            }
            () = &mut first_deadline, if watching => {
                watching = false;
                if !started.load(Ordering::Relaxed) {
                    counts.idle_closed.fetch_add(1, Ordering::Relaxed);
                    break None;
                }
            }
        }
    };
    state.pending.remove(key);
    // A request hyper could not parse got its own `400`/`431` without reaching a handler:
    // count it with the other bad requests.
    if let Some(Err(e)) = served
        && (e.is_parse() || e.is_parse_too_large() || e.is_parse_status())
    {
        counts.count(StatusCode::BAD_REQUEST);
    }
}

/// The first wait after an accept fails; it doubles with each failure in a row.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);

/// The longest wait after an accept fails.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Sends each request to its handler; unknown routes are `404`, known routes with another method `405`.
async fn route(req: Request<Incoming>, state: &Arc<State>) -> Response<Body> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let method = req.method().clone();
    let query = req.uri().query();
    let result = match segments.as_slice() {
        ["healthz"] => only_get(&method, &path)
            .and_then(|()| query_params(query, &[]))
            .map(|_| json(StatusCode::OK, &serde_json::json!({"status": "ok"}))),
        ["v1", "stats"] => match only_get(&method, &path) {
            Ok(()) => stats_route::handle(state, query).await,
            Err(e) => Err(e),
        },
        ["v1", "explain"] => match only_get(&method, &path) {
            Ok(()) => stats_route::explain(state, query).await,
            Err(e) => Err(e),
        },
        ["metrics"] => match only_get(&method, &path).and_then(|()| query_params(query, &[])) {
            Ok(_) => state.metrics.handle().await,
            Err(e) => Err(e),
        },
        ["v1", "publish"] | ["v1", "taps", ..] | ["v1", "subscriptions", _, "policy"] => {
            commands::handle(req, state).await
        }
        _ => Err(HttpError::not_found(format!(
            "no route {method} {path}; the routes are GET /healthz, GET /v1/stats, GET /v1/explain, GET \
             /metrics, and \
             (with a token) POST /v1/publish, /v1/taps, PUT /v1/subscriptions/{{id}}/policy"
        ))),
    };
    result.unwrap_or_else(HttpError::into_response)
}
