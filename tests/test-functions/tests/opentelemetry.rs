//! OpenTelemetry end to end: `test-functions` (built with the `opentelemetry` feature) exports
//! its invocation spans over OTLP/HTTP to a receiver in this test, which decodes them with
//! the OpenTelemetry protocol's own types. The batch delay is a minute, so spans reach the
//! receiver only through the flush on SIGTERM.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use common::{Stream, command, signal, start};

/// A span as received, with its resource's attributes.
#[derive(Debug, Clone)]
struct Received {
    span: Span,
    resource: HashMap<String, String>,
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attributes(list: &[KeyValue]) -> HashMap<String, String> {
    list.iter()
        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
        .collect()
}

/// An OTLP/HTTP trace receiver on a loopback port, on a thread of its own.
struct Receiver {
    port: u16,
    spans: Arc<Mutex<Vec<Received>>>,
    requests: Arc<Mutex<Vec<String>>>,
}

fn receiver() -> Receiver {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let spans = Arc::new(Mutex::new(Vec::new()));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (spans_in, requests_in) = (Arc::clone(&spans), Arc::clone(&requests));
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (spans, requests) = (Arc::clone(&spans_in), Arc::clone(&requests_in));
                tokio::spawn(async move {
                    let service =
                        service_fn(move |request: http::Request<hyper::body::Incoming>| {
                            let (spans, requests) = (Arc::clone(&spans), Arc::clone(&requests));
                            async move {
                                let path = request.uri().path().to_owned();
                                let content_type = request
                                    .headers()
                                    .get("content-type")
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or_default()
                                    .to_owned();
                                let body = request.into_body().collect().await?.to_bytes();
                                requests
                                    .lock()
                                    .expect("lock")
                                    .push(format!("{path} {content_type}"));
                                if let Ok(export) = ExportTraceServiceRequest::decode(body) {
                                    let mut spans = spans.lock().expect("lock");
                                    for resource_spans in export.resource_spans {
                                        let resource = resource_spans
                                            .resource
                                            .map(|r| attributes(&r.attributes))
                                            .unwrap_or_default();
                                        for scope in resource_spans.scope_spans {
                                            for span in scope.spans {
                                                spans.push(Received {
                                                    span,
                                                    resource: resource.clone(),
                                                });
                                            }
                                        }
                                    }
                                }
                                Ok::<_, hyper::Error>(
                                    http::Response::builder()
                                        .header("content-type", "application/x-protobuf")
                                        .body(Full::new(Bytes::new()))
                                        .expect("response"),
                                )
                            }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    Receiver {
        port,
        spans,
        requests,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn serve(target: &str, receiver: &Receiver) -> common::Server {
    let mut cmd = command();
    cmd.env("PORT", "0")
        .env("FUNCTION_TARGET", target)
        .env("K_SERVICE", "traced-service")
        .env("K_REVISION", "traced-service-00003")
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", receiver.port),
        )
        .env("OTEL_BSP_SCHEDULE_DELAY", "60000");
    start(cmd)
}

fn wait_spans(receiver: &Receiver, count: usize) -> Vec<Received> {
    let started = Instant::now();
    loop {
        let spans = receiver.spans.lock().expect("lock").clone();
        if spans.len() >= count || started.elapsed() > Duration::from_secs(15) {
            return spans;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn by_invocation(spans: &[Received], id: &str) -> Received {
    spans
        .iter()
        .find(|r| attributes(&r.span.attributes)["faas.invocation_id"] == id)
        .unwrap_or_else(|| panic!("no span for {id}: {spans:#?}"))
        .clone()
}

#[test]
fn each_invocation_is_a_server_span_with_its_parent_exported_on_sigterm() {
    let receiver = receiver();
    let mut server = serve("sleep", &receiver);
    let calls: [(&str, (&str, &str)); 3] = [
        (
            "w3c",
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        ),
        (
            "google",
            (
                "x-cloud-trace-context",
                "105445aa7843bc8bf206b12000100000/10;o=1",
            ),
        ),
        ("root", ("x-nothing", "none")),
    ];
    for (id, header) in calls {
        let reply = common::request(
            server.port,
            "GET",
            "/?ms=1",
            &[
                header,
                ("function-execution-id", id),
                ("user-agent", "otel-test"),
            ],
            b"",
        )
        .expect("request");
        assert_eq!(reply.status, 200, "{id}");
    }
    // Nothing is exported before the flush: the batch delay is a minute.
    std::thread::sleep(Duration::from_millis(300));
    assert!(receiver.spans.lock().expect("lock").is_empty());
    let logs: Vec<serde_json::Value> = server
        .wait_lines(Stream::Stdout, 3, Duration::from_secs(10), |l| {
            l.contains("sleeping 1 ms")
        })
        .iter()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();

    signal(&server.child, libc::SIGTERM);
    assert_eq!(server.child.wait().expect("wait").code(), Some(0));
    let spans = wait_spans(&receiver, 3);
    assert_eq!(spans.len(), 3, "{spans:#?}");
    assert!(
        receiver
            .requests
            .lock()
            .expect("lock")
            .iter()
            .all(|r| r == "/v1/traces application/x-protobuf"),
        "OTLP/HTTP with protobuf bodies"
    );

    let w3c = by_invocation(&spans, "w3c");
    assert_eq!(hex(&w3c.span.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(hex(&w3c.span.parent_span_id), "00f067aa0ba902b7");
    assert_eq!(w3c.span.name, "sleep");
    assert_eq!(w3c.span.kind, 2, "SPAN_KIND_SERVER");
    let attrs = attributes(&w3c.span.attributes);
    for (key, value) in [
        ("faas.trigger", "http"),
        ("http.request.method", "GET"),
        ("url.path", "/"),
        ("url.query", "ms=1"),
        ("user_agent.original", "otel-test"),
        ("client.address", "127.0.0.1"),
        ("http.response.status_code", "200"),
    ] {
        assert_eq!(
            attrs.get(key).map(String::as_str),
            Some(value),
            "{key}: {attrs:?}"
        );
    }
    for (key, value) in [
        ("service.name", "traced-service"),
        ("service.version", "traced-service-00003"),
        ("faas.name", "sleep"),
        ("cloud.provider", "gcp"),
    ] {
        assert_eq!(
            w3c.resource.get(key).map(String::as_str),
            Some(value),
            "{key}: {:?}",
            w3c.resource
        );
    }

    let google = by_invocation(&spans, "google");
    assert_eq!(
        hex(&google.span.trace_id),
        "105445aa7843bc8bf206b12000100000"
    );
    assert_eq!(hex(&google.span.parent_span_id), "000000000000000a");

    let root = by_invocation(&spans, "root");
    assert!(root.span.parent_span_id.is_empty(), "a root span");
    assert_eq!(attributes(&root.span.attributes)["faas.coldstart"], "false");
    assert_eq!(attributes(&w3c.span.attributes)["faas.coldstart"], "true");

    // The logs of each invocation name its span and trace.
    for (id, span) in [("w3c", &w3c), ("google", &google), ("root", &root)] {
        let log = logs
            .iter()
            .find(|l| l["logging.googleapis.com/labels"]["execution_id"] == id)
            .unwrap_or_else(|| panic!("no log line of {id}"));
        assert_eq!(
            log["logging.googleapis.com/spanId"],
            hex(&span.span.span_id),
            "{id}"
        );
        assert!(
            log["logging.googleapis.com/trace"]
                .as_str()
                .is_some_and(|t| t.ends_with(&hex(&span.span.trace_id))),
            "{id}: {log}"
        );
    }
}

#[test]
fn a_cloud_events_traceparent_extension_is_the_parent_in_both_modes() {
    let receiver = receiver();
    let mut server = serve("cloudevent_noop", &receiver);
    let binary = common::request(
        server.port,
        "POST",
        "/",
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", "e1"),
            ("ce-source", "//pubsub.googleapis.com/projects/p/topics/t"),
            ("ce-type", "google.cloud.pubsub.topic.v1.messagePublished"),
            (
                "ce-traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ),
            ("function-execution-id", "binary"),
            ("content-type", "application/json"),
        ],
        br#"{"message":{}}"#,
    )
    .expect("request");
    assert_eq!(binary.status, 204);
    let structured = common::request(
        server.port,
        "POST",
        "/",
        &[
            ("content-type", "application/cloudevents+json"),
            ("function-execution-id", "structured"),
        ],
        br#"{"specversion":"1.0","id":"e2","source":"//storage.googleapis.com/projects/_/buckets/b","type":"google.cloud.storage.object.v1.finalized","traceparent":"00-11111111111111111111111111111111-2222222222222222-01","data":{}}"#,
    )
    .expect("request");
    assert_eq!(structured.status, 204);
    signal(&server.child, libc::SIGTERM);
    assert_eq!(server.child.wait().expect("wait").code(), Some(0));
    let spans = wait_spans(&receiver, 2);
    let binary = by_invocation(&spans, "binary");
    assert_eq!(
        hex(&binary.span.trace_id),
        "0af7651916cd43dd8448eb211c80319c"
    );
    assert_eq!(hex(&binary.span.parent_span_id), "b7ad6b7169203331");
    assert_eq!(
        attributes(&binary.span.attributes)["faas.trigger"],
        "pubsub"
    );
    let structured = by_invocation(&spans, "structured");
    assert_eq!(
        hex(&structured.span.trace_id),
        "11111111111111111111111111111111"
    );
    assert_eq!(hex(&structured.span.parent_span_id), "2222222222222222");
    assert_eq!(
        attributes(&structured.span.attributes)["faas.trigger"],
        "other",
        "structured mode has no ce-type header to tell the trigger"
    );
}
