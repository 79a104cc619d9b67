//! CloudEvent functions, and the decoding of event requests that both event signatures share:
//! binary mode, structured mode, or a legacy event body.

use std::marker::PhantomData;

use bytes::Bytes;
use cloudevents::{AttributesReader, AttributesWriter, Data, Event};
use http::{HeaderMap, HeaderName, Method, StatusCode, header};
use serde::de::DeserializeOwned;

use crate::convert;
use crate::server::{BoxFuture, Invoke, Rejection};
use crate::{BoxError, Response};

/// An event request, decoded but not yet converted to what the function takes.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A CloudEvent (binary or structured mode), JSON data already parsed.
    CloudEvent(Box<Event>),
    /// A legacy event body.
    Legacy(serde_json::Value),
}

const REQUIRED_ATTRIBUTES: [&str; 4] = ["specversion", "id", "source", "type"];

/// The binary-mode headers of the required attributes, as constants so that looking them up
/// parses nothing.
static REQUIRED_HEADERS: [HeaderName; 4] = [
    HeaderName::from_static("ce-specversion"),
    HeaderName::from_static("ce-id"),
    HeaderName::from_static("ce-source"),
    HeaderName::from_static("ce-type"),
];
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
    )
}

/// Whether data with this content type is JSON; an absent type means JSON in the
/// CloudEvents JSON format.
fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_none_or(|ct| {
        let ct = ct
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        ct == "application/json" || ct == "text/json" || ct.ends_with("+json")
    })
}

/// Decodes an event request. Only POST is accepted; anything that is neither a CloudEvent
/// nor a legacy event is refused with a message that says what is missing.
pub(crate) fn decode(request: &http::Request<Bytes>) -> Result<Incoming, Rejection> {
    if request.method() != Method::POST {
        return Err(Rejection {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message: format!("event functions accept POST only, not {}", request.method()),
        });
    }
    let headers = request.headers();
    let body = request.body();
    let binary = REQUIRED_HEADERS
        .iter()
        .any(|name| headers.contains_key(name));
    let media_type = if binary { None } else { media_type(headers) };

    let mut event = if binary {
        decode_binary(headers, body)?
    } else if media_type.as_deref() == Some("application/cloudevents+json") {
        decode_structured(body)?
    } else if media_type.as_deref() == Some("application/cloudevents-batch+json") {
        return Err(Rejection::bad_request(
            "batched CloudEvents (application/cloudevents-batch+json) are not supported: send one event per request",
        ));
    } else {
        let not_an_event = "not an event: expected a CloudEvent in binary mode (ce-specversion, ce-id, \
                            ce-source and ce-type headers), a CloudEvent in structured mode \
                            (Content-Type: application/cloudevents+json) or a legacy event (a JSON \
                            object with `context`, or `eventId`/`eventType` beside `data`)";
        let json: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
            Rejection::bad_request(format!("{not_an_event}; the body is not valid JSON: {e}"))
        })?;
        if !convert::is_legacy_event(&json) {
            return Err(Rejection::bad_request(not_an_event));
        }
        return Ok(Incoming::Legacy(json));
    };

    if let Some(traceparent) = headers.get(&TRACEPARENT).and_then(|v| v.to_str().ok()) {
        if event.extension("traceparent").is_none() {
            event.set_extension("traceparent", traceparent.to_owned());
        }
    }
    Ok(Incoming::CloudEvent(Box::new(event)))
}

fn decode_binary(headers: &HeaderMap, body: &Bytes) -> Result<Event, Rejection> {
    let missing: Vec<&str> = REQUIRED_HEADERS
        .iter()
        .filter(|name| {
            headers
                .get(*name)
                .and_then(|v| v.to_str().ok())
                .is_none_or(|v| v.trim().is_empty())
        })
        .map(HeaderName::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(Rejection::bad_request(format!(
            "binary-mode CloudEvent is missing the required header{} {}",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        )));
    }
    let mut event = cloudevents::binding::http::to_event(headers, body.to_vec())
        .map_err(|e| Rejection::bad_request(format!("invalid binary-mode CloudEvent: {e}")))?;
    // The binding yields bytes whatever the content type: parse JSON here, so that the
    // function gets a JSON value and a structured re-encoding shows `data`, not base64.
    if !matches!(event.data(), Some(Data::Binary(_))) {
        return Ok(event);
    }
    let (content_type, schema, data) = event.take_data();
    let bytes = match data {
        Some(Data::Binary(bytes)) => bytes,
        _ => Vec::new(),
    };
    let data = if bytes.is_empty() {
        None
    } else if is_json(content_type.as_deref()) {
        match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(json) => Some(Data::Json(json)),
            Err(e) if content_type.is_some() => {
                return Err(Rejection::bad_request(format!(
                    "CloudEvent data is not valid JSON although Content-Type is {}: {e}",
                    content_type.as_deref().unwrap_or_default()
                )));
            }
            Err(_) => Some(Data::Binary(bytes)),
        }
    } else if content_type
        .as_deref()
        .is_some_and(|ct| ct.starts_with("text/"))
    {
        match String::from_utf8(bytes) {
            Ok(text) => Some(Data::String(text)),
            Err(e) => Some(Data::Binary(e.into_bytes())),
        }
    } else {
        Some(Data::Binary(bytes))
    };
    event.set_datacontenttype(content_type);
    event.set_dataschema(schema);
    if let Some(data) = data {
        event.set_data_unchecked(data);
    }
    Ok(event)
}

fn decode_structured(body: &Bytes) -> Result<Event, Rejection> {
    let json: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        Rejection::bad_request(format!("structured-mode CloudEvent is not valid JSON: {e}"))
    })?;
    let Some(object) = json.as_object() else {
        return Err(Rejection::bad_request(
            "structured-mode CloudEvent must be a JSON object",
        ));
    };
    let missing: Vec<&str> = REQUIRED_ATTRIBUTES
        .iter()
        .copied()
        .filter(|name| {
            object
                .get(*name)
                .and_then(|v| v.as_str())
                .is_none_or(str::is_empty)
        })
        .collect();
    if !missing.is_empty() {
        return Err(Rejection::bad_request(format!(
            "structured-mode CloudEvent is missing the required attribute{} {}",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        )));
    }
    serde_json::from_value(json)
        .map_err(|e| Rejection::bad_request(format!("invalid structured-mode CloudEvent: {e}")))
}

/// A CloudEvent whose data is decoded into `T` with serde.
///
/// ```
/// use functions_framework::{CloudEvent, Error, Functions};
/// use serde::Deserialize;
///
/// #[derive(Deserialize)]
/// struct StorageObject {
///     bucket: String,
///     name: String,
/// }
///
/// async fn on_upload(event: CloudEvent<StorageObject>) -> Result<(), Error> {
///     println!("{} uploaded to {} ({})", event.data.name, event.data.bucket, event.id());
///     Ok(())
/// }
///
/// let app = Functions::new().cloud_event("on_upload", on_upload);
/// # let _ = app;
/// ```
#[derive(Debug, Clone)]
pub struct CloudEvent<T> {
    /// The event's attributes and extensions (its data has been moved to `data`).
    pub event: Event,
    /// The event data, decoded.
    pub data: T,
}

impl<T> CloudEvent<T> {
    /// The event id.
    pub fn id(&self) -> &str {
        self.event.id()
    }

    /// The event type.
    pub fn ty(&self) -> &str {
        self.event.ty()
    }

    /// The event source.
    pub fn source(&self) -> String {
        self.event.source().to_string()
    }

    /// The event subject, when there is one.
    pub fn subject(&self) -> Option<&str> {
        self.event.subject()
    }

    /// When the event happened, when the producer said.
    pub fn time(&self) -> Option<&chrono::DateTime<chrono::Utc>> {
        self.event.time()
    }
}

/// What a CloudEvent function may take: the SDK's [`Event`] as it came, or a
/// [`CloudEvent<T>`] with its data decoded.
pub trait FromCloudEvent: Sized + Send + 'static {
    /// Builds `Self` from a decoded event; `Err` is a message for a 400 response.
    fn from_cloud_event(event: Event) -> Result<Self, String>;
}

impl FromCloudEvent for Event {
    fn from_cloud_event(event: Event) -> Result<Self, String> {
        Ok(event)
    }
}

impl<T: DeserializeOwned + Send + 'static> FromCloudEvent for CloudEvent<T> {
    fn from_cloud_event(mut event: Event) -> Result<Self, String> {
        let (_, _, data) = event.take_data();
        let data = decode_data(data.as_ref())?;
        Ok(CloudEvent { event, data })
    }
}

/// Decodes event data into `T`, naming the failing field on error.
pub(crate) fn decode_data<T: DeserializeOwned>(data: Option<&Data>) -> Result<T, String> {
    let result = match data {
        Some(Data::Json(json)) => serde_path_to_error::deserialize(json),
        Some(Data::String(text)) => {
            serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(text))
        }
        Some(Data::Binary(bytes)) => {
            serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(bytes))
        }
        None => serde_path_to_error::deserialize(&serde_json::Value::Null),
    };
    result.map_err(|e| describe("event data", &e))
}

/// "event data: `message.attributes`: invalid type: ..." (the path is left out at the root).
pub(crate) fn describe(
    what: &str,
    error: &serde_path_to_error::Error<serde_json::Error>,
) -> String {
    let path = error.path().to_string();
    if path == "." {
        format!("{what}: {}", error.inner())
    } else {
        format!("{what}: `{path}`: {}", error.inner())
    }
}

/// An `async fn(E) -> Result<(), Err>` where `E` is [`FromCloudEvent`].
pub(crate) struct CloudEventFunction<F, E> {
    pub(crate) function: F,
    pub(crate) _event: PhantomData<fn(E)>,
}

impl<F, E, Fut, Err> Invoke for CloudEventFunction<F, E>
where
    F: Fn(E) -> Fut + Send + Sync + 'static,
    E: FromCloudEvent,
    Fut: Future<Output = Result<(), Err>> + Send + 'static,
    Err: Into<BoxError>,
{
    fn invoke(&self, request: http::Request<Bytes>) -> BoxFuture<Result<Response, Rejection>> {
        let prepared = to_cloud_event(&request)
            .and_then(|event| E::from_cloud_event(event).map_err(Rejection::bad_request));
        match prepared {
            Ok(argument) => {
                let future = (self.function)(argument);
                Box::pin(async move { Ok(event_result(future.await)) })
            }
            Err(rejection) => Box::pin(std::future::ready(Err(rejection))),
        }
    }
}

/// The CloudEvent a CloudEvent function receives, converting legacy bodies.
pub(crate) fn to_cloud_event(request: &http::Request<Bytes>) -> Result<Event, Rejection> {
    match decode(request)? {
        Incoming::CloudEvent(event) => Ok(*event),
        Incoming::Legacy(body) => {
            let structured = convert::legacy_to_cloud_event(&body)
                .map_err(|e| Rejection::bad_request(e.to_string()))?;
            serde_json::from_value(structured).map_err(|e| {
                Rejection::bad_request(format!(
                    "legacy event does not make a valid CloudEvent: {e}"
                ))
            })
        }
    }
}

/// Success is 204 No Content; an error is a 500, so that Pub/Sub and Eventarc retry.
pub(crate) fn event_result<E: Into<BoxError>>(result: Result<(), E>) -> Response {
    match result {
        Ok(()) => {
            let mut response = http::Response::new(crate::Body::empty());
            *response.status_mut() = StatusCode::NO_CONTENT;
            response
        }
        Err(error) => crate::server::function_error(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(headers: &[(&str, &str)], body: &str) -> http::Request<Bytes> {
        let mut request = http::Request::post("/");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
            .body(Bytes::copy_from_slice(body.as_bytes()))
            .expect("request")
    }

    const BINARY: [(&str, &str); 5] = [
        ("ce-specversion", "1.0"),
        ("ce-id", "1"),
        ("ce-source", "//storage.googleapis.com/projects/_/buckets/b"),
        ("ce-type", "google.cloud.storage.object.v1.finalized"),
        ("content-type", "application/json"),
    ];

    fn rejected(request: &http::Request<Bytes>) -> Rejection {
        match decode(request) {
            Err(rejection) => rejection,
            Ok(incoming) => panic!("accepted: {incoming:?}"),
        }
    }

    #[test]
    fn binary_mode_parses_json_and_keeps_the_content_type() {
        let mut headers = BINARY.to_vec();
        headers.push((
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ));
        let Ok(Incoming::CloudEvent(event)) = decode(&post(&headers, r#"{"name":"a.txt"}"#)) else {
            panic!("not decoded");
        };
        assert_eq!(event.datacontenttype(), Some("application/json"));
        assert_eq!(
            event.data(),
            Some(&Data::Json(serde_json::json!({"name": "a.txt"})))
        );
        assert_eq!(
            event
                .extension("traceparent")
                .map(ToString::to_string)
                .as_deref(),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );
    }

    #[test]
    fn binary_mode_text_and_bytes() {
        let mut headers = BINARY.to_vec();
        headers[4] = ("content-type", "text/plain; charset=utf-8");
        let Ok(Incoming::CloudEvent(event)) = decode(&post(&headers, "hello")) else {
            panic!("not decoded");
        };
        assert_eq!(event.data(), Some(&Data::String("hello".into())));
        assert_eq!(event.datacontenttype(), Some("text/plain; charset=utf-8"));
        headers[4] = ("content-type", "application/octet-stream");
        let Ok(Incoming::CloudEvent(event)) = decode(&post(&headers, "\u{1}\u{2}")) else {
            panic!("not decoded");
        };
        assert_eq!(event.data(), Some(&Data::Binary(vec![1, 2])));
    }

    #[test]
    fn every_missing_binary_header_is_named() {
        for missing in ["ce-specversion", "ce-id", "ce-source", "ce-type"] {
            let headers: Vec<_> = BINARY
                .iter()
                .copied()
                .filter(|(k, _)| *k != missing)
                .collect();
            let rejection = rejected(&post(&headers, "{}"));
            assert_eq!(rejection.status, StatusCode::BAD_REQUEST);
            assert!(rejection.message.contains(missing), "{}", rejection.message);
        }
        let rejection = rejected(&post(&[("ce-id", "1")], "{}"));
        assert!(
            rejection
                .message
                .contains("ce-specversion, ce-source, ce-type"),
            "{}",
            rejection.message
        );
    }

    #[test]
    fn invalid_binary_values_are_400() {
        let mut headers = BINARY.to_vec();
        headers[0] = ("ce-specversion", "9.9");
        assert_eq!(
            rejected(&post(&headers, "{}")).status,
            StatusCode::BAD_REQUEST
        );
        let rejection = rejected(&post(&BINARY, "{not json"));
        assert!(
            rejection.message.contains("not valid JSON"),
            "{}",
            rejection.message
        );
    }

    #[test]
    fn structured_mode() {
        let structured = [(
            "content-type",
            "application/cloudevents+json; charset=utf-8",
        )];
        let body = r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"a":1}}"#;
        let Ok(Incoming::CloudEvent(event)) = decode(&post(&structured, body)) else {
            panic!("not decoded");
        };
        assert_eq!(event.data(), Some(&Data::Json(serde_json::json!({"a": 1}))));

        for (body, names) in [
            ("{", "not valid JSON"),
            ("[1]", "JSON object"),
            (r#"{"specversion":"1.0","source":"/s","type":"t"}"#, "id"),
            (r#"{"id":"1","source":"/s","type":"t"}"#, "specversion"),
            (r#"{"specversion":"1.0","id":"1","type":"t"}"#, "source"),
            (r#"{"specversion":"1.0","id":"1","source":"/s"}"#, "type"),
            (
                r#"{"specversion":"1.0","id":5,"source":"/s","type":"t"}"#,
                "id",
            ),
            (
                r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","time":"yesterday"}"#,
                "invalid",
            ),
        ] {
            let rejection = rejected(&post(&structured, body));
            assert_eq!(rejection.status, StatusCode::BAD_REQUEST, "{body}");
            assert!(
                rejection.message.contains(names),
                "{body}: {}",
                rejection.message
            );
        }
        let batch = rejected(&post(
            &[("content-type", "application/cloudevents-batch+json")],
            "[]",
        ));
        assert!(batch.message.contains("batched"), "{}", batch.message);
    }

    #[test]
    fn legacy_bodies_and_other_json() {
        let legacy = r#"{"context":{"eventId":"1"},"data":{}}"#;
        assert!(matches!(
            decode(&post(&[], legacy)),
            Ok(Incoming::Legacy(_))
        ));
        let other = rejected(&post(
            &[("content-type", "application/json")],
            r#"{"hello":1}"#,
        ));
        assert!(
            other.message.starts_with("not an event"),
            "{}",
            other.message
        );
        let garbage = rejected(&post(&[], "\u{0}\u{ff}"));
        assert!(
            garbage.message.contains("not valid JSON"),
            "{}",
            garbage.message
        );
    }

    #[test]
    fn only_post_is_accepted() {
        for method in [Method::GET, Method::PUT, Method::DELETE, Method::PATCH] {
            let request = http::Request::builder()
                .method(method.clone())
                .uri("/")
                .body(Bytes::new())
                .expect("request");
            assert_eq!(
                rejected(&request).status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method}"
            );
        }
    }

    #[test]
    fn legacy_is_converted_for_cloud_event_functions() {
        let legacy = r#"{"eventId":"1","timestamp":"2020-09-29T11:32:00.000Z","eventType":"google.pubsub.topic.publish","resource":"projects/p/topics/t","data":{"data":"aGk="}}"#;
        let event = to_cloud_event(&post(&[], legacy)).expect("converted");
        assert_eq!(event.ty(), "google.cloud.pubsub.topic.v1.messagePublished");
        let broken = r#"{"eventId":"1","eventType":"google.pubsub.topic.publish","resource":"projects/p/topics/t","data":{}}"#;
        let rejection = to_cloud_event(&post(&[], broken)).expect_err("rejected");
        assert!(
            rejection.message.contains("timestamp"),
            "{}",
            rejection.message
        );
    }

    #[derive(Debug, serde::Deserialize)]
    struct Object {
        #[allow(dead_code)]
        bucket: String,
        #[allow(dead_code)]
        size: u64,
    }

    #[test]
    fn typed_cloud_event_names_the_failing_field() {
        let event =
            to_cloud_event(&post(&BINARY, r#"{"bucket":"b","size":"big"}"#)).expect("event");
        let message = CloudEvent::<Object>::from_cloud_event(event).expect_err("rejected");
        assert!(message.contains("`size`"), "{message}");
        let event = to_cloud_event(&post(&BINARY, r#"{"bucket":"b","size":3}"#)).expect("event");
        let decoded = CloudEvent::<Object>::from_cloud_event(event).expect("decoded");
        assert_eq!(decoded.id(), "1");
        assert!(decoded.event.data().is_none());
    }
}
