//! The functions this project's end-to-end tests and benchmarks run, chosen by
//! `FUNCTION_TARGET`. When `CONFORMANCE_SLEEP_MS` is set, every function first sleeps that
//! long (the concurrency check of the conformance suite).

use std::io::Write;
use std::time::Duration;

use std::convert::Infallible;

use axum::extract::FromRequest as _;
use axum::extract::ws::{Message, WebSocketUpgrade};
use functions_framework::http::{self, HeaderValue, StatusCode, header};
use functions_framework::{
    AttributesReader, Body, Bytes, Context, Error, Event, EventContext, Functions, HttpError,
    IntoResponse, Request, RequestExt, Response,
};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde::{Deserialize, Serialize};

/// Where the conformance checks read what a function received.
const OUTPUT_FILE: &str = "function_output.json";

async fn conformance_sleep() {
    // Read once: the benchmark runs these functions, and the environment does not change.
    static MS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let ms = *MS.get_or_init(|| {
        std::env::var("CONFORMANCE_SLEEP_MS")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    });
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// Answers `OK`: the benchmark's HTTP function.
async fn hello(_req: Request) -> &'static str {
    conformance_sleep().await;
    "OK"
}

fn query_number(req: &Request, name: &str) -> Option<u64> {
    req.query_param(name)?.parse().ok()
}

/// Records the raw body, answers `OK`.
async fn http(req: Request) -> Result<&'static str, Error> {
    conformance_sleep().await;
    std::fs::write(OUTPUT_FILE, req.body())?;
    Ok("OK")
}

/// Answers with the request's body and content type.
async fn echo(req: Request) -> Response {
    conformance_sleep().await;
    let content_type = req.headers().get(header::CONTENT_TYPE).cloned();
    let mut response = req.into_body().into_response();
    match content_type {
        Some(value) => response.headers_mut().insert(header::CONTENT_TYPE, value),
        None => response.headers_mut().remove(header::CONTENT_TYPE),
    };
    response
}

async fn panic(_req: Request) -> &'static str {
    conformance_sleep().await;
    panic!("test-functions: deliberate panic")
}

async fn error(_req: Request) -> Result<&'static str, Error> {
    conformance_sleep().await;
    Err("test-functions: deliberate error".into())
}

/// Sleeps `?ms=N` milliseconds, then answers 200. It logs `sleeping N ms` first, so that a
/// test knows the request is in the function.
async fn sleep(req: Request) -> (StatusCode, String) {
    conformance_sleep().await;
    let ms = query_number(&req, "ms").unwrap_or(0);
    tracing::info!(ms, "sleeping {ms} ms");
    tokio::time::sleep(Duration::from_millis(ms)).await;
    let client_gone = Context::current().is_some_and(|ctx| ctx.is_client_gone());
    tracing::info!(ms, client_gone, "slept {ms} ms");
    (StatusCode::OK, format!("slept {ms}ms"))
}

/// Decodes a Google CloudEvent's data into its type, chosen by the `type` attribute (JSON or
/// protobuf, binary or structured mode, through `CloudEvent<T>`), and answers 200 with the
/// data re-encoded as proto3 JSON. A type not in the catalog gets 400 naming it.
async fn google_event_echo(req: Request) -> Result<Response, Error> {
    conformance_sleep().await;
    let (parts, body) = req.into_parts();
    let event =
        functions_framework::cloudevents::binding::http::to_event(&parts.headers, body.to_vec())
            .map_err(|e| {
                HttpError::new(StatusCode::BAD_REQUEST, format!("not a CloudEvent: {e}"))
            })?;
    let ty = event.ty().to_owned();
    match functions_framework_events::visit_data_type(&ty, EchoData(event)) {
        Some(answer) => answer,
        None => Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            format!("unknown CloudEvent type {ty:?}: it is not in the Google event catalog"),
        )
        .into()),
    }
}

struct EchoData(Event);

impl functions_framework_events::DataTypeVisitor for EchoData {
    type Output = Result<Response, Error>;

    fn visit<T: functions_framework_events::EventData>(self) -> Self::Output {
        use functions_framework::FromCloudEvent as _;
        let event = functions_framework::CloudEvent::<T>::from_cloud_event(self.0)
            .map_err(|e| HttpError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
        Ok(functions_framework::Json(event.data).into_response())
    }
}

/// Reads the body as it arrives (past the body limit): logs `first chunk` when the first
/// bytes are in, and answers `N bytes`.
async fn upload(request: http::Request<Body>) -> Result<String, Error> {
    conformance_sleep().await;
    let mut body = request.into_body();
    let mut total = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(chunk) = frame?.into_data() {
            if total == 0 {
                tracing::info!(bytes = chunk.len(), "first chunk");
            }
            total += chunk.len();
        }
    }
    Ok(format!("{total} bytes"))
}

/// Writes `?lines=N` numbered lines to stdout, then answers 200.
async fn log(req: Request) -> Result<Response, Error> {
    conformance_sleep().await;
    let lines = query_number(&req, "lines").unwrap_or(1);
    let mut out = std::io::stdout().lock();
    for i in 0..lines {
        writeln!(
            out,
            "log line {i} of {lines}: the quick brown fox jumps over the lazy dog"
        )?;
    }
    out.flush()?;
    let mut response = format!("wrote {lines} lines").into_response();
    response
        .headers_mut()
        .insert("x-lines", HeaderValue::from(lines));
    Ok(response)
}

/// Answers the execution id that code sees inside a task spawned by a task the function
/// spawned, after `?ms=N` milliseconds (so that concurrent invocations overlap).
async fn spawned_context(req: Request) -> Result<String, Error> {
    conformance_sleep().await;
    let ms = query_number(&req, "ms").unwrap_or(0);
    let outer = functions_framework::spawn(async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        let inner = functions_framework::spawn(async {
            tracing::info!("inside a spawned task");
            Context::current().map(|ctx| ctx.execution_id().to_owned())
        });
        inner.await.ok().flatten()
    });
    Ok(outer.await?.unwrap_or_else(|| "no context".to_owned()))
}

/// Answers 422 with a message, through the error-with-status API.
async fn reject(_req: Request) -> Result<&'static str, Error> {
    conformance_sleep().await;
    Err(HttpError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "test-functions: this request is refused on purpose",
    )
    .into())
}

/// Streams `?n=N` server-sent events `?ms=M` milliseconds apart (`data: event K`), each
/// sent as it is produced.
async fn stream(req: Request) -> Response {
    conformance_sleep().await;
    let n = query_number(&req, "n").unwrap_or(3);
    let ms = query_number(&req, "ms").unwrap_or(100);
    let events = futures_util::stream::unfold(0, move |k| async move {
        if k >= n {
            return None;
        }
        if k > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let event = Bytes::from(format!("data: event {k}\n\n"));
        Some((Ok::<_, Infallible>(Frame::data(event)), k + 1))
    });
    let mut response = http::Response::new(Body::new(StreamBody::new(events)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Echoes every WebSocket message, on any path: an axum router served through `.service`.
fn websocket() -> axum::Router {
    async fn upgrade(request: axum::extract::Request) -> axum::response::Response {
        conformance_sleep().await;
        let socket = match WebSocketUpgrade::from_request(request, &()).await {
            Ok(socket) => socket,
            Err(rejection) => return axum::response::IntoResponse::into_response(rejection),
        };
        socket.on_upgrade(|mut socket| async move {
            while let Some(Ok(message)) = socket.recv().await {
                let echo = match message {
                    Message::Text(_) | Message::Binary(_) => message,
                    Message::Close(_) => break,
                    Message::Ping(_) | Message::Pong(_) => continue,
                };
                if socket.send(echo).await.is_err() {
                    break;
                }
            }
        })
    }
    axum::Router::new().fallback(axum::routing::any(upgrade))
}

/// Records the event as structured-mode JSON.
async fn cloudevent(event: Event) -> Result<(), Error> {
    conformance_sleep().await;
    std::fs::write(OUTPUT_FILE, serde_json::to_vec(&event)?)?;
    Ok(())
}

/// Records `{"data": ..., "context": {...}}`.
async fn legacyevent(data: serde_json::Value, context: EventContext) -> Result<(), Error> {
    conformance_sleep().await;
    let record = serde_json::json!({ "data": data, "context": context });
    std::fs::write(OUTPUT_FILE, serde_json::to_vec(&record)?)?;
    Ok(())
}

/// The benchmark's event function: the event and its JSON data are decoded, nothing else.
async fn cloudevent_noop(event: Event) -> Result<(), Error> {
    conformance_sleep().await;
    if event.id().is_empty() {
        return Err("event without id".into());
    }
    Ok(())
}

/// The benchmark's typed event function for large events: data that is a flat JSON object
/// of strings, decoded straight from the request's bytes.
async fn flat_noop(
    event: functions_framework::CloudEvent<std::collections::HashMap<String, String>>,
) -> Result<(), Error> {
    conformance_sleep().await;
    if event.data.is_empty() {
        return Err("event without fields".into());
    }
    Ok(())
}

/// Records `{"id": ..., "document": ...}` of a Firestore event decoded into its generated type
/// (JSON or protobuf): the bad-input suite checks that malformed events never reach it.
async fn firestore_record(
    event: functions_framework::CloudEvent<functions_framework::events::DocumentEventData>,
) -> Result<(), Error> {
    conformance_sleep().await;
    let document = event.data.value.as_ref().map(|d| d.name.clone());
    let record = serde_json::json!({ "id": event.id(), "document": document });
    std::fs::write(OUTPUT_FILE, serde_json::to_vec(&record)?)?;
    Ok(())
}

/// The benchmark's protobuf event function: a Firestore event as Firestore triggers send it
/// (`application/protobuf`), decoded into the generated type.
async fn firestore_noop(
    event: functions_framework::CloudEvent<functions_framework::events::DocumentEventData>,
) -> Result<(), Error> {
    conformance_sleep().await;
    if event.data.value.is_none() {
        return Err("event without a document".into());
    }
    Ok(())
}

/// The benchmark's typed event function: a Pub/Sub event whose data is decoded straight
/// into the generated `MessagePublishedData`, nothing else.
async fn pubsub_noop(
    event: functions_framework::CloudEvent<functions_framework::events::MessagePublishedData>,
) -> Result<(), Error> {
    conformance_sleep().await;
    if event.data.message().message_id.is_empty() {
        return Err("message without id".into());
    }
    Ok(())
}

#[derive(Debug, Deserialize, Serialize)]
struct ConformanceRequest {
    message: String,
}

#[derive(Debug, Serialize)]
struct ConformanceResponse {
    payload: ConformanceRequest,
}

/// The typed conformance check: `{"message": m}` answers `{"payload": {"message": m}}`. The
/// input is recorded too, so that a test can tell whether the function ran.
async fn typed(request: ConformanceRequest) -> Result<ConformanceResponse, Error> {
    conformance_sleep().await;
    std::fs::write(OUTPUT_FILE, serde_json::to_vec(&request)?)?;
    Ok(ConformanceResponse { payload: request })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut functions = Functions::new();
    // Limits the reliability tests shorten, so that they reach them quickly.
    let millis = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_millis)
    };
    if let Some(timeout) = millis("TEST_SHUTDOWN_TIMEOUT_MS") {
        functions = functions.shutdown_timeout(timeout);
    }
    if let Some(timeout) = millis("TEST_HEADER_TIMEOUT_MS") {
        functions = functions.header_read_timeout(timeout);
    }
    if let Some(timeout) = millis("TEST_BODY_IDLE_TIMEOUT_MS") {
        functions = functions.body_idle_timeout(timeout);
    }
    if let Some(limit) = std::env::var("TEST_BODY_LIMIT")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        functions = functions.body_limit(limit);
    }
    if let Some(hook) = millis("TEST_SHUTDOWN_HOOK_MS") {
        functions = functions.on_shutdown(move || async move {
            tokio::time::sleep(hook).await;
            tracing::info!("shutdown hook ran");
        });
    }
    functions
        .http("http", http)
        .http("spawned_context", spawned_context)
        .http("reject", reject)
        .http("stream", stream)
        .service("websocket", websocket())
        .http("hello", hello)
        .http("echo", echo)
        .http("panic", panic)
        .http("error", error)
        .http("sleep", sleep)
        .http_streaming("upload", upload)
        .http("google_event_echo", google_event_echo)
        .http("log", log)
        .cloud_event("cloudevent", cloudevent)
        .cloud_event("cloudevent_noop", cloudevent_noop)
        .cloud_event("pubsub_noop", pubsub_noop)
        .cloud_event("flat_noop", flat_noop)
        .cloud_event("firestore_noop", firestore_noop)
        .cloud_event("firestore_record", firestore_record)
        .event("legacyevent", legacyevent)
        .typed("typed", typed)
        .serve()
        .await
}
