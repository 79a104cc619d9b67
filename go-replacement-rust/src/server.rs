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
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};

use crate::Response;
use crate::context::Context;
use crate::error::{self, Rejection};
use crate::listen::Sockets;
use crate::signature::{BoxFuture, Invoke};

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

/// Code to run once the server has drained, before the process exits.
pub(crate) type ShutdownHook = Box<dyn FnOnce() -> BoxFuture<()> + Send>;

pub(crate) struct Server {
    /// The name the function is registered under.
    pub(crate) name: Arc<str>,
    pub(crate) signature: crate::SignatureType,
    pub(crate) function: Arc<dyn Invoke>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) limits: Limits,
    pub(crate) on_shutdown: std::sync::Mutex<Option<ShutdownHook>>,
}

impl Server {
    /// Answers one request. Never fails: every outcome is a response.
    async fn handle(
        self: Arc<Self>,
        request: hyper::Request<Incoming>,
        remote: Option<SocketAddr>,
    ) -> Response {
        let path = request.uri().path();
        if path == "/robots.txt" || path == "/favicon.ico" {
            return error::status_only(StatusCode::NOT_FOUND);
        }
        let (parts, body) = request.into_parts();
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
        #[cfg(feature = "opentelemetry")]
        let structured_traceparent = crate::otel::glue::structured_traceparent(&parts, &body);
        #[cfg(not(feature = "opentelemetry"))]
        let structured_traceparent: Option<String> = None;
        let context = Context::from_request(
            &parts,
            remote.map(|a| a.ip()),
            self.timeout,
            structured_traceparent.as_deref(),
        );
        #[cfg(feature = "opentelemetry")]
        {
            let span =
                crate::otel::glue::start(&self.name, self.signature, &parts, remote, &context);
            let response = self
                .invoke(context, http::Request::from_parts(parts, body))
                .await;
            if let Some(span) = span {
                crate::otel::end(span, response.status().as_u16());
            }
            response
        }
        #[cfg(not(feature = "opentelemetry"))]
        self.invoke(context, http::Request::from_parts(parts, body))
            .await
    }

    /// Runs the function with its context, catching panics and enforcing the deadline.
    async fn invoke(&self, context: Context, request: http::Request<Bytes>) -> Response {
        // Calling the function only builds its future, but a closure may run code before
        // returning it: that part runs here, with the context set and panics caught like
        // those of the future. What is kept across `.await` is then just the boxed future.
        let started = context.sync_scope(|| {
            std::panic::catch_unwind(AssertUnwindSafe(|| self.function.invoke(request)))
        });
        let Ok(future) = started else {
            return error::crash();
        };
        // The invocation's span: spans and logs of its code nest under it, in tasks it starts
        // with `spawn` too.
        let span = tracing::info_span!("function", name = %self.name);
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
                Ok(Ok(mut response)) => {
                    // Responses must not be cached by an ETag (Functions Framework contract).
                    response.headers_mut().remove(header::ETAG);
                    response
                }
                Ok(Err(failed)) => failed.into_response(),
                Err(_panic) => error::crash(),
            }
        };
        context.scope(run).await
    }

    /// Serves until SIGTERM or SIGINT, then drains in-flight requests for at most
    /// `shutdown_timeout`.
    pub(crate) async fn run(self: Arc<Self>, sockets: Sockets) -> io::Result<()> {
        crate::panic::install_hook();
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;

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
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_read_timeout)
            .keep_alive(true)
            .max_buf_size(MAX_HEADER_BYTES)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
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
