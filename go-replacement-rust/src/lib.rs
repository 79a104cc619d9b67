//! The Functions Framework for Rust: write a function, and serve it the way Google Cloud
//! Functions, Cloud Run or any container platform expects.
//!
//! A function is a plain `async fn`. Register it under a name, then call
//! [`serve`](Functions::serve): the framework picks the function named by `FUNCTION_TARGET`
//! (or `--target`), listens on `PORT` (or `--port`, default 8080), and serves every path
//! with it except `/robots.txt` and `/favicon.ico`.
//!
//! ```no_run
//! use functions_framework::{Functions, Request, Error};
//!
//! async fn hello(req: Request) -> Result<String, Error> {
//!     let name = std::str::from_utf8(req.body())?;
//!     Ok(format!("Hello, {}!", if name.is_empty() { "World" } else { name }))
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Error> {
//!     Functions::new().http("hello", hello).serve().await
//! }
//! ```
//!
//! # What the framework does for every request
//!
//! - The body is read first (up to 32 MiB by default: 413 past it), so a function gets
//!   [`Bytes`] it can parse directly; functions registered with
//!   [`http_streaming`](Functions::http_streaming) or
//!   [`service_streaming`](Functions::service_streaming) read it themselves as it arrives.
//! - `Err` from the function answers 500 with `X-Google-Status: error`; a panic answers 500
//!   with `X-Google-Status: crash`. Either way the details go to the log, never to the
//!   client, and the server keeps serving.
//! - With `CLOUD_RUN_TIMEOUT_SECONDS` set, a function still running past it is cancelled
//!   (its future dropped) and the client gets 504.
//! - A client that goes away does not cancel the function: it runs to completion or to
//!   its deadline, and [`Context::is_client_gone`] tells it.
//! - [`Context`] gives the execution id, trace context and deadline of the invocation.
//! - The framework adds no `ETag`; one the function sets reaches the client.
//!
//! On SIGTERM or SIGINT the server stops accepting, lets in-flight requests finish (10 s
//! at most by default) and `serve` returns `Ok(())`.
//!
//! # Configuration
//!
//! | setting | code | flag | environment | default |
//! | --- | --- | --- | --- | --- |
//! | port | [`Functions::port`] | `--port` | `PORT` | 8080 |
//! | function | [`Functions::target`] | `--target` | `FUNCTION_TARGET` | the only one registered, else `function` |
//! | signature type | [`Functions::signature_type`] | `--signature-type` | `FUNCTION_SIGNATURE_TYPE` | the function's own |
//! | deadline | | | `CLOUD_RUN_TIMEOUT_SECONDS` | none |
//!
//! What the code says wins over flags, and flags over the environment.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod body;
mod config;
mod context;
pub mod convert;
mod encoding;
mod error;
pub mod events;
mod incoming;
mod listen;
pub mod log;
mod memory;
#[cfg(feature = "opentelemetry")]
mod otel;
mod panic;
mod request;
mod response;
mod server;
mod signature;
pub mod testing;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz;

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

pub use body::{Body, Response};
pub use bytes::Bytes;
pub use response::{IntoResponse, Json};
/// Attributes that mark functions for the converter (`ff-rust convert`), which generates
/// the `main` that registers them: `#[functions_framework::register::http]`,
/// `cloud_event`, `event`, `typed`, each with an optional `name = "..."`.
///
/// ```
/// use functions_framework::{Error, Request};
///
/// #[functions_framework::register::http(name = "hello")]
/// pub async fn hello(_req: Request) -> Result<String, Error> {
///     Ok("Hello".into())
/// }
/// # let _ = hello;
/// ```
pub mod register {
    pub use functions_framework_macros::{cloud_event, event, http, typed};
}
pub use cloudevents;
pub use cloudevents::{AttributesReader, Event};
pub use config::{SignatureType, UnknownSignatureType};
pub use context::{Context, TraceContext, spawn};
pub use error::HttpError;
pub use http;
pub use request::RequestExt;
pub use signature::cloudevent::{CloudEvent, EventDataError, FromCloudEvent};
pub use signature::layer::FunctionService;
pub use signature::legacy::{EventContext, Resource};

use config::{ConfigError, Overrides};
use server::{Limits, Route, Routes, Server};
use signature::Handler;
use signature::layer::Wrap;

/// The request an HTTP function receives: its body already read.
pub type Request = http::Request<Bytes>;

/// The error type of this crate's fallible calls, and a convenient one for functions: any
/// error converts into it with `?`.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The default request body limit: what Cloud Functions (2nd gen) and Cloud Run accept.
pub const DEFAULT_BODY_LIMIT: usize = 32 * 1024 * 1024;

/// The functions of an application, and how to serve them.
///
/// ```no_run
/// use std::sync::Arc;
/// use functions_framework::{Functions, Request};
///
/// #[tokio::main]
/// async fn main() -> Result<(), functions_framework::Error> {
///     // State created once and shared by every invocation.
///     let greeting = Arc::new(String::from("Hello"));
///     Functions::new()
///         .http("hello", move |_req: Request| {
///             let greeting = Arc::clone(&greeting);
///             async move { format!("{greeting}, World!") }
///         })
///         .serve()
///         .await
/// }
/// ```
pub struct Functions {
    registered: Vec<Registered>,
    overrides: Overrides,
    limits: Limits,
    listeners: Vec<std::net::TcpListener>,
    on_shutdown: Option<server::ShutdownHook>,
}

struct Registered {
    name: String,
    signature: SignatureType,
    function: Handler,
    /// The layers given after it was registered, innermost first.
    layers: Vec<Wrap>,
}

impl fmt::Debug for Functions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Functions")
            .field("registered", &self.catalogue())
            .field("overrides", &self.overrides)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Default for Functions {
    fn default() -> Self {
        Functions::new()
    }
}

impl Functions {
    /// An application with no functions yet.
    ///
    /// ```
    /// let app = functions_framework::Functions::new();
    /// # let _ = app;
    /// ```
    pub fn new() -> Self {
        listen::ensure_early_init_linked();
        Functions {
            registered: Vec::new(),
            overrides: Overrides::default(),
            limits: Limits {
                body: DEFAULT_BODY_LIMIT,
                body_idle_timeout: Duration::from_secs(30),
                header_read_timeout: Duration::from_secs(10),
                shutdown_timeout: Duration::from_secs(10),
            },
            listeners: Vec::new(),
            on_shutdown: None,
        }
    }

    fn register(mut self, name: &str, signature: SignatureType, function: Handler) -> Self {
        self.registered.push(Registered {
            name: name.to_owned(),
            signature,
            function,
            layers: Vec::new(),
        });
        self
    }

    /// Registers an HTTP function: an `async fn(Request)` returning anything that
    /// [converts into a response](IntoResponse), `Result<_, E>` for any error `E` included.
    ///
    /// ```
    /// use functions_framework::{Functions, Request, Error};
    ///
    /// async fn hello(_req: Request) -> Result<&'static str, Error> {
    ///     Ok("Hello, World!")
    /// }
    ///
    /// let app = Functions::new().http("hello", hello);
    /// # let _ = app;
    /// ```
    pub fn http<F, Fut, R>(self, name: &str, function: F) -> Self
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoResponse,
    {
        self.register(
            name,
            SignatureType::Http,
            Handler::Buffered(Arc::new(signature::http::HttpFunction(function))),
        )
    }

    /// Registers an HTTP function that reads the request body itself, as the client sends
    /// it: for uploads larger than the body limit (which does not apply), or to process data
    /// before all of it has arrived. The body ends with an error when the client sends
    /// nothing for the body idle timeout. `Content-Encoding` is left to the function.
    ///
    /// On Cloud Run, HTTP/1 requests are limited to 32 MiB by the platform; deploy with
    /// `--use-http2` for larger ones.
    ///
    /// ```
    /// use functions_framework::{Body, Error, Functions};
    /// use functions_framework::http::Request;
    /// use http_body_util::BodyExt;
    ///
    /// /// Counts the bytes of an upload of any size without holding it in memory.
    /// async fn count(request: Request<Body>) -> Result<String, Error> {
    ///     let mut body = request.into_body();
    ///     let mut total = 0;
    ///     while let Some(frame) = body.frame().await {
    ///         if let Ok(chunk) = frame?.into_data() {
    ///             total += chunk.len();
    ///         }
    ///     }
    ///     Ok(format!("{total} bytes"))
    /// }
    ///
    /// let app = Functions::new().http_streaming("count", count);
    /// # let _ = app;
    /// ```
    pub fn http_streaming<F, Fut, R>(self, name: &str, function: F) -> Self
    where
        F: Fn(http::Request<Body>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoResponse,
    {
        self.register(
            name,
            SignatureType::Http,
            Handler::Streaming(Arc::new(signature::http::StreamingHttpFunction(function))),
        )
    }

    /// Registers any `tower::Service` as an HTTP function, an axum `Router` for instance. It
    /// receives the request with its body already read (as a [`Body`]), its extensions kept:
    /// an axum WebSocket route can upgrade the connection. The service need not be `Sync`
    /// (tower's `BoxCloneService` works): each request gets a clone.
    ///
    /// ```
    /// use axum::{Router, routing::get};
    /// use functions_framework::Functions;
    ///
    /// let router = Router::new()
    ///     .route("/", get(|| async { "index" }))
    ///     .route("/users/{id}", get(|| async { "a user" }));
    /// let app = Functions::new().service("api", router);
    /// # let _ = app;
    /// ```
    pub fn service<S, B>(self, name: &str, service: S) -> Self
    where
        S: tower_service::Service<http::Request<Body>, Response = http::Response<B>>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Error>,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Error>,
    {
        self.register(
            name,
            SignatureType::Http,
            Handler::Buffered(Arc::new(signature::http::ServiceFunction(
                std::sync::Mutex::new(service),
            ))),
        )
    }

    /// Registers any `tower::Service` as an HTTP function that reads the request body as
    /// the client sends it, as [`http_streaming`](Functions::http_streaming) does: for a
    /// gRPC service with client-streaming calls, or uploads past the body limit.
    ///
    /// ```
    /// use axum::{Router, body::Bytes, routing::post};
    /// use functions_framework::Functions;
    ///
    /// let router = Router::new().route("/upload", post(|body: Bytes| async move { body.len().to_string() }));
    /// let app = Functions::new().service_streaming("api", router);
    /// # let _ = app;
    /// ```
    pub fn service_streaming<S, B>(self, name: &str, service: S) -> Self
    where
        S: tower_service::Service<http::Request<Body>, Response = http::Response<B>>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Error>,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Error>,
    {
        self.register(
            name,
            SignatureType::Http,
            Handler::Streaming(Arc::new(signature::http::ServiceFunction(
                std::sync::Mutex::new(service),
            ))),
        )
    }

    /// Wraps every function registered so far, whatever its signature, in a tower `Layer`
    /// (tower-http's, or one of your own): it sees each request before the function's
    /// adapter and each response after it, framework errors included. Functions registered
    /// after the call are not wrapped; a later `layer` wraps around an earlier one.
    ///
    /// The layer wraps a [`FunctionService`]. Panics and the deadline stay the framework's:
    /// they are handled outside every layer.
    ///
    /// ```
    /// use std::time::Duration;
    /// use functions_framework::{AttributesReader, Error, Event, Functions};
    ///
    /// async fn on_event(event: Event) -> Result<(), Error> {
    ///     println!("{}", event.id());
    ///     Ok(())
    /// }
    ///
    /// // At most 4 events at a time, whatever the platform's concurrency.
    /// let app = Functions::new()
    ///     .cloud_event("on_event", on_event)
    ///     .layer(tower::limit::ConcurrencyLimitLayer::new(4));
    /// # let _ = app;
    /// ```
    pub fn layer<L, B>(mut self, layer: L) -> Self
    where
        L: tower_layer::Layer<FunctionService> + Send + Sync + 'static,
        L::Service: tower_service::Service<http::Request<Body>, Response = http::Response<B>>
            + Clone
            + Send
            + 'static,
        <L::Service as tower_service::Service<http::Request<Body>>>::Future: Send + 'static,
        <L::Service as tower_service::Service<http::Request<Body>>>::Error: Into<Error>,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Error>,
    {
        let wrap = signature::layer::wrap(layer);
        for registered in &mut self.registered {
            registered.layers.push(Arc::clone(&wrap));
        }
        self
    }

    /// Registers a CloudEvent function: an `async fn` taking the SDK's [`Event`] or a
    /// [`CloudEvent<T>`] whose data is decoded into `T`, and returning `Result<(), E>`.
    ///
    /// It accepts POST requests carrying a CloudEvent in binary or structured mode, and
    /// legacy event bodies (converted, see [`convert`]). Success answers 204; `Err` answers
    /// 500 so that Pub/Sub and Eventarc retry. A malformed event gets 400 and the function
    /// is not invoked.
    ///
    /// ```
    /// use functions_framework::{AttributesReader, Error, Event, Functions};
    ///
    /// async fn on_event(event: Event) -> Result<(), Error> {
    ///     println!("{} from {}: {:?}", event.ty(), event.source(), event.data());
    ///     Ok(())
    /// }
    ///
    /// let app = Functions::new().cloud_event("on_event", on_event);
    /// # let _ = app;
    /// ```
    pub fn cloud_event<F, A, Fut, E>(self, name: &str, function: F) -> Self
    where
        F: Fn(A) -> Fut + Send + Sync + 'static,
        A: FromCloudEvent,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<Error>,
    {
        self.register(
            name,
            SignatureType::CloudEvent,
            Handler::Buffered(Arc::new(signature::cloudevent::CloudEventFunction {
                function,
                _event: PhantomData,
            })),
        )
    }

    /// Registers a legacy event (background) function: `async fn(data, EventContext)`
    /// returning `Result<(), E>`, `data` decoded with serde (`serde_json::Value` takes
    /// anything).
    ///
    /// It accepts legacy event bodies in both shapes and CloudEvents (converted, see
    /// [`convert`]). Responses are as for [`cloud_event`](Functions::cloud_event).
    ///
    /// ```
    /// use functions_framework::{Error, EventContext, Functions};
    /// use serde::Deserialize;
    ///
    /// #[derive(Deserialize)]
    /// struct PubsubMessage {
    ///     data: Option<String>,
    /// }
    ///
    /// async fn on_message(message: PubsubMessage, context: EventContext) -> Result<(), Error> {
    ///     println!("{}: {:?}", context.event_id, message.data);
    ///     Ok(())
    /// }
    ///
    /// let app = Functions::new().event("on_message", on_message);
    /// # let _ = app;
    /// ```
    pub fn event<F, T, Fut, E>(self, name: &str, function: F) -> Self
    where
        F: Fn(T, EventContext) -> Fut + Send + Sync + 'static,
        T: serde::de::DeserializeOwned + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<Error>,
    {
        self.register(
            name,
            SignatureType::Event,
            Handler::Buffered(Arc::new(signature::legacy::LegacyEventFunction {
                function,
                _data: PhantomData,
            })),
        )
    }

    /// Registers a typed function: `async fn(In) -> Result<Out, E>`. The request body is
    /// decoded as JSON into `In` (400 naming the failing field when it does not fit) and
    /// `Out` is answered as JSON.
    ///
    /// ```
    /// use functions_framework::{Error, Functions};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Deserialize, Serialize)]
    /// struct Greeting {
    ///     message: String,
    /// }
    ///
    /// #[derive(Serialize)]
    /// struct Reply {
    ///     payload: Greeting,
    /// }
    ///
    /// async fn echo(greeting: Greeting) -> Result<Reply, Error> {
    ///     Ok(Reply { payload: greeting })
    /// }
    ///
    /// let app = Functions::new().typed("echo", echo);
    /// # let _ = app;
    /// ```
    pub fn typed<F, In, Out, Fut, E>(self, name: &str, function: F) -> Self
    where
        F: Fn(In) -> Fut + Send + Sync + 'static,
        In: serde::de::DeserializeOwned + Send + 'static,
        Out: serde::Serialize,
        Fut: Future<Output = Result<Out, E>> + Send + 'static,
        E: Into<Error>,
    {
        self.register(
            name,
            SignatureType::Typed,
            Handler::Buffered(Arc::new(signature::typed::TypedFunction {
                function,
                _input: PhantomData,
            })),
        )
    }

    /// Fixes the port, whatever `--port` and `PORT` say.
    ///
    /// ```
    /// let app = functions_framework::Functions::new().port(9000);
    /// # let _ = app;
    /// ```
    pub fn port(mut self, port: u16) -> Self {
        self.overrides.port = Some(port);
        self
    }

    /// Fixes the function to serve, whatever `--target` and `FUNCTION_TARGET` say.
    ///
    /// ```
    /// use functions_framework::{Functions, Request};
    ///
    /// let app = Functions::new()
    ///     .http("a", |_req: Request| async { "a" })
    ///     .http("b", |_req: Request| async { "b" })
    ///     .target("b");
    /// # let _ = app;
    /// ```
    pub fn target(mut self, name: &str) -> Self {
        self.overrides.target = Some(name.to_owned());
        self
    }

    /// Fixes the signature type the function must have, whatever `--signature-type` and
    /// `FUNCTION_SIGNATURE_TYPE` say.
    ///
    /// ```
    /// use functions_framework::{Functions, SignatureType};
    ///
    /// let app = Functions::new().signature_type(SignatureType::CloudEvent);
    /// # let _ = app;
    /// ```
    pub fn signature_type(mut self, signature: SignatureType) -> Self {
        self.overrides.signature_type = Some(signature);
        self
    }

    /// Sets the request body limit in bytes (default [`DEFAULT_BODY_LIMIT`]); larger bodies
    /// get 413 and the function is not invoked.
    ///
    /// ```
    /// // Uploads of up to 100 MiB.
    /// let app = functions_framework::Functions::new().body_limit(100 * 1024 * 1024);
    /// # let _ = app;
    /// ```
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.limits.body = bytes;
        self
    }

    /// How long a request body may stall (no bytes arriving) before the request is refused
    /// with 408 (default 30 s). A slow upload that keeps moving is not cut off.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let app = functions_framework::Functions::new().body_idle_timeout(Duration::from_secs(60));
    /// # let _ = app;
    /// ```
    pub fn body_idle_timeout(mut self, timeout: Duration) -> Self {
        self.limits.body_idle_timeout = timeout;
        self
    }

    /// How long a client may take to send the request headers (default 10 s).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let app = functions_framework::Functions::new().header_read_timeout(Duration::from_secs(5));
    /// # let _ = app;
    /// ```
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.limits.header_read_timeout = timeout;
        self
    }

    /// How long in-flight requests may run after SIGTERM before the process exits anyway
    /// (default 10 s, Cloud Run's grace period).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let app = functions_framework::Functions::new().shutdown_timeout(Duration::from_secs(25));
    /// # let _ = app;
    /// ```
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.limits.shutdown_timeout = timeout;
        self
    }

    /// Runs `hook` once on SIGTERM or SIGINT, after in-flight requests have drained and
    /// before `serve` returns, within what is left of the shutdown timeout: for flushing
    /// buffers, closing pools and the like.
    ///
    /// ```no_run
    /// use functions_framework::{Functions, Request};
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), functions_framework::Error> {
    ///     Functions::new()
    ///         .http("hello", |_req: Request| async { "hi" })
    ///         .on_shutdown(|| async { tracing::info!("flushing the batch") })
    ///         .serve()
    ///         .await
    /// }
    /// ```
    pub fn on_shutdown<F, Fut>(mut self, hook: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_shutdown = Some(Box::new(move || Box::pin(hook())));
        self
    }

    /// Serves on this listener instead of binding `PORT` (tests bind `127.0.0.1:0`).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), functions_framework::Error> {
    /// use functions_framework::{Functions, Request};
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// listener.set_nonblocking(true)?;
    /// println!("listening on {}", listener.local_addr()?);
    /// Functions::new()
    ///     .http("hello", |_req: Request| async { "hi" })
    ///     .listener(listener)
    ///     .serve()
    ///     .await
    /// # }
    /// ```
    pub fn listener(mut self, listener: std::net::TcpListener) -> Self {
        self.listeners.push(listener);
        self
    }

    /// Picks the function, opens the sockets and serves until SIGTERM or SIGINT.
    ///
    /// Fails before listening when the target is not registered or its signature type does
    /// not match the one requested; the error names the target and lists the registered
    /// functions. Bad flags print the usage and exit with status 2.
    pub async fn serve(self) -> Result<(), Error> {
        self.serve_with(std::env::args_os(), |name| std::env::var(name).ok())
            .await
    }

    async fn serve_with<I, T>(
        mut self,
        args: I,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(), Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        log::init().map_err(|e| StartupError(e.to_string()))?;
        let config = match config::resolve(&self.overrides, args, env) {
            Ok(config) => config,
            Err(ConfigError::Flags(error)) => error.exit(),
            Err(error @ ConfigError::Env(_)) => return Err(StartupError(error.to_string()).into()),
        };
        if config.list_functions {
            println!("{}", serde_json::Value::Array(self.catalogue()));
            return Ok(());
        }
        let routes = self.select(config.target.as_deref(), config.signature_type)?;
        listen::raise_fd_limit();
        memory::tune();
        let sockets = if self.listeners.is_empty() {
            listen::sockets(config.host, config.port)?
        } else {
            listen::Sockets {
                listeners: std::mem::take(&mut self.listeners),
                connections: Vec::new(),
                origin: "given by the application",
            }
        };
        let signals = server::Signals::listen()?;
        let addresses: Vec<String> = sockets
            .listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .map(|a| a.to_string())
            .collect();
        let (name, signature) = match &routes {
            Routes::Target(route) => (route.name.to_string(), route.signature.to_string()),
            Routes::ByName(routes) => (
                routes
                    .iter()
                    .map(|r| format!("/{}", r.name))
                    .collect::<Vec<_>>()
                    .join(", "),
                "each its own".to_owned(),
            ),
        };
        tracing::info!(
            function = %name,
            signature = %signature,
            "serving on {} ({}{})",
            addresses.join(", "),
            sockets.origin,
            if listen::from_shim() { ", exec'd from Node.js" } else { "" },
        );
        if let Routes::Target(route) = &routes {
            log::service::set_function(&route.name);
        }
        #[cfg(feature = "opentelemetry")]
        otel::init(&name).map_err(|e| StartupError(e.to_string()))?;
        let server = Server {
            routes,
            ignored_routes: config.ignored_routes,
            timeout: config.timeout,
            limits: self.limits.clone(),
            on_shutdown: std::sync::Mutex::new(self.on_shutdown.take()),
            connections: Arc::new(server::connection_builder(&self.limits)),
            detached: tokio_util::task::TaskTracker::new(),
        };
        Arc::new(server).run(sockets, signals).await?;
        Ok(())
    }

    /// The registered functions as JSON: `[{"name": ..., "signatureType": ...}]`.
    fn catalogue(&self) -> Vec<serde_json::Value> {
        self.registered
            .iter()
            .map(|r| serde_json::json!({ "name": r.name, "signatureType": r.signature.as_str() }))
            .collect()
    }

    fn listing(&self) -> String {
        if self.registered.is_empty() {
            return "none".to_owned();
        }
        self.registered
            .iter()
            .map(|r| format!("{} ({})", r.name, r.signature))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Chooses what to serve. A named target must be registered. With no target named
    /// anywhere, a sole registered function is served at every path, so that `cargo run`
    /// just works, and several are each served at `/<name>`, as the Go framework does.
    fn select(
        &self,
        target: Option<&str>,
        requested: Option<SignatureType>,
    ) -> Result<Routes, StartupError> {
        for (i, r) in self.registered.iter().enumerate() {
            if self.registered[..i]
                .iter()
                .any(|earlier| earlier.name == r.name)
            {
                return Err(StartupError(format!(
                    "function {:?} is registered twice; registered functions: {}",
                    r.name,
                    self.listing()
                )));
            }
        }
        let route = |r: &Registered| Route {
            name: Arc::from(r.name.as_str()),
            signature: r.signature,
            function: r.layers.iter().fold(r.function.clone(), |inner, wrap| {
                wrap(FunctionService::new(
                    inner,
                    self.limits.body,
                    self.limits.body_idle_timeout,
                ))
            }),
        };
        let chosen = match target {
            Some(name) => self.registered.iter().find(|r| r.name == name),
            None if self.registered.len() == 1 => self.registered.first(),
            None if self.registered.is_empty() => None,
            None => return Ok(Routes::ByName(self.registered.iter().map(route).collect())),
        };
        let Some(chosen) = chosen else {
            let name = target.unwrap_or(config::DEFAULT_TARGET);
            return Err(StartupError(format!(
                "function target {name:?} is not registered; registered functions: {}. \
                 Set FUNCTION_TARGET or --target to one of them.",
                self.listing()
            )));
        };
        if let Some(requested) = requested {
            if !chosen.signature.serves(requested) {
                let message = format!(
                    "function target {:?} is registered as a {} function, but signature type \
                     {requested} was requested",
                    chosen.name, chosen.signature,
                );
                // Code that contradicts itself is a mistake to fix; a platform setting that
                // differs (a function deployed with another trigger kind) must not stop the
                // instance: what the code registered wins, as the contract says.
                if self.overrides.signature_type.is_some() {
                    return Err(StartupError(format!(
                        "{message} in code (Functions::signature_type); registered functions: {}",
                        self.listing()
                    )));
                }
                tracing::warn!(
                    "{message} (FUNCTION_SIGNATURE_TYPE or --signature-type): serving it as \
                     registered"
                );
            }
        }
        Ok(Routes::Target(route(chosen)))
    }
}

/// A start-up failure; its `Debug` is the plain message, so that `main` returning it prints
/// something a person can act on.
struct StartupError(String);

impl fmt::Debug for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartupError {}
