//! The server against a real HTTP client on `127.0.0.1:0`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{Context, Error, Functions, IntoResponse, Request, Response};

/// Serves `app` on a fresh loopback port with the given environment and no flags.
fn start_with_env(app: Functions, env: &[(&'static str, &'static str)]) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    let env: Vec<(&str, &str)> = env.to_vec();
    tokio::spawn(app.listener(listener).serve_with(["test"], move |name| {
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    }));
    addr
}

fn start(app: Functions) -> SocketAddr {
    start_with_env(app, &[])
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn send(addr: SocketAddr, method: Method, path: &str, body: &'static [u8]) -> Reply {
    send_with(addr, method, path, body, &[]).await
}

async fn send_with(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: &'static [u8],
    headers: &[(&'static str, &'static str)],
) -> Reply {
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from_static(body)))
        .expect("request");
    let response = client().request(request).await.expect("response");
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.expect("body").to_bytes(),
    }
}

async fn echo_method_and_path(req: Request) -> String {
    format!("{} {}", req.method(), req.uri())
}

#[tokio::test]
async fn every_path_and_method_reaches_the_function() {
    let addr = start(Functions::new().http("f", echo_method_and_path));
    for (method, path) in [
        (Method::GET, "/"),
        (Method::POST, "/a/b/c"),
        (Method::PUT, "/execute?x=1&y=2"),
        (Method::DELETE, "/robots.txt.bak"),
        (Method::PATCH, "/favicon.ico/inner"),
        (Method::OPTIONS, "/x"),
    ] {
        let reply = send(addr, method.clone(), path, b"").await;
        assert_eq!(reply.status, StatusCode::OK, "{method} {path}");
        assert_eq!(reply.text(), format!("{method} {path}"));
    }
}

#[tokio::test]
async fn robots_and_favicon_are_404_without_invoking() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let addr = start(Functions::new().http("f", move |_req: Request| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { "called" }
    }));
    for path in ["/robots.txt", "/favicon.ico"] {
        for method in [Method::GET, Method::POST] {
            let reply = send(addr, method, path, b"").await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND);
            assert!(reply.body.is_empty());
        }
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(send(addr, Method::GET, "/", b"").await.text(), "called");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_framework_adds_no_etag_and_keeps_the_functions_own() {
    let addr = start(Functions::new().http("f", |req: Request| async move {
        let mut response = http::Response::builder().header("x-kept", "yes");
        if req.uri().path() == "/tagged" {
            response = response.header("etag", "\"abc\"");
        }
        response.body(String::from("cached?")).expect("response")
    }));
    let plain = send(addr, Method::GET, "/", b"").await;
    assert_eq!(plain.status, StatusCode::OK);
    assert!(plain.headers.get("etag").is_none());
    assert_eq!(plain.headers["x-kept"], "yes");
    let tagged = send(addr, Method::GET, "/tagged", b"").await;
    assert_eq!(tagged.headers["etag"], "\"abc\"");
}

async fn panics(req: Request) -> &'static str {
    if req.uri().path() == "/later" {
        tokio::task::yield_now().await;
        panic!("secret detail after an await");
    }
    if req.uri().path() == "/now" {
        panic!("secret detail before any await");
    }
    "fine"
}

#[tokio::test]
async fn a_panic_is_a_500_crash_and_the_server_keeps_serving() {
    let addr = start(Functions::new().http("f", panics));
    for _ in 0..3 {
        for path in ["/now", "/later"] {
            let reply = send(addr, Method::GET, path, b"").await;
            assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(reply.headers["x-google-status"], "crash");
            assert!(
                !reply.text().contains("secret"),
                "panic message leaked: {}",
                reply.text()
            );
            let ok = send(addr, Method::GET, "/", b"").await;
            assert_eq!((ok.status, ok.text().as_str()), (StatusCode::OK, "fine"));
        }
    }
}

#[tokio::test]
async fn the_client_address_is_the_forwarded_one_else_the_peer() {
    let addr = start(Functions::new().http("f", |_req: Request| async {
        let ctx = Context::current().expect("context");
        format!(
            "{} {}",
            ctx.client_ip().map(|ip| ip.to_string()).unwrap_or_default(),
            ctx.peer_ip().map(|ip| ip.to_string()).unwrap_or_default()
        )
    }));
    let direct = send(addr, Method::GET, "/", b"").await;
    assert_eq!(direct.text(), "127.0.0.1 127.0.0.1");
    let forwarded = send_with(
        addr,
        Method::GET,
        "/",
        b"",
        &[("x-forwarded-for", "203.0.113.9, 10.0.0.1")],
    )
    .await;
    assert_eq!(forwarded.text(), "203.0.113.9 127.0.0.1");
}

#[tokio::test]
async fn services_that_are_not_sync_are_served() {
    use tower::ServiceExt as _;
    // A BoxCloneService is Send but not Sync.
    let service = tower::util::BoxCloneService::new(tower::service_fn(
        |_req: http::Request<crate::Body>| async {
            Ok::<_, std::convert::Infallible>("not sync".into_response())
        },
    ))
    .boxed_clone();
    let addr = start(Functions::new().service("f", service));
    let reply = send(addr, Method::GET, "/", b"").await;
    assert_eq!(reply.text(), "not sync");
}

/// A crash answer that leaks nothing of the panic.
fn assert_crash(reply: &Reply, what: &str) {
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{what}");
    assert_eq!(reply.headers["x-google-status"], "crash", "{what}");
    assert!(!reply.text().contains("secret"), "{what}: {}", reply.text());
}

#[tokio::test]
async fn a_panic_in_the_synchronous_part_of_the_call_is_a_crash_too() {
    // The closure panics before it returns a future: that part runs outside the future.
    let addr = start(Functions::new().http("f", |req: Request| {
        if req.uri().path() == "/sync" {
            panic!("secret detail while building the future");
        }
        async { "fine" }
    }));
    for _ in 0..3 {
        assert_crash(&send(addr, Method::GET, "/sync", b"").await, "sync");
        let ok = send(addr, Method::GET, "/", b"").await;
        assert_eq!((ok.status, ok.text().as_str()), (StatusCode::OK, "fine"));
    }
}

#[tokio::test]
async fn panics_in_event_typed_and_service_functions_are_crashes() {
    let event = [
        ("ce-specversion", "1.0"),
        ("ce-id", "1"),
        ("ce-source", "//pubsub.googleapis.com/projects/p/topics/t"),
        ("ce-type", "google.cloud.pubsub.topic.v1.messagePublished"),
        ("content-type", "application/json"),
    ];
    let cloud_event = start(Functions::new().cloud_event("f", |_e: crate::Event| async {
        tokio::task::yield_now().await;
        panic!("secret in a CloudEvent function");
        #[allow(unreachable_code)]
        Ok::<(), Error>(())
    }));
    let legacy = start(Functions::new().event(
        "f",
        |_d: serde_json::Value, _c: crate::EventContext| async {
            panic!("secret in a legacy event function");
            #[allow(unreachable_code)]
            Ok::<(), Error>(())
        },
    ));
    let typed = start(Functions::new().typed("f", |_in: serde_json::Value| async {
        panic!("secret in a typed function");
        #[allow(unreachable_code)]
        Ok::<u8, Error>(0)
    }));
    let service = start(Functions::new().service(
        "f",
        tower::service_fn(|_req: http::Request<crate::Body>| async {
            panic!("secret in a service");
            #[allow(unreachable_code)]
            Ok::<Response, std::convert::Infallible>(().into_response())
        }),
    ));
    for (what, addr, body) in [
        ("cloudevent", cloud_event, &br#"{"message":{}}"#[..]),
        ("event", legacy, br#"{"message":{}}"#),
    ] {
        let reply = send_with(addr, Method::POST, "/", body, &event).await;
        assert_crash(&reply, what);
    }
    assert_crash(
        &send(typed, Method::POST, "/", br#"{"a":1}"#).await,
        "typed",
    );
    assert_crash(&send(service, Method::GET, "/", b"").await, "service");
    // Each server still serves after its crash.
    for (addr, body) in [(typed, &br#"{"a":1}"#[..]), (service, b"")] {
        assert_crash(&send(addr, Method::POST, "/", body).await, "again");
    }
}

#[tokio::test]
async fn a_function_error_is_a_500_error() {
    async fn fails(_req: Request) -> Result<String, std::io::Error> {
        Err(std::io::Error::other("database password is hunter2"))
    }
    let addr = start(Functions::new().http("f", fails));
    let reply = send(addr, Method::POST, "/", b"x").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.headers["x-google-status"], "error");
    assert!(!reply.text().contains("hunter2"));
}

#[tokio::test]
async fn any_error_type_works_with_question_mark() {
    async fn parse(req: Request) -> Result<String, Error> {
        let text = std::str::from_utf8(req.body())?;
        let n: i64 = text.parse()?;
        Ok((n * 2).to_string())
    }
    let addr = start(Functions::new().http("f", parse));
    assert_eq!(send(addr, Method::POST, "/", b"21").await.text(), "42");
    let bad = send(addr, Method::POST, "/", b"twenty").await;
    assert_eq!(bad.status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn body_over_the_limit_is_413_and_the_function_is_not_invoked() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let app = Functions::new()
        .http("f", move |req: Request| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move { req.body().len().to_string() }
        })
        .body_limit(1024);
    let addr = start(app);
    static BIG: [u8; 2048] = [b'a'; 2048];
    static FITS: [u8; 1024] = [b'a'; 1024];
    let reply = send(addr, Method::POST, "/", &BIG).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(reply.text().contains("1024"));

    // Chunked, so no Content-Length announces the size.
    let chunks = futures_util::stream::iter((0..8).map(|_| {
        Ok::<_, std::convert::Infallible>(http_body::Frame::data(Bytes::from_static(&[b'b'; 300])))
    }));
    let request = http::Request::post(format!("http://{addr}/"))
        .body(StreamBody::new(chunks))
        .expect("request");
    let chunked = Client::builder(TokioExecutor::new())
        .build_http()
        .request(request)
        .await
        .expect("response");
    assert_eq!(chunked.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    assert_eq!(send(addr, Method::POST, "/", &FITS).await.text(), "1024");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn past_the_deadline_is_504_and_the_function_is_dropped() {
    struct Dropped(Arc<AtomicUsize>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&drops);
    let app = Functions::new().http("f", move |req: Request| {
        let guard = Dropped(Arc::clone(&seen));
        async move {
            if req.uri().path() == "/slow" {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            drop(guard);
            "done"
        }
    });
    let addr = start_with_env(app, &[("CLOUD_RUN_TIMEOUT_SECONDS", "1")]);
    let reply = send(addr, Method::GET, "/slow", b"").await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the function's future was not dropped"
    );
    assert_eq!(send(addr, Method::GET, "/fast", b"").await.text(), "done");
}

#[tokio::test]
async fn one_hundred_invocations_run_concurrently() {
    // Every invocation waits until all 100 are inside the function: this completes only if
    // the server runs them at the same time.
    let barrier = Arc::new(tokio::sync::Barrier::new(100));
    let app = Functions::new().http("f", move |_req: Request| {
        let barrier = Arc::clone(&barrier);
        async move {
            barrier.wait().await;
            "together"
        }
    });
    let addr = start(app);
    let requests = (0..100).map(|_| tokio::spawn(send(addr, Method::GET, "/", b"")));
    let all = tokio::time::timeout(
        Duration::from_secs(30),
        futures_util::future::join_all(requests),
    )
    .await
    .expect("100 concurrent invocations did not all run at once");
    for reply in all {
        assert_eq!(reply.expect("task").text(), "together");
    }
}

#[tokio::test]
async fn closures_share_state() {
    let hits = Arc::new(AtomicUsize::new(0));
    let app = Functions::new().http("f", move |_req: Request| {
        let hits = Arc::clone(&hits);
        async move { (hits.fetch_add(1, Ordering::SeqCst) + 1).to_string() }
    });
    let addr = start(app);
    for expected in 1..=3 {
        assert_eq!(
            send(addr, Method::GET, "/", b"").await.text(),
            expected.to_string()
        );
    }
}

#[tokio::test]
async fn an_axum_router_is_a_function() {
    use axum::routing::{get, post};
    let router = axum::Router::new()
        .route("/", get(|| async { "root" }))
        .route(
            "/users/{id}",
            get(
                |axum::extract::Path(id): axum::extract::Path<String>| async move {
                    format!("user {id}")
                },
            ),
        )
        .route("/echo", post(|body: String| async move { body }));
    let addr = start(Functions::new().service("api", router));
    assert_eq!(send(addr, Method::GET, "/", b"").await.text(), "root");
    assert_eq!(
        send(addr, Method::GET, "/users/7", b"").await.text(),
        "user 7"
    );
    assert_eq!(
        send(addr, Method::POST, "/echo", b"ping").await.text(),
        "ping"
    );
    assert_eq!(
        send(addr, Method::GET, "/missing", b"").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(addr, Method::GET, "/robots.txt", b"").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn context_carries_execution_id_and_trace() {
    async fn show(_req: Request) -> Response {
        // Also while the function runs code before its first `.await`.
        let from_extension = Context::current().map(|c| c.execution_id().to_owned());
        let current = Context::current();
        let trace = current
            .as_ref()
            .and_then(|c| c.trace())
            .map(|t| t.trace_id.clone());
        format!(
            "{}|{}|{}",
            from_extension.unwrap_or_default(),
            current
                .map(|c| c.execution_id().to_owned())
                .unwrap_or_default(),
            trace.unwrap_or_default()
        )
        .into_response()
    }
    let addr = start(Functions::new().http("f", show));
    let reply = send_with(
        addr,
        Method::GET,
        "/",
        b"",
        &[
            ("function-execution-id", "exec-42"),
            (
                "x-cloud-trace-context",
                "105445aa7843bc8bf206b12000100000/1;o=1",
            ),
        ],
    )
    .await;
    assert_eq!(
        reply.text(),
        "exec-42|exec-42|105445aa7843bc8bf206b12000100000"
    );
    let generated = send(addr, Method::GET, "/", b"").await.text();
    let id = generated.split('|').next().unwrap_or_default();
    assert_eq!(id.len(), 12, "{generated}");
}

/// Sends raw bytes and reads until the server closes or `wait` passes.
async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn malformed_http_is_400_and_the_server_keeps_serving() {
    let addr = start(Functions::new().http("f", |_req: Request| async { "ok" }));
    for garbage in [
        &b"NOT HTTP AT ALL\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header Without Colon\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
    ] {
        let answer = raw(addr, garbage).await;
        assert!(
            answer.starts_with("HTTP/1.1 4"),
            "{:?} -> {answer:?}",
            String::from_utf8_lossy(garbage)
        );
        assert_eq!(send(addr, Method::GET, "/", b"").await.text(), "ok");
    }
}

#[tokio::test]
async fn oversized_headers_are_431() {
    let addr = start(Functions::new().http("f", |_req: Request| async { "ok" }));
    let mut request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', 20 * 1024));
    request.extend_from_slice(b"\r\n\r\n");
    let answer = raw(addr, &request).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    assert_eq!(send(addr, Method::GET, "/", b"").await.text(), "ok");
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let addr = start(Functions::new().http("f", echo_method_and_path));
    let answer = raw(
        addr,
        b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        answer.contains("GET /1") && answer.contains("GET /2"),
        "{answer:?}"
    );
}

/// The name of the target a selection serves, or `None` for serving each by name.
fn target_name(routes: &super::Routes) -> Option<String> {
    match routes {
        super::Routes::Target(route) => Some(route.name.to_string()),
        super::Routes::ByName(_) => None,
    }
}

#[tokio::test]
async fn target_selection() {
    let app = Functions::new()
        .http("hello", echo_method_and_path)
        .http("other", echo_method_and_path);
    let missing = app
        .select(Some("nope"), None)
        .err()
        .map(|e| e.0)
        .unwrap_or_default();
    assert!(
        missing.contains("\"nope\"") && missing.contains("hello (http), other (http)"),
        "{missing}"
    );
    let other = app.select(Some("other"), None).ok();
    assert_eq!(
        other.as_ref().and_then(target_name).as_deref(),
        Some("other")
    );
    // Several and none named: each by its name.
    match app.select(None, None) {
        Ok(super::Routes::ByName(routes)) => {
            let names: Vec<&str> = routes.iter().map(|r| &*r.name).collect();
            assert_eq!(names, ["hello", "other"]);
        }
        _ => panic!("expected every function by name"),
    }
    // A platform setting that does not fit is a warning: the registered signature wins.
    let mismatch = app.select(Some("hello"), Some(crate::SignatureType::CloudEvent));
    assert_eq!(
        mismatch.ok().as_ref().and_then(target_name).as_deref(),
        Some("hello")
    );
    // Code that contradicts itself is refused.
    let contradiction = Functions::new()
        .http("hello", echo_method_and_path)
        .signature_type(crate::SignatureType::CloudEvent);
    let refused = contradiction
        .select(Some("hello"), Some(crate::SignatureType::CloudEvent))
        .err()
        .map(|e| e.0)
        .unwrap_or_default();
    assert!(
        refused.contains("http function") && refused.contains("in code"),
        "{refused}"
    );

    let single = Functions::new().http("only", echo_method_and_path);
    let only = single.select(None, None).ok();
    assert_eq!(only.as_ref().and_then(target_name).as_deref(), Some("only"));
    let twice = Functions::new()
        .http("a", echo_method_and_path)
        .http("a", echo_method_and_path);
    assert!(
        twice
            .select(Some("a"), None)
            .err()
            .map(|e| e.0)
            .unwrap_or_default()
            .contains("twice")
    );
}

#[tokio::test]
async fn a_streaming_function_reads_past_the_body_limit_as_the_body_arrives() {
    use crate::Body;
    async fn count(request: http::Request<Body>) -> Result<String, Error> {
        let mut body = request.into_body();
        let (mut total, mut frames) = (0, 0);
        while let Some(frame) = body.frame().await {
            if let Ok(chunk) = frame?.into_data() {
                total += chunk.len();
                frames += 1;
            }
        }
        Ok(format!("{total} bytes in {frames} frames"))
    }
    let app = Functions::new()
        .http_streaming("count", count)
        .http("buffered", |req: Request| async move {
            req.body().len().to_string()
        })
        .body_limit(1024);
    let addr = start(app);
    // 8 chunks, each sent after the function has had the chance to read the one before.
    let chunks = Box::pin(futures_util::stream::iter(0..8).then(|_| async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok::<_, std::convert::Infallible>(http_body::Frame::data(Bytes::from_static(&[b'b'; 300])))
    }));
    let request = http::Request::post(format!("http://{addr}/count"))
        .body(StreamBody::new(chunks))
        .expect("request");
    let response = Client::builder(TokioExecutor::new())
        .build_http()
        .request(request)
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let text = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let text = String::from_utf8_lossy(&text).into_owned();
    assert!(text.starts_with("2400 bytes in "), "{text}");
    let frames: usize = text
        .trim_start_matches("2400 bytes in ")
        .trim_end_matches(" frames")
        .parse()
        .expect("frames");
    assert!(frames > 1, "the body arrived in one piece: {text}");

    static BIG: [u8; 2048] = [b'a'; 2048];
    let buffered = send(addr, Method::POST, "/buffered", &BIG).await;
    assert_eq!(buffered.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        send(addr, Method::POST, "/count", &BIG).await.text(),
        "2048 bytes in 1 frames"
    );
}

#[tokio::test]
async fn layers_wrap_functions_of_every_signature_registered_before_them() {
    use crate::{Body, CloudEvent};
    use tower::util::{MapRequestLayer, MapResponseLayer};

    fn mark(mut response: Response) -> Response {
        response
            .headers_mut()
            .insert("x-layered", http::HeaderValue::from_static("yes"));
        response
    }
    /// Replaces the body with a streamed one: the adapter must still get all of it.
    fn restream(request: http::Request<Body>) -> http::Request<Body> {
        request.map(|body| {
            let stream = Box::pin(futures_util::stream::once(async move {
                let bytes = body.collect().await?.to_bytes();
                Ok::<_, Error>(http_body::Frame::data(bytes))
            }));
            Body::new(StreamBody::new(stream))
        })
    }
    #[derive(serde::Deserialize, serde::Serialize)]
    struct Order {
        quantity: u32,
    }
    let app = Functions::new()
        .cloud_event("event", |_event: CloudEvent<serde_json::Value>| async {
            Ok::<_, Error>(())
        })
        .typed("typed", |order: Order| async move { Ok::<_, Error>(order) })
        .layer(MapRequestLayer::new(restream))
        .layer(MapResponseLayer::new(mark))
        .http("plain", |_req: Request| async { "plain" });
    let addr = start(app);
    let event = send_with(
        addr,
        Method::POST,
        "/event",
        br#"{"a": 1}"#,
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", "1"),
            ("ce-source", "//test"),
            ("ce-type", "test.type"),
            ("content-type", "application/json"),
        ],
    )
    .await;
    assert_eq!(event.status, StatusCode::NO_CONTENT);
    assert_eq!(event.headers["x-layered"], "yes");

    let typed = send(addr, Method::POST, "/typed", br#"{"quantity": 3}"#).await;
    assert_eq!(
        (typed.status, typed.text()),
        (StatusCode::OK, r#"{"quantity":3}"#.to_owned())
    );
    assert_eq!(typed.headers["x-layered"], "yes");
    // The adapter's refusal passes through the layer like any response.
    let refused = send(addr, Method::POST, "/typed", br#"{"quantity": "x"}"#).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.headers["x-layered"], "yes");

    let plain = send(addr, Method::GET, "/plain", b"").await;
    assert_eq!(plain.text(), "plain");
    assert!(plain.headers.get("x-layered").is_none());
}

/// Waits until `done` holds, for at most 5 s.
async fn eventually(done: impl Fn() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the condition did not hold within 5 s");
}

#[tokio::test]
async fn a_function_runs_on_after_its_client_goes_away_and_sees_it() {
    // 0: not finished; 1: finished, client present; 2: finished, client gone.
    let outcome = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let (seen, entered) = (Arc::clone(&outcome), Arc::clone(&started));
    let app = Functions::new().http("slow", move |_req: Request| {
        let (seen, entered) = (Arc::clone(&seen), Arc::clone(&entered));
        async move {
            entered.fetch_add(1, Ordering::SeqCst);
            let ctx = Context::current().expect("context");
            // Wait for the client to go, then a little more: the function is not cancelled.
            ctx.client_gone().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            seen.store(if ctx.is_client_gone() { 2 } else { 1 }, Ordering::SeqCst);
            "done"
        }
    });
    let addr = start(app);
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    eventually(|| started.load(Ordering::SeqCst) == 1).await;
    drop(stream);
    eventually(|| outcome.load(Ordering::SeqCst) != 0).await;
    assert_eq!(outcome.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_client_that_half_closes_after_its_request_gets_the_response() {
    let app = Functions::new().http("f", |_req: Request| async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        "still answered"
    });
    let addr = start(app);
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    stream.shutdown().await.expect("shutdown");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out))
        .await
        .expect("answered in time")
        .expect("read");
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.ends_with("still answered"), "{out}");
}

#[tokio::test]
async fn a_pubsub_push_request_reaches_cloudevent_and_event_functions() {
    use crate::{CloudEvent, EventContext};
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let (a, b) = (Arc::clone(&seen), Arc::clone(&seen));
    let app = Functions::new()
        .cloud_event("ce", move |event: CloudEvent<serde_json::Value>| {
            let seen = Arc::clone(&a);
            async move {
                seen.lock().expect("lock").push(format!(
                    "{} {} {} {}",
                    event.ty(),
                    event.source(),
                    event.id(),
                    event.data["message"]["data"]
                ));
                Ok::<_, Error>(())
            }
        })
        .event(
            "legacy",
            move |data: serde_json::Value, context: EventContext| {
                let seen = Arc::clone(&b);
                async move {
                    seen.lock().expect("lock").push(format!(
                        "{} {} {}",
                        context.event_type, context.event_id, data["data"]
                    ));
                    Ok::<_, Error>(())
                }
            },
        );
    let addr = start(app);
    let body = br#"{"message": {"data": "aGk=", "messageId": "m-1", "publishTime": "2024-01-02T03:04:05Z", "attributes": {"k": "v"}}, "subscription": "projects/p/subscriptions/s"}"#;
    let ce = send(addr, Method::POST, "/ce/projects/p/topics/orders", body).await;
    assert_eq!(ce.status, StatusCode::NO_CONTENT, "{}", ce.text());
    let legacy = send(addr, Method::POST, "/legacy", body).await;
    assert_eq!(legacy.status, StatusCode::NO_CONTENT, "{}", legacy.text());
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(
        seen,
        [
            "google.cloud.pubsub.topic.v1.messagePublished //pubsub.googleapis.com/projects/p/topics/orders m-1 \"aGk=\"",
            "google.pubsub.topic.publish m-1 \"aGk=\"",
        ]
    );
    // A push body without a message id is refused, naming it.
    let refused = send(
        addr,
        Method::POST,
        "/ce",
        br#"{"message": {"data": "aGk="}, "subscription": "projects/p/subscriptions/s"}"#,
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.text().contains("messageId"), "{}", refused.text());
}
