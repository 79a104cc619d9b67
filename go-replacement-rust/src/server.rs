//! The HTTP server: routing, limits, panic recovery, deadlines, error responses and graceful
//! shutdown, all in one place.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use http::{StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};

use crate::context::Context;
use crate::error::{self, Rejection};
use crate::listen::Sockets;
use crate::signature::{BoxFuture, Invoke};
use crate::{Response, SignatureType};

/// Server settings that do not come from flags or the environment.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) body: usize,
    pub(crate) body_idle_timeout: Duration,
    pub(crate) header_read_timeout: Duration,
    pub(crate) shutdown_timeout: Duration,
}

/// Request headers beyond this get 431, as Node.js (the platform's own runtime) does.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// HTTP/2 streams a client may have open at once on one connection.
const MAX_CONCURRENT_STREAMS: u32 = 256;

/// HTTP/2 streams a client may reset before the server has accepted them, and resets the
/// server sends for a client's errors, before the connection is closed: the bounds against
/// the rapid-reset attack and its kin.
const MAX_PENDING_RESETS: usize = 20;
const MAX_LOCAL_ERROR_RESETS: usize = 1024;

/// The connection settings, once: HTTP/1.1 and HTTP/2 with prior knowledge (h2c) on the same
/// port, as Cloud Run forwards either, with the same limits.
pub(crate) fn connection_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true)
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_pending_accept_reset_streams(MAX_PENDING_RESETS)
        .max_local_error_reset_streams(MAX_LOCAL_ERROR_RESETS)
        // Peers that stop answering pings are dropped, as idle HTTP/1 ones are.
        .keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(Duration::from_secs(20))
        // WebSockets over HTTP/2 (RFC 8441), for services that accept them.
        .enable_connect_protocol();
    builder
}

/// Code to run once the server has drained, before the process exits.
pub(crate) type ShutdownHook = Box<dyn FnOnce() -> BoxFuture<()> + Send>;

/// A function the server routes requests to.
pub(crate) struct Route {
    /// The name the function is registered under.
    pub(crate) name: Arc<str>,
    pub(crate) signature: SignatureType,
    pub(crate) function: Arc<dyn Invoke>,
}

/// What the server serves: the target at every path, or, when several functions are
/// registered and none is named, each at `/<name>` (and below), as the Go framework does.
pub(crate) enum Routes {
    Target(Route),
    ByName(Vec<Route>),
}

impl Routes {
    fn find(&self, path: &str) -> Option<&Route> {
        match self {
            Routes::Target(route) => Some(route),
            Routes::ByName(routes) => {
                let first = path.trim_start_matches('/').split('/').next()?;
                routes.iter().find(|route| &*route.name == first)
            }
        }
    }

    fn listing(&self) -> String {
        match self {
            Routes::Target(route) => format!("{} at every path", route.name),
            Routes::ByName(routes) => routes
                .iter()
                .map(|route| format!("/{}", route.name))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

pub(crate) struct Server {
    pub(crate) routes: Routes,
    /// Paths HTTP functions answer with 404 without being invoked (`IGNORED_ROUTES`).
    pub(crate) ignored_routes: Vec<String>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) limits: Limits,
    pub(crate) on_shutdown: std::sync::Mutex<Option<ShutdownHook>>,
    pub(crate) connections: Arc<auto::Builder<TokioExecutor>>,
}

impl Server {
    /// Answers one request. Never fails: every outcome is a response.
    async fn handle(
        self: Arc<Self>,
        request: hyper::Request<Incoming>,
        remote: Option<SocketAddr>,
    ) -> Response {
        let path = request.uri().path();
        let Some(route) = self.routes.find(path) else {
            return error::rejected(&Rejection::new(
                StatusCode::NOT_FOUND,
                format!(
                    "no function is served at {path}; the functions are served at {}",
                    self.routes.listing()
                ),
            ));
        };
        // Every signature, as the contract says of the default `/robots.txt` and
        // `/favicon.ico`; `IGNORED_ROUTES` changes the list (empty: none, so that a site
        // served with `.service` can answer its own favicon).
        if self.ignored_routes.iter().any(|ignored| ignored == path) {
            return error::status_only(StatusCode::NOT_FOUND);
        }
        let (mut parts, body) = request.into_parts();
        let limit = self.limits.body;
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return error::too_large(limit);
        }
        // Bodies are read through a box: it keeps the request future small for the common
        // case of an empty body, and a future that small is cheap to move.
        let body = if http_body::Body::is_end_stream(&body) {
            Bytes::new()
        } else {
            match Box::pin(read_body(body, limit, self.limits.body_idle_timeout)).await {
                Ok(body) => body,
                Err(response) => return response,
            }
        };
        let body = match crate::encoding::decode(&mut parts, body, limit) {
            Ok(body) => body,
            Err(response) => return response,
        };
        #[cfg(feature = "opentelemetry")]
        let structured_traceparent = crate::otel::glue::structured_traceparent(&parts, &body);
        #[cfg(not(feature = "opentelemetry"))]
        let structured_traceparent: Option<String> = None;
        let context = Context::from_request(
            &parts,
            remote.map(|a| a.ip()),
            self.timeout,
            structured_traceparent.as_deref(),
            Arc::clone(&route.name),
        );
        #[cfg(feature = "opentelemetry")]
        {
            let span =
                crate::otel::glue::start(&route.name, route.signature, &parts, remote, &context);
            let response = self
                .invoke(route, context, http::Request::from_parts(parts, body))
                .await;
            if let Some(span) = span {
                crate::otel::end(span, response.status().as_u16());
            }
            response
        }
        #[cfg(not(feature = "opentelemetry"))]
        self.invoke(route, context, http::Request::from_parts(parts, body))
            .await
    }

    /// Runs the function with its context, catching panics and enforcing the deadline.
    async fn invoke(
        &self,
        route: &Route,
        context: Context,
        request: http::Request<Bytes>,
    ) -> Response {
        // Calling the function only builds its future, but a closure may run code before
        // returning it: that part runs here, with the context set and panics caught like
        // those of the future. What is kept across `.await` is then just the boxed future.
        let started = context.sync_scope(|| {
            std::panic::catch_unwind(AssertUnwindSafe(|| route.function.invoke(request)))
        });
        let Ok(future) = started else {
            return error::crash();
        };
        // The invocation's span: spans and logs of its code nest under it, in tasks it starts
        // with `spawn` too.
        let span = tracing::info_span!("function", name = %route.name);
        let timeout = self.timeout;
        // Everything from here runs in the invocation's scope, so that what it logs (the
        // error report, the deadline) carries the invocation's context.
        let run = async move {
            let call =
                tracing::Instrument::instrument(AssertUnwindSafe(future).catch_unwind(), span);
            let outcome = match timeout {
                // Boxed: a timer entry is large, and most deployments outside Cloud Run have
                // no deadline.
                Some(timeout) => match Box::pin(tokio::time::timeout(timeout, call)).await {
                    Ok(outcome) => outcome,
                    Err(_) => return error::deadline_exceeded(timeout),
                },
                None => call.await,
            };
            match outcome {
                // The framework adds no ETag (the Functions Framework contract); one the
                // function sets is its own business and passes.
                Ok(Ok(response)) => response,
                Ok(Err(failed)) => failed.into_response(),
                Err(_panic) => error::crash(),
            }
        };
        context.scope(run).await
    }

    /// Serves until SIGTERM or SIGINT, then drains in-flight requests for at most
    /// `shutdown_timeout`.
    pub(crate) async fn run(self: Arc<Self>, sockets: Sockets, signals: Signals) -> io::Result<()> {
        crate::panic::install_hook();
        let Signals {
            mut terminate,
            mut interrupt,
        } = signals;

        let graceful = GracefulShutdown::new();
        for stream in sockets.connections {
            stream.set_nonblocking(true)?;
            self.serve_connection(TcpStream::from_std(stream)?, &graceful);
        }
        let listeners = sockets
            .listeners
            .into_iter()
            .map(TcpListener::from_std)
            .collect::<io::Result<Vec<_>>>()?;

        let signal_name = loop {
            tokio::select! {
                accepted = accept(&listeners) => match accepted {
                    Ok(stream) => self.serve_connection(stream, &graceful),
                    Err(error) => {
                        // Out of fds or memory: back off instead of spinning, and keep
                        // serving the connections we already have.
                        tracing::error!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                _ = terminate.recv() => break "SIGTERM",
                _ = interrupt.recv() => break "SIGINT",
            }
        };
        // Closing the listeners makes new connections fail fast instead of queueing behind
        // a server that is going away.
        drop(listeners);
        let in_flight = graceful.count();
        tracing::info!(
            signal = signal_name,
            connections = in_flight,
            "shutting down: draining"
        );
        let bound = self.limits.shutdown_timeout;
        let deadline = tokio::time::Instant::now() + bound;
        tokio::select! {
            () = graceful.shutdown() => tracing::info!("all connections drained"),
            () = tokio::time::sleep_until(deadline) => {
                tracing::warn!(bound_secs = bound.as_secs_f64(), "drain bound reached: exiting with requests unfinished");
            }
            _ = terminate.recv() => force_exit("SIGTERM"),
            _ = interrupt.recv() => force_exit("SIGINT"),
        }
        let hook = self
            .on_shutdown
            .lock()
            .ok()
            .and_then(|mut hook| hook.take());
        if let Some(hook) = hook {
            // What is left of the bound; a hook that started late still gets a moment.
            let left = deadline
                .saturating_duration_since(tokio::time::Instant::now())
                .max(Duration::from_millis(100));
            tokio::select! {
                () = hook() => tracing::info!("shutdown hook finished"),
                () = tokio::time::sleep(left) => {
                    tracing::warn!(left_secs = left.as_secs_f64(), "shutdown hook did not finish within the shutdown timeout");
                }
                _ = terminate.recv() => force_exit("SIGTERM"),
                _ = interrupt.recv() => force_exit("SIGINT"),
            }
        }
        #[cfg(feature = "opentelemetry")]
        crate::otel::flush(
            deadline
                .saturating_duration_since(tokio::time::Instant::now())
                .max(Duration::from_secs(1)),
        )
        .await;
        Ok(())
    }

    /// Serves one connection on a task of its own, watched for graceful shutdown.
    fn serve_connection(self: &Arc<Self>, stream: TcpStream, graceful: &GracefulShutdown) {
        let _ = stream.set_nodelay(true);
        let remote = stream.peer_addr().ok();
        let server = Arc::clone(self);
        let service = service_fn(move |request| {
            let server = Arc::clone(&server);
            server.handle(request, remote).map(Ok::<_, Infallible>)
        });
        let builder = Arc::clone(&self.connections);
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // With upgrades, so that a service can take the connection over (WebSockets).
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
}

/// The shutdown signals, listened to before the server says it is serving: a SIGTERM that
/// comes right after that line must drain, not kill the process.
pub(crate) struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    pub(crate) fn listen() -> io::Result<Signals> {
        Ok(Signals {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }
}

/// The next connection from any of the listeners.
async fn accept(listeners: &[TcpListener]) -> io::Result<TcpStream> {
    std::future::poll_fn(|cx| {
        for listener in listeners {
            if let Poll::Ready(accepted) = listener.poll_accept(cx) {
                return Poll::Ready(accepted.map(|(stream, _)| stream));
            }
        }
        Poll::Pending
    })
    .await
}

/// Reads the whole body, refusing it past `limit` bytes (413) or when the client sends
/// nothing for `idle` (408): a stalled upload must not hold a connection forever.
async fn read_body(body: Incoming, limit: usize, idle: Duration) -> Result<Bytes, Response> {
    let mut body = Limited::new(body, limit);
    let mut first: Option<Bytes> = None;
    let mut rest: Vec<u8> = Vec::new();
    loop {
        // Data already received needs no timer: only a frame that has to be waited for is.
        let ready = body.frame().now_or_never();
        let next = match ready {
            Some(frame) => Ok(frame),
            None => tokio::time::timeout(idle, body.frame()).await,
        };
        let frame = match next {
            Err(_) => return Err(error::body_stalled(idle)),
            Ok(None) => break,
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(error))) if error.downcast_ref::<LengthLimitError>().is_some() => {
                return Err(error::too_large(limit));
            }
            Ok(Some(Err(error))) => {
                tracing::debug!(%error, "request body could not be read");
                return Err(error::rejected(&Rejection::bad_request(format!(
                    "could not read the request body: {error}"
                ))));
            }
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        // Most bodies arrive in one frame: keep it without copying.
        match &first {
            None if rest.is_empty() => first = Some(data),
            _ => {
                if let Some(first) = first.take() {
                    rest.extend_from_slice(&first);
                }
                rest.extend_from_slice(&data);
            }
        }
    }
    Ok(match first {
        Some(bytes) => bytes,
        None => Bytes::from(rest),
    })
}

#[allow(clippy::exit)]
fn force_exit(signal: &str) -> ! {
    tracing::warn!(signal, "second signal during shutdown: exiting now");
    std::process::exit(1)
}

#[cfg(test)]
mod tests;
