//! OpenTelemetry (the `opentelemetry` feature): one server span per invocation with the FaaS
//! semantic conventions, its parent taken from the request's trace context, exported over
//! OTLP (HTTP/protobuf) to `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`), the
//! collector sidecar Cloud Run documents, and flushed when the server shuts down.
//!
//! Tracing is on when the feature is compiled in and an endpoint is configured, unless
//! `OTEL_SDK_DISABLED=true`. The batch settings come from the standard `OTEL_BSP_*`
//! variables.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context as OtelContext, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracerProvider, Span, Tracer};

use crate::Error;
use crate::context::TraceContext;

struct Tracing {
    provider: SdkTracerProvider,
    tracer: Tracer,
}

static TRACING: OnceLock<Tracing> = OnceLock::new();
static COLD: AtomicBool = AtomicBool::new(true);

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Whether tracing should be on: an endpoint is configured and the SDK is not disabled.
fn wanted() -> bool {
    let disabled = var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    !disabled
        && (var("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
            || var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some())
}

/// Starts the exporter when tracing is wanted. `function` names the service when the
/// platform's `K_SERVICE` does not.
pub(crate) fn init(function: &str) -> Result<(), Error> {
    if !wanted() || TRACING.get().is_some() {
        return Ok(());
    }
    let service = var("K_SERVICE").unwrap_or_else(|| function.to_owned());
    let mut attributes = vec![
        KeyValue::new("cloud.provider", "gcp"),
        KeyValue::new("faas.name", function.to_owned()),
    ];
    if let Some(revision) = var("K_REVISION") {
        attributes.push(KeyValue::new("service.version", revision.clone()));
        attributes.push(KeyValue::new("faas.version", revision));
    }
    if var("K_SERVICE").is_some() {
        let platform = if var("FUNCTION_TARGET").is_some() {
            "gcp_cloud_functions"
        } else {
            "gcp_cloud_run"
        };
        attributes.push(KeyValue::new("cloud.platform", platform));
    }
    let resource = Resource::builder()
        .with_service_name(service)
        .with_attributes(attributes)
        .build();
    // The exporter's blocking HTTP client must not be created inside the async runtime.
    let built = std::thread::spawn(move || {
        opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .map(|exporter| {
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(resource)
                    .build()
            })
    })
    .join()
    .map_err(|_| "the OpenTelemetry exporter could not be built")?;
    let provider = built.map_err(|e| format!("OpenTelemetry exporter: {e}"))?;
    let tracer = provider.tracer("functions-framework");
    let _ = TRACING.set(Tracing { provider, tracer });
    tracing::info!("OpenTelemetry: one span per invocation, exported over OTLP");
    Ok(())
}

/// The span of one invocation.
pub(crate) struct InvocationSpan(Span);

impl std::fmt::Debug for InvocationSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("InvocationSpan")
            .field(&self.0.span_context())
            .finish()
    }
}

/// What the span records of the request.
pub(crate) struct Request<'a> {
    pub(crate) function: &'a str,
    pub(crate) trigger: &'static str,
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
    pub(crate) user_agent: Option<&'a str>,
    pub(crate) client_address: Option<String>,
    pub(crate) invocation_id: &'a str,
}

/// The caller's position as an OpenTelemetry parent: `traceparent`, or
/// `X-Cloud-Trace-Context` (whose span id is decimal).
fn parent(trace: Option<&TraceContext>) -> OtelContext {
    let remote = trace.and_then(|trace| {
        let trace_id = TraceId::from_hex(&trace.trace_id).ok()?;
        let span_hex = crate::log::span_hex(trace.span_id.as_deref()?)?;
        let span_id = SpanId::from_hex(&span_hex).ok()?;
        let flags = if trace.sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        Some(SpanContext::new(
            trace_id,
            span_id,
            flags,
            true,
            TraceState::default(),
        ))
    });
    match remote {
        Some(remote) => OtelContext::new().with_remote_span_context(remote),
        None => OtelContext::new(),
    }
}

/// Starts the invocation's span, when tracing is on: the span, and its trace id and span id
/// (hex) for the invocation's logs.
pub(crate) fn start(
    request: &Request<'_>,
    trace: Option<&TraceContext>,
) -> Option<(InvocationSpan, String, String)> {
    let tracing = TRACING.get()?;
    let mut attributes = vec![
        KeyValue::new("faas.trigger", request.trigger),
        KeyValue::new("faas.invocation_id", request.invocation_id.to_owned()),
        KeyValue::new("faas.coldstart", COLD.swap(false, Ordering::Relaxed)),
        KeyValue::new("http.request.method", request.method.to_owned()),
        KeyValue::new("url.path", request.path.to_owned()),
    ];
    if let Some(query) = request.query {
        attributes.push(KeyValue::new("url.query", query.to_owned()));
    }
    if let Some(agent) = request.user_agent {
        attributes.push(KeyValue::new("user_agent.original", agent.to_owned()));
    }
    if let Some(address) = &request.client_address {
        attributes.push(KeyValue::new("client.address", address.clone()));
    }
    let span = tracing
        .tracer
        .span_builder(request.function.to_owned())
        .with_kind(SpanKind::Server)
        .with_attributes(attributes)
        .start_with_context(&tracing.tracer, &parent(trace));
    let context = span.span_context();
    let ids = (
        context.trace_id().to_string(),
        context.span_id().to_string(),
    );
    Some((InvocationSpan(span), ids.0, ids.1))
}

/// Ends the span with the response's status; 5xx is an error.
pub(crate) fn end(span: InvocationSpan, status: u16) {
    let mut span = span.0;
    span.set_attribute(KeyValue::new(
        "http.response.status_code",
        i64::from(status),
    ));
    if status >= 500 {
        span.set_status(Status::error(format!("HTTP {status}")));
    }
    span.end();
}

/// Exports what is left, within `bound`: called once the server has drained.
pub(crate) async fn flush(bound: Duration) {
    let Some(tracing) = TRACING.get() else {
        return;
    };
    let provider = tracing.provider.clone();
    let flushed = tokio::task::spawn_blocking(move || provider.shutdown());
    match tokio::time::timeout(bound, flushed).await {
        Ok(Ok(Ok(()))) => tracing::info!("OpenTelemetry spans flushed"),
        Ok(Ok(Err(error))) => tracing::warn!(%error, "OpenTelemetry flush failed"),
        Ok(Err(error)) => tracing::warn!(%error, "OpenTelemetry flush failed"),
        Err(_) => tracing::warn!("OpenTelemetry flush did not finish within the shutdown timeout"),
    }
}

/// The glue between the server and this module: what a request tells the span.
pub(crate) mod glue {
    use std::net::SocketAddr;

    use http::header;

    use super::{InvocationSpan, Request, start as start_span};
    use crate::{Context, SignatureType};

    /// A structured-mode CloudEvent's `traceparent` extension, read only when the headers
    /// carry no trace context and tracing is on.
    pub(crate) fn structured_traceparent(
        parts: &http::request::Parts,
        body: &[u8],
    ) -> Option<String> {
        super::TRACING.get()?;
        let headers = &parts.headers;
        if headers.contains_key("traceparent") || headers.contains_key("x-cloud-trace-context") {
            return None;
        }
        let structured = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("application/cloudevents+json"));
        if !structured {
            return None;
        }
        #[derive(serde::Deserialize)]
        struct Extension {
            traceparent: Option<String>,
        }
        serde_json::from_slice::<Extension>(body).ok()?.traceparent
    }

    /// The FaaS trigger: `http` for HTTP and typed functions; for events, by the CloudEvent
    /// type when the request names one (`ce-type`).
    fn trigger(signature: SignatureType, parts: &http::request::Parts) -> &'static str {
        if !matches!(signature, SignatureType::CloudEvent | SignatureType::Event) {
            return "http";
        }
        let ty = parts
            .headers
            .get("ce-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if ty.contains(".pubsub.") {
            "pubsub"
        } else if ty.contains(".storage.")
            || ty.contains(".firestore.")
            || ty.contains(".database.")
            || ty.contains(".datastore.")
        {
            "datasource"
        } else if ty.contains(".scheduler.") {
            "timer"
        } else {
            "other"
        }
    }

    /// Starts the invocation's span and gives its ids to the context's logs.
    pub(crate) fn start(
        function: &str,
        signature: SignatureType,
        parts: &http::request::Parts,
        remote: Option<SocketAddr>,
        context: &Context,
    ) -> Option<InvocationSpan> {
        super::TRACING.get()?;
        let request = Request {
            function,
            trigger: trigger(signature, parts),
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query(),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok()),
            client_address: remote.map(|a| a.ip().to_canonical().to_string()),
            invocation_id: context.execution_id(),
        };
        let (span, trace_id, span_id) = start_span(&request, context.trace())?;
        context.set_traced(trace_id, span_id);
        Some(span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_come_from_either_header_form() {
        let w3c = TraceContext {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            span_id: Some("00f067aa0ba902b7".into()),
            sampled: true,
            traceparent: None,
        };
        let cx = parent(Some(&w3c));
        let remote = cx.span().span_context().clone();
        assert_eq!(remote.trace_id().to_string(), w3c.trace_id);
        assert_eq!(remote.span_id().to_string(), "00f067aa0ba902b7");
        assert!(remote.is_sampled() && remote.is_remote());
        let google = TraceContext {
            trace_id: "105445aa7843bc8bf206b12000100000".into(),
            span_id: Some("10".into()),
            sampled: false,
            traceparent: None,
        };
        let cx = parent(Some(&google));
        assert_eq!(
            cx.span().span_context().span_id().to_string(),
            "000000000000000a"
        );
        assert!(!parent(None).has_active_span());
    }
}
