//! The HTTP server: routing, limits, panic recovery, deadlines, error responses and graceful
//! shutdown, all in one place.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::Either;
use futures_util::task::AtomicWaker;
use http::{StatusCode, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::context::Context;
use crate::error::{self, InvokeError, Rejection};
use crate::incoming;
use crate::listen::Sockets;
use crate::signature::{BoxFuture, Handler, Invoke};
use crate::{Body, Response, SignatureType};

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

/// hyper's HTTP/1 read buffer, at most: also the size of the body frames it reads. A buffer
/// as small as the header limit would cut a large body into 16 KiB frames, each a read and
/// a hand-over of its own; the header limit is checked on the parsed request instead.
const MAX_READ_BUFFER: usize = 400 * 1024;

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
        .max_buf_size(MAX_READ_BUFFER);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_pending_accept_reset_streams(MAX_PENDING_RESETS)
        .max_local_error_reset_streams(MAX_LOCAL_ERROR_RESETS)
        // No pings of our own, as hyper's and Go's servers by default: the platform's front
        // end manages its connections, and a ping timer per connection costs every request a
        // clock read.
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
    pub(crate) function: Handler,
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
    /// Invocations whose client went away, running on to completion: shutdown waits for
    /// them as for connections.
    pub(crate) detached: TaskTracker,
}

impl Server {
    /// Answers one request. Never fails: every outcome is a response.
    async fn handle(
        self: Arc<Self>,
        request: hyper::Request<Incoming>,
        remote: Option<SocketAddr>,
        connection: Arc<Connection>,
        in_flight: InFlight,
    ) -> Response {
        let response = self.respond(request, remote, &connection).await;
        if !response.body().is_streaming() {
            return response;
        }
        // A streamed answer is being given until its body ends.
        response.map(|body| {
            Body::new(Answering {
                body,
                _in_flight: in_flight,
            })
        })
    }

    /// Routes the request and starts answering it. Not `async`: what can be decided at once
    /// is, and the future holds only what the answer still waits for (hyper moves it into a
    /// task of its own per HTTP/2 stream, and a small one is cheap to move).
    fn respond<'a>(
        &'a self,
        request: hyper::Request<Incoming>,
        remote: Option<SocketAddr>,
        connection: &'a Connection,
    ) -> Responding<'a> {
        // HTTP/2 heads are bounded by hyper (`max_header_list_size`) before they get here.
        if request.version() < http::Version::HTTP_2 && header_bytes(&request) > MAX_HEADER_BYTES {
            return Responding::now(error::status_only(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ));
        }
        let path = request.uri().path();
        let Some(route) = self.routes.find(path) else {
            return Responding::now(error::rejected(&Rejection::new(
                StatusCode::NOT_FOUND,
                format!(
                    "no function is served at {path}; the functions are served at {}",
                    self.routes.listing()
                ),
            )));
        };
        // Every signature, as the contract says of the default `/robots.txt` and
        // `/favicon.ico`; `IGNORED_ROUTES` changes the list (empty: none, so that a site
        // served with `.service` can answer its own favicon).
        if self.ignored_routes.iter().any(|ignored| ignored == path) {
            return Responding::now(error::status_only(StatusCode::NOT_FOUND));
        }
        let (mut parts, body) = request.into_parts();
        match &route.function {
            Handler::Buffered(function) => {
                let limit = self.limits.body;
                let declared = parts
                    .headers
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                if declared.is_some_and(|len| len > limit as u64) {
                    return Responding::now(error::too_large(limit));
                }
                if http_body::Body::is_end_stream(&body) {
                    let body = match crate::encoding::decode(&mut parts, Bytes::new(), limit) {
                        Ok(body) => body,
                        Err(response) => return Responding::now(response),
                    };
                    return Responding::Invoking(
                        self.start_buffered(route, function, parts, body, remote, connection),
                    );
                }
                let unread = incoming::Unread::start(&connection.bodies_unread);
                let read = incoming::read(body, declared, limit, self.limits.body_idle_timeout);
                // Boxed once, with the read in it: the body is read, then the invocation
                // starts. `then`, not an `async` block, which would hold the read twice.
                Responding::Reading(Box::pin(read.then(move |read| {
                    drop(unread);
                    let decoded = match read {
                        Ok(body) => crate::encoding::decode(&mut parts, body, limit),
                        Err(response) => Err(response),
                    };
                    match decoded {
                        Ok(body) => Either::Left(
                            self.start_buffered(route, function, parts, body, remote, connection),
                        ),
                        Err(response) => Either::Right(std::future::ready(response)),
                    }
                })))
            }
            Handler::Streaming(function) => {
                let function = Arc::clone(function);
                let body = Body::new(incoming::Streamed::new(
                    body,
                    self.limits.body_idle_timeout,
                    incoming::Unread::start(&connection.bodies_unread),
                ));
                Responding::Invoking(self.start(
                    route,
                    parts,
                    None,
                    remote,
                    &connection.gone,
                    move |parts| function.invoke(http::Request::from_parts(parts, body)),
                ))
            }
        }
    }

    /// [`Server::start`] for a function that takes the body read.
    fn start_buffered<'a>(
        &'a self,
        route: &Route,
        function: &Arc<dyn Invoke>,
        parts: http::request::Parts,
        body: Bytes,
        remote: Option<SocketAddr>,
        connection: &Connection,
    ) -> Detach<'a> {
        let function = Arc::clone(function);
        let peek = body.clone();
        self.start(
            route,
            parts,
            Some(&peek),
            remote,
            &connection.gone,
            move |parts| function.invoke(http::Request::from_parts(parts, body)),
        )
    }

    /// Makes the invocation's context and starts the function on the request; what it returns
    /// runs the invocation to its response. `body` is the body when it has been read (a
    /// structured CloudEvent may carry the trace context).
    ///
    /// Not `async`: the request's parts move into the function once, and the request future
    /// holds one small [`Detach`] rather than the nested states of each step.
    fn start(
        &self,
        route: &Route,
        parts: http::request::Parts,
        body: Option<&Bytes>,
        remote: Option<SocketAddr>,
        connection: &CancellationToken,
        function: impl FnOnce(http::request::Parts) -> BoxFuture<Result<Response, InvokeError>>,
    ) -> Detach<'_> {
        #[cfg(feature = "opentelemetry")]
        let structured_traceparent =
            body.and_then(|body| crate::otel::glue::structured_traceparent(&parts, body));
        #[cfg(not(feature = "opentelemetry"))]
        let structured_traceparent: Option<String> = {
            let _ = body;
            None
        };
        let context = Context::from_request(
            &parts,
            remote.map(|a| a.ip()),
            self.timeout,
            structured_traceparent.as_deref(),
            Arc::clone(&route.name),
            connection.clone(),
        );
        #[cfg(feature = "opentelemetry")]
        let span = crate::otel::glue::start(&route.name, route.signature, &parts, remote, &context);
        let run = self.invoke(route, &context, move || function(parts));
        Detach {
            run: Some(run),
            context,
            tracker: &self.detached,
            #[cfg(feature = "opentelemetry")]
            span,
        }
    }

    /// The invocation's future: the function run with its context, panics caught and the
    /// deadline enforced.
    ///
    /// A client that goes away does not cancel the function, as in the Node.js and Go
    /// frameworks: the invocation runs on to completion or to its deadline on a task of its
    /// own (see [`Detach`]), its context tells it the client is gone, and its response is
    /// dropped.
    fn invoke(
        &self,
        route: &Route,
        context: &Context,
        function: impl FnOnce() -> BoxFuture<Result<Response, InvokeError>>,
    ) -> BoxFuture<Response> {
        // Calling the function only builds its future, but a closure may run code before
        // returning it: that part runs here, with the context set and panics caught like
        // those of the future.
        let started = context.sync_scope(|| std::panic::catch_unwind(AssertUnwindSafe(function)));
        let Ok(future) = started else {
            return Box::pin(std::future::ready(error::crash()));
        };
        // The invocation's span: spans and logs of its code nest under it, in tasks it starts
        // with `spawn` too. At DEBUG: a span per request is a cost every request would pay,
        // and the Cloud Logging output does not show spans (it names the invocation by its
        // execution id); a subscriber that wants them enables DEBUG.
        let span = tracing::debug_span!("function", name = %route.name);
        let timeout = self.timeout;
        let gone = context.clone();
        // Everything from here runs in the invocation's scope, so that what it logs (the
        // error report, the deadline, the client going away) carries the invocation's
        // context.
        let run = async move {
            let call =
                tracing::Instrument::instrument(AssertUnwindSafe(future).catch_unwind(), span);
            let call = ReportClientGone::new(call, gone);
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
        Box::pin(context.clone().scope(run))
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
            () = async {
                graceful.shutdown().await;
                self.detached.close();
                self.detached.wait().await;
            } => tracing::info!("all connections drained"),
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
        let connection = Arc::new(Connection::default());
        let gone = connection.gone.clone();
        let stream = WatchedStream {
            stream,
            connection: Arc::clone(&connection),
            eof_held: false,
            flushed: 0,
        };
        let service = service_fn(move |request| {
            let server = Arc::clone(&server);
            // Counted from the moment hyper hands the request over, before the handler first
            // runs: an end of stream read in between must already be held back.
            let in_flight = InFlight::new(Arc::clone(&connection));
            server
                .handle(request, remote, Arc::clone(&connection), in_flight)
                .map(Ok::<_, Infallible>)
        });
        let builder = Arc::clone(&self.connections);
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _closed = gone.drop_guard();
            // With upgrades, so that a service can take the connection over (WebSockets).
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
}

/// The size of a request's head as HTTP/1 sends it, near enough: the target and each header
/// line.
fn header_bytes<B>(request: &hyper::Request<B>) -> usize {
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    request
        .headers()
        .iter()
        .fold(target, |total, (name, value)| {
            total + name.as_str().len() + value.len() + 4
        })
}

/// How a request is being answered: at once (an error found before any function runs), by
/// an invocation, or by reading the body and then invoking.
enum Responding<'a> {
    Now(std::future::Ready<Response>),
    Invoking(Detach<'a>),
    Reading(Pin<Box<dyn Future<Output = Response> + Send + 'a>>),
}

impl Responding<'_> {
    fn now(response: Response) -> Self {
        Responding::Now(std::future::ready(response))
    }
}

impl Future for Responding<'_> {
    type Output = Response;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Response> {
        match self.get_mut() {
            Responding::Now(response) => Pin::new(response).poll(cx),
            Responding::Invoking(detach) => Pin::new(detach).poll(cx),
            Responding::Reading(reading) => reading.as_mut().poll(cx),
        }
    }
}

/// An invocation running in the request's task. If the request is dropped before the
/// invocation ends (the client closed its connection or reset its stream), the client is
/// marked gone and the invocation moves to a task of its own, to run to completion or to
/// its deadline: the function is never cancelled halfway by a client.
struct Detach<'a> {
    run: Option<BoxFuture<Response>>,
    context: Context,
    tracker: &'a TaskTracker,
    /// Ended with the response's status, when the invocation ends.
    #[cfg(feature = "opentelemetry")]
    span: Option<crate::otel::InvocationSpan>,
}

impl Future for Detach<'_> {
    type Output = Response;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Response> {
        let Some(run) = self.run.as_mut() else {
            return Poll::Ready(error::status_only(StatusCode::INTERNAL_SERVER_ERROR));
        };
        let response = std::task::ready!(run.as_mut().poll(cx));
        self.run = None;
        #[cfg(feature = "opentelemetry")]
        if let Some(span) = self.span.take() {
            crate::otel::end(span, response.status().as_u16());
        }
        Poll::Ready(response)
    }
}

impl Drop for Detach<'_> {
    fn drop(&mut self) {
        if let Some(run) = self.run.take() {
            self.context.set_client_gone();
            #[cfg(feature = "opentelemetry")]
            let span = self.span.take();
            // Dropped in the connection's task, so on the server's runtime.
            self.tracker.spawn(async move {
                let _response = run.await;
                #[cfg(feature = "opentelemetry")]
                if let Some(span) = span {
                    crate::otel::end(span, _response.status().as_u16());
                }
            });
        }
    }
}

pin_project_lite::pin_project! {
    /// Logs, in the invocation's scope, when its client goes away while the function runs.
    struct ReportClientGone<F> {
        #[pin]
        call: F,
        gone: Option<BoxFuture<()>>,
        context: Context,
        reported: bool,
    }
}

impl<F> ReportClientGone<F> {
    fn new(call: F, context: Context) -> Self {
        ReportClientGone {
            call,
            gone: None,
            context,
            reported: false,
        }
    }
}

impl<F: Future> Future for ReportClientGone<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.call.poll(cx) {
            if *this.reported {
                tracing::info!("the function finished after its client went away");
            }
            return Poll::Ready(output);
        }
        if !*this.reported {
            // Only an invocation that has to wait pays for the waiter.
            let context = &*this.context;
            let gone = this
                .gone
                .get_or_insert_with(|| Box::pin(context.client_gone()));
            if gone.as_mut().poll(cx).is_ready() {
                *this.reported = true;
                *this.gone = None;
                tracing::info!(
                    "the client went away; the function runs on to completion or its deadline, \
                     and its response is dropped"
                );
            }
        }
        Poll::Pending
    }
}

/// What the requests of one connection share about it.
#[derive(Default)]
struct Connection {
    /// Cancelled when the client closes the connection (or its sending side): what each
    /// invocation on it sees as the client going away.
    gone: CancellationToken,
    /// Requests being answered.
    in_flight: AtomicUsize,
    /// Requests answered (their response given to hyper, a streamed body ended).
    answered: AtomicUsize,
    /// Request bodies not yet received in full.
    bodies_unread: Arc<AtomicUsize>,
    /// The connection's reader, waiting to be told of an end of stream it was kept from.
    reader: AtomicWaker,
}

/// Counts a request as being answered while it lives.
struct InFlight(Arc<Connection>);

impl InFlight {
    fn new(connection: Arc<Connection>) -> Self {
        connection.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(connection)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.answered.fetch_add(1, Ordering::AcqRel);
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.reader.wake();
        }
    }
}

/// A streamed response body, which keeps its request counted as being answered.
struct Answering {
    body: Body,
    _in_flight: InFlight,
}

impl http_body::Body for Answering {
    type Data = Bytes;
    type Error = crate::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, crate::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A client's connection, watched for the client closing it.
///
/// A read that finds the end of the stream marks the client gone. If a request whose body
/// has arrived is still being answered, the end of the stream is then kept from hyper until
/// it has been answered: a client that shut down only its sending side after its request (a
/// half-close) still gets the response, and one that closed the connection loses nothing it
/// could have received. A read error (a reset) is passed on: the connection is over.
struct WatchedStream {
    stream: TcpStream,
    connection: Arc<Connection>,
    /// The end of the stream has been read and not yet passed on.
    eof_held: bool,
    /// How many requests had been answered at the last flush.
    flushed: usize,
}

impl WatchedStream {
    /// Whether a response is still owed or not yet flushed: hyper must not see the end of
    /// the stream before, or it would drop the connection with the response.
    fn answering(&self) -> bool {
        self.connection.in_flight.load(Ordering::Acquire) > 0
            || self.connection.answered.load(Ordering::Acquire) != self.flushed
    }
}

impl AsyncRead for WatchedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.eof_held {
            let before = buf.filled().len();
            let read = std::task::ready!(Pin::new(&mut this.stream).poll_read(cx, buf));
            let at_end = read.is_ok() && buf.filled().len() == before && buf.remaining() > 0;
            if read.is_err() || at_end {
                this.connection.gone.cancel();
            }
            let body_complete = this.connection.bodies_unread.load(Ordering::Acquire) == 0;
            if !at_end || !body_complete || !this.answering() {
                return Poll::Ready(read);
            }
            this.eof_held = true;
        }
        this.connection.reader.register(cx.waker());
        if this.answering() {
            Poll::Pending
        } else {
            // The end of the stream, now that the last response is on its way.
            Poll::Ready(Ok(()))
        }
    }
}

impl AsyncWrite for WatchedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let answered = this.connection.answered.load(Ordering::Acquire);
        let flushed = std::task::ready!(Pin::new(&mut this.stream).poll_flush(cx));
        if flushed.is_ok() {
            this.flushed = answered;
            if this.eof_held {
                this.connection.reader.wake();
            }
        }
        Poll::Ready(flushed)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
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

#[allow(clippy::exit)]
fn force_exit(signal: &str) -> ! {
    tracing::warn!(signal, "second signal during shutdown: exiting now");
    std::process::exit(1)
}

#[cfg(test)]
mod tests;
