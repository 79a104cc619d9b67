//! The per-invocation context: execution id, trace context, deadline and what Error
//! Reporting wants to know of the request; and [`spawn`], which carries it into new tasks.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue, Method, Uri};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// What the platform tells a function about the invocation it is serving.
///
/// Any code running inside an invocation, whatever the signature, gets it from
/// [`Context::current`], in the invocation's task and in tasks started with [`spawn`] (or
/// wrapped in [`Context::scope`]).
///
/// ```
/// use functions_framework::{Context, Request};
///
/// async fn hello(_req: Request) -> String {
///     let id = Context::current().map(|ctx| ctx.execution_id().to_owned()).unwrap_or_default();
///     format!("execution {id}")
/// }
/// # let _ = hello;
/// ```
#[derive(Debug, Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The header's value, or an id made the first time one is asked for: most invocations
    /// never need one, and making it costs an allocation.
    execution_id: std::sync::OnceLock<String>,
    trace: Option<TraceContext>,
    deadline: Option<Instant>,
    request: Option<RequestInfo>,
    /// The name of the function invoked.
    function: Option<Arc<str>>,
    /// The invocation's own trace and span ids (hex), when the framework traces it: logs
    /// name its span instead of the caller's, and its trace when the caller sent none.
    traced: std::sync::OnceLock<(String, String)>,
    /// The client's connection: cancelled when it closes.
    connection: Option<CancellationToken>,
    /// Set when the request itself went away (an HTTP/2 stream reset, or the connection
    /// dropped with it), with `request_dropped` woken. Kept in the context's own allocation:
    /// every request has one, and few ever use it.
    dropped: AtomicBool,
    request_dropped: tokio::sync::Notify,
}

/// The request, as Error Reporting's `httpRequest` context describes it. Only cheap clones
/// are taken here; the strings are made when an error is reported.
#[derive(Debug, Clone)]
pub(crate) struct RequestInfo {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) user_agent: Option<HeaderValue>,
    pub(crate) referrer: Option<HeaderValue>,
    pub(crate) remote_ip: Option<IpAddr>,
    pub(crate) forwarded_for: Option<HeaderValue>,
}

/// The distributed-trace position of an invocation, from the `traceparent` header (W3C) or
/// else the `X-Cloud-Trace-Context` header (Google).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace id: 32 lowercase hex digits.
    pub trace_id: String,
    /// The caller's span id, as the header gave it (hex for `traceparent`, decimal for
    /// `X-Cloud-Trace-Context`).
    pub span_id: Option<String>,
    /// Whether the caller asked for this trace to be recorded.
    pub sampled: bool,
    /// The original `traceparent` header, when there was one: it is passed on as the
    /// CloudEvent `traceparent` extension.
    pub traceparent: Option<String>,
}

tokio::task_local! {
    static CURRENT: Context;
}

impl Context {
    /// The execution id: the `Function-Execution-Id` header, or a fresh id.
    pub fn execution_id(&self) -> &str {
        self.inner.execution_id.get_or_init(generate_execution_id)
    }

    /// The trace context, when the request carried one.
    pub fn trace(&self) -> Option<&TraceContext> {
        self.inner.trace.as_ref()
    }

    /// When the platform gives up on this invocation (from `CLOUD_RUN_TIMEOUT_SECONDS`). Past
    /// it, the function's future is dropped and the client gets a 504.
    pub fn deadline(&self) -> Option<Instant> {
        self.inner.deadline
    }

    /// The invocation's own span id, when the framework traces invocations (OpenTelemetry);
    /// else `None` and logs name the caller's span.
    pub(crate) fn span_id(&self) -> Option<&str> {
        self.inner.traced.get().map(|(_, span)| span.as_str())
    }

    /// The trace id logs name: the caller's, else the one the invocation's span started.
    pub(crate) fn trace_id(&self) -> Option<&str> {
        self.trace()
            .map(|trace| trace.trace_id.as_str())
            .or_else(|| self.inner.traced.get().map(|(trace, _)| trace.as_str()))
    }

    /// Records the ids of the invocation's own span (once).
    #[cfg_attr(not(feature = "opentelemetry"), allow(dead_code))]
    pub(crate) fn set_traced(&self, trace_id: String, span_id: String) {
        let _ = self.inner.traced.set((trace_id, span_id));
    }

    /// The address of the peer that sent the request: on Cloud Run and Cloud Functions, the
    /// Google front end; see [`client_ip`](Context::client_ip) for the client.
    pub fn peer_ip(&self) -> Option<IpAddr> {
        self.request()?.remote_ip
    }

    /// The client's address: the first address of `X-Forwarded-For`, which Google's front
    /// end sets to the client it saw, else the peer's. The header is whatever the caller
    /// sent when nothing in front of the function rewrites it.
    ///
    /// ```
    /// use functions_framework::{Context, Request};
    ///
    /// async fn whoami(_req: Request) -> String {
    ///     Context::current()
    ///         .and_then(|ctx| ctx.client_ip())
    ///         .map(|ip| ip.to_string())
    ///         .unwrap_or_default()
    /// }
    /// # let _ = whoami;
    /// ```
    pub fn client_ip(&self) -> Option<IpAddr> {
        let request = self.request()?;
        request
            .forwarded_for
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .and_then(|list| list.split(',').next())
            .and_then(|first| first.trim().parse::<IpAddr>().ok())
            .or(request.remote_ip)
    }

    /// Whether the client that sent the request has gone away: it closed its connection
    /// (or, over HTTP/1, shut down its sending side) or reset its HTTP/2 stream.
    ///
    /// The framework does not cancel the function when that happens: it runs to completion
    /// or to its deadline, as in the Node.js and Go frameworks, and what it answers is
    /// dropped when nobody can receive it. A function whose work is only for the client can
    /// stop early; see [`client_gone`](Context::client_gone) to wait for it.
    pub fn is_client_gone(&self) -> bool {
        self.inner.dropped.load(Ordering::Acquire)
            || self
                .inner
                .connection
                .as_ref()
                .is_some_and(CancellationToken::is_cancelled)
    }

    /// Marks the client gone: its request was dropped before the function finished.
    pub(crate) fn set_client_gone(&self) {
        self.inner.dropped.store(true, Ordering::Release);
        self.inner.request_dropped.notify_waiters();
    }

    /// Completes when the client goes away (see [`is_client_gone`](Context::is_client_gone));
    /// never, for an invocation that has no client (a test's context).
    ///
    /// ```
    /// use std::time::Duration;
    /// use functions_framework::{Context, Request};
    ///
    /// async fn report(_req: Request) -> &'static str {
    ///     let ctx = Context::current().expect("inside an invocation");
    ///     tokio::select! {
    ///         () = tokio::time::sleep(Duration::from_secs(5)) => "the report",
    ///         // Nobody is waiting any more: stop the expensive part.
    ///         () = ctx.client_gone() => "",
    ///     }
    /// }
    /// # let _ = report;
    /// ```
    pub fn client_gone(&self) -> impl Future<Output = ()> + Send + 'static {
        let inner = Arc::clone(&self.inner);
        async move {
            let Some(connection) = inner.connection.clone() else {
                return std::future::pending().await;
            };
            let dropped = inner.request_dropped.notified();
            tokio::pin!(dropped);
            // Registered before the flag is read, so that a drop in between is not missed.
            dropped.as_mut().enable();
            if inner.dropped.load(Ordering::Acquire) {
                return;
            }
            tokio::select! {
                () = connection.cancelled() => {}
                () = dropped => {}
            }
        }
    }

    /// The name of the function this invocation runs.
    pub(crate) fn function_name(&self) -> Option<&str> {
        self.inner.function.as_deref()
    }

    pub(crate) fn request(&self) -> Option<&RequestInfo> {
        self.inner.request.as_ref()
    }

    /// The context of the invocation the calling task is serving, if any.
    ///
    /// ```
    /// use functions_framework::Context;
    ///
    /// fn log_line(message: &str) {
    ///     match Context::current() {
    ///         Some(ctx) => println!("[{}] {message}", ctx.execution_id()),
    ///         None => println!("{message}"),
    ///     }
    /// }
    /// # log_line("outside any invocation");
    /// ```
    pub fn current() -> Option<Context> {
        CURRENT.try_with(Clone::clone).ok()
    }

    pub(crate) fn new(
        execution_id: Option<String>,
        trace: Option<TraceContext>,
        deadline: Option<Instant>,
    ) -> Self {
        Context::with_parts(execution_id, trace, deadline, None, None, None)
    }

    fn with_parts(
        execution_id: Option<String>,
        trace: Option<TraceContext>,
        deadline: Option<Instant>,
        request: Option<RequestInfo>,
        function: Option<Arc<str>>,
        connection: Option<CancellationToken>,
    ) -> Self {
        let slot = std::sync::OnceLock::new();
        if let Some(id) = execution_id {
            let _ = slot.set(id);
        }
        Context {
            inner: Arc::new(Inner {
                execution_id: slot,
                trace,
                deadline,
                request,
                function,
                traced: std::sync::OnceLock::new(),
                connection,
                dropped: AtomicBool::new(false),
                request_dropped: tokio::sync::Notify::new(),
            }),
        }
    }

    /// The context of a request: its headers, what Error Reporting wants of it and the peer's
    /// address. `traceparent` is a CloudEvent's `traceparent` extension found in its body,
    /// used when the headers carry no trace; `connection` is cancelled when the client's
    /// connection closes.
    pub(crate) fn from_request(
        parts: &http::request::Parts,
        remote_ip: Option<IpAddr>,
        timeout: Option<Duration>,
        traceparent: Option<&str>,
        function: Arc<str>,
        connection: CancellationToken,
    ) -> Self {
        let headers = ContextHeaders::read(&parts.headers);
        let (execution_id, mut trace) = headers.execution_and_trace();
        if trace.is_none() {
            trace = traceparent.and_then(parse_traceparent);
        }
        let request = RequestInfo {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            user_agent: headers.user_agent.cloned(),
            referrer: headers.referrer.cloned(),
            // A dual-stack listener sees IPv4 clients as `::ffff:a.b.c.d`.
            remote_ip: remote_ip.map(|ip| ip.to_canonical()),
            forwarded_for: headers.forwarded_for.cloned(),
        };
        Context::with_parts(
            execution_id,
            trace,
            timeout.map(|t| Instant::now() + t),
            Some(request),
            Some(function),
            Some(connection),
        )
    }

    #[cfg(test)]
    pub(crate) fn from_headers(headers: &HeaderMap, timeout: Option<Duration>) -> Self {
        let (execution_id, trace) = ContextHeaders::read(headers).execution_and_trace();
        Context::new(execution_id, trace, timeout.map(|t| Instant::now() + t))
    }

    /// Runs `future` with `self` as [`Context::current`]: for tasks an invocation starts
    /// itself (see [`spawn`], which does this and carries the tracing span too).
    ///
    /// ```
    /// use functions_framework::{Context, Request};
    ///
    /// async fn hello(_req: Request) -> String {
    ///     let ctx = Context::current().expect("inside an invocation");
    ///     let (tx, rx) = tokio::sync::oneshot::channel();
    ///     std::thread::spawn(move || {
    ///         let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    ///         let id = runtime.block_on(ctx.scope(async {
    ///             Context::current().map(|c| c.execution_id().to_owned())
    ///         }));
    ///         let _ = tx.send(id);
    ///     });
    ///     rx.await.ok().flatten().unwrap_or_default()
    /// }
    /// # let _ = hello;
    /// ```
    pub fn scope<F: Future>(self, future: F) -> impl Future<Output = F::Output> {
        CURRENT.scope(self, future)
    }

    /// Runs `f` with `self` as [`Context::current`].
    pub(crate) fn sync_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        CURRENT.sync_scope(self.clone(), f)
    }
}

/// The headers an invocation's context reads, found in one pass over the request's headers:
/// seven hashed look-ups cost more than walking the few headers a request has.
#[derive(Default)]
struct ContextHeaders<'a> {
    execution_id: Option<&'a HeaderValue>,
    traceparent: Option<&'a HeaderValue>,
    cloud_trace_context: Option<&'a HeaderValue>,
    ce_traceparent: Option<&'a HeaderValue>,
    user_agent: Option<&'a HeaderValue>,
    referrer: Option<&'a HeaderValue>,
    forwarded_for: Option<&'a HeaderValue>,
}

impl<'a> ContextHeaders<'a> {
    /// The first value of each, as `HeaderMap::get` would give it.
    fn read(headers: &'a HeaderMap) -> Self {
        let mut found = ContextHeaders::default();
        for (name, value) in headers {
            let slot = match name.as_str() {
                "function-execution-id" => &mut found.execution_id,
                "traceparent" => &mut found.traceparent,
                "x-cloud-trace-context" => &mut found.cloud_trace_context,
                "ce-traceparent" => &mut found.ce_traceparent,
                "user-agent" => &mut found.user_agent,
                "referer" => &mut found.referrer,
                "x-forwarded-for" => &mut found.forwarded_for,
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        found
    }

    /// The execution id and trace context they carry.
    fn execution_and_trace(&self) -> (Option<String>, Option<TraceContext>) {
        let text = |value: Option<&'a HeaderValue>| value.and_then(|v| v.to_str().ok());
        let execution_id = text(self.execution_id)
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .map(str::to_owned);
        let trace = text(self.traceparent)
            .and_then(parse_traceparent)
            .or_else(|| text(self.cloud_trace_context).and_then(parse_cloud_trace_context))
            // A binary-mode CloudEvent's `traceparent` extension.
            .or_else(|| text(self.ce_traceparent).and_then(parse_traceparent));
        (execution_id, trace)
    }
}

/// Spawns a task that stays part of the calling invocation: inside it, [`Context::current`]
/// is the invocation's context and the current tracing span is the invocation's (so its logs
/// carry the same execution id and trace). Outside an invocation it is `tokio::spawn`.
///
/// ```
/// use functions_framework::{Context, Request};
///
/// async fn hello(_req: Request) -> String {
///     let task = functions_framework::spawn(async {
///         Context::current().map(|ctx| ctx.execution_id().to_owned())
///     });
///     task.await.ok().flatten().unwrap_or_default()
/// }
/// # let _ = hello;
/// ```
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let span = tracing::Span::current();
    match Context::current() {
        Some(context) => tokio::spawn(context.scope(future).instrument(span)),
        None => tokio::spawn(future.instrument(span)),
    }
}

/// A 12-character id, unique within the process and unlikely to repeat across instances.
fn generate_execution_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        nanos ^ (u64::from(std::process::id()) << 32)
    });
    // splitmix64 of seed + counter: cheap, and distinct for every call in this process.
    let mut z = seed.wrapping_add(
        COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut id = String::with_capacity(12);
    for _ in 0..12 {
        id.push(char::from(ALPHABET[(z % 62) as usize]));
        z /= 62;
        if z == 0 {
            z = seed.rotate_left(17) | 1;
        }
    }
    id
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`
fn parse_traceparent(value: &str) -> Option<TraceContext> {
    let mut parts = value.trim().split('-');
    let (version, trace_id, span_id, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if !is_hex(version, 2) || !is_hex(trace_id, 32) || !is_hex(span_id, 16) || !is_hex(flags, 2) {
        return None;
    }
    if trace_id.bytes().all(|b| b == b'0') || span_id.bytes().all(|b| b == b'0') {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some(TraceContext {
        trace_id: trace_id.to_ascii_lowercase(),
        span_id: Some(span_id.to_ascii_lowercase()),
        sampled: flags & 1 == 1,
        traceparent: Some(value.trim().to_owned()),
    })
}

/// `TRACE_ID[/SPAN_ID][;o=OPTIONS]`
fn parse_cloud_trace_context(value: &str) -> Option<TraceContext> {
    let (ids, options) = match value.split_once(';') {
        Some((ids, options)) => (ids, Some(options)),
        None => (value, None),
    };
    let (trace_id, span_id) = match ids.split_once('/') {
        Some((trace, span)) => (trace, Some(span)),
        None => (ids, None),
    };
    if !is_hex(trace_id, 32) {
        return None;
    }
    let span_id = span_id
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_owned);
    let sampled = options.is_some_and(|o| o.trim() == "o=1");
    Some(TraceContext {
        trace_id: trace_id.to_ascii_lowercase(),
        span_id,
        sampled,
        traceparent: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn execution_id_from_header() {
        let ctx = Context::from_headers(&headers(&[("function-execution-id", "abc123")]), None);
        assert_eq!(ctx.execution_id(), "abc123");
    }

    #[test]
    fn execution_ids_are_generated_and_distinct() {
        let ids: std::collections::HashSet<String> = (0..10_000)
            .map(|_| {
                Context::from_headers(&HeaderMap::new(), None)
                    .execution_id()
                    .to_owned()
            })
            .collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|id| id.len() == 12));
    }

    #[test]
    fn traceparent_wins_over_cloud_trace_context() {
        let ctx = Context::from_headers(
            &headers(&[
                (
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                ),
                (
                    "x-cloud-trace-context",
                    "11111111111111111111111111111111/1;o=1",
                ),
            ]),
            None,
        );
        let trace = ctx.trace().cloned();
        assert_eq!(
            trace,
            Some(TraceContext {
                trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                span_id: Some("00f067aa0ba902b7".into()),
                sampled: true,
                traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            })
        );
    }

    #[test]
    fn cloud_trace_context_parsed() {
        let trace = parse_cloud_trace_context("105445aa7843bc8bf206b12000100000/1;o=1");
        assert_eq!(
            trace.map(|t| (t.trace_id, t.span_id, t.sampled)),
            Some((
                "105445aa7843bc8bf206b12000100000".into(),
                Some("1".into()),
                true
            ))
        );
        assert!(parse_cloud_trace_context("nothex/1").is_none());
    }

    #[test]
    fn malformed_traceparent_ignored() {
        for bad in [
            "",
            "00-xyz-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn deadline_from_timeout() {
        let before = Instant::now();
        let ctx = Context::from_headers(&HeaderMap::new(), Some(Duration::from_secs(5)));
        let deadline = ctx.deadline().map(|d| d.duration_since(before));
        assert!(deadline.is_some_and(|d| d >= Duration::from_secs(5)));
    }

    #[tokio::test]
    async fn current_inside_scope_only() {
        assert!(Context::current().is_none());
        let id = Context::new(Some("x".into()), None, None)
            .scope(async { Context::current().map(|c| c.execution_id().to_owned()) })
            .await;
        assert_eq!(id.as_deref(), Some("x"));
    }
}
