//! The decoding both event signatures share: a CloudEvent in binary or structured mode, or a
//! legacy event body; and the messages that name a failing field.

use bytes::Bytes;
use cloudevents::event::{EventBuilderV10, TryIntoUrl};
use cloudevents::{AttributesReader, AttributesWriter, Data, Event, EventBuilder};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::convert;
use crate::error::Rejection;

/// An event request, decoded but not yet converted to what the function takes.
#[derive(Debug)]
pub(crate) enum DecodedEvent {
    /// A CloudEvent (binary or structured mode). Its JSON data is parsed, except binary-mode
    /// JSON data decoded with [`DataForm::Raw`]: that is left out of the event and given as
    /// the request's bytes.
    CloudEvent(Box<Event>, Option<Bytes>),
    /// A legacy event body.
    Legacy(serde_json::Value),
    /// JSON with none of a legacy event's context fields: legacy event functions take it as
    /// the data (as the Go and Node.js frameworks do); CloudEvent functions refuse it.
    Plain(serde_json::Value),
}

/// Why a body is not an event, for the functions that need one.
pub(crate) const NOT_AN_EVENT: &str = "not an event: expected a CloudEvent in binary mode \
    (ce-specversion, ce-id, ce-source and ce-type headers), a CloudEvent in structured mode \
    (Content-Type: application/cloudevents+json), a legacy event (a JSON object with \
    `context`, or `eventId`/`eventType` beside `data`) or a Pub/Sub push request (`message` \
    and `subscription`)";

/// The keys that make a JSON object a (possibly broken) legacy event rather than plain data.
const CONTEXT_KEYS: [&str; 7] = [
    "context",
    "eventId",
    "event_id",
    "eventType",
    "event_type",
    "timestamp",
    "resource",
];

const REQUIRED_ATTRIBUTES: [&str; 4] = ["specversion", "id", "source", "type"];

/// A content type's media type, without its parameters (compare it ignoring ASCII case).
fn essence(content_type: &str) -> &str {
    let end = content_type
        .bytes()
        .position(|b| b == b';')
        .unwrap_or(content_type.len());
    content_type[..end].trim_ascii()
}

/// Whether data with this content type is JSON; an absent type means JSON in the
/// CloudEvents JSON format.
fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_none_or(|ct| {
        let ct = essence(ct);
        ct.eq_ignore_ascii_case("application/json")
            || ct.eq_ignore_ascii_case("text/json")
            || ct
                .len()
                .checked_sub("+json".len())
                .and_then(|start| ct.get(start..))
                .is_some_and(|suffix| suffix.eq_ignore_ascii_case("+json"))
    })
}

/// Whether a `datacontenttype` is protobuf (what Firestore and Datastore triggers send).
pub(crate) fn is_protobuf(content_type: &str) -> bool {
    let ct = essence(content_type);
    ct.eq_ignore_ascii_case("application/protobuf")
        || ct.eq_ignore_ascii_case("application/x-protobuf")
}

/// What becomes of a binary-mode event's JSON data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataForm {
    /// Parsed into a JSON value: what `Event` and the legacy conversion work on.
    Parsed,
    /// Left as the request's bytes, beside the event: a `CloudEvent<T>` decodes them
    /// straight into `T`, with no JSON value or copy in between.
    Raw,
}

/// The headers an event request is read from, found in one pass over the request's
/// headers (a look-up per attribute would hash each name).
#[derive(Default)]
struct EventHeaders<'a> {
    specversion: Option<&'a HeaderValue>,
    id: Option<&'a HeaderValue>,
    source: Option<&'a HeaderValue>,
    ty: Option<&'a HeaderValue>,
    subject: Option<&'a HeaderValue>,
    time: Option<&'a HeaderValue>,
    dataschema: Option<&'a HeaderValue>,
    /// `Content-Type`, which is the `datacontenttype` in binary mode.
    content_type: Option<&'a HeaderValue>,
    /// A `ce-datacontenttype` header: `Content-Type` wins over it.
    ce_datacontenttype: Option<&'a HeaderValue>,
    traceparent: Option<&'a HeaderValue>,
    /// Every other `ce-` header: the event's extensions, by attribute name.
    extensions: Vec<(&'a str, &'a HeaderValue)>,
}

impl<'a> EventHeaders<'a> {
    fn read(headers: &'a HeaderMap) -> Self {
        let mut found = EventHeaders::default();
        for (name, value) in headers {
            let name = name.as_str();
            let Some(attribute) = name.strip_prefix("ce-") else {
                match name {
                    "content-type" => found.content_type = Some(value),
                    "traceparent" => found.traceparent = Some(value),
                    _ => {}
                }
                continue;
            };
            let slot = match attribute {
                "specversion" => &mut found.specversion,
                "id" => &mut found.id,
                "source" => &mut found.source,
                "type" => &mut found.ty,
                "subject" => &mut found.subject,
                "time" => &mut found.time,
                "dataschema" => &mut found.dataschema,
                "datacontenttype" => &mut found.ce_datacontenttype,
                extension => {
                    found.extensions.push((extension, value));
                    continue;
                }
            };
            // The first of repeated headers, as `HeaderMap::get` gives.
            slot.get_or_insert(value);
        }
        found
    }

    /// Whether the request is a binary-mode CloudEvent: it has one of the required
    /// attributes' headers.
    fn binary(&self) -> bool {
        self.specversion.is_some()
            || self.id.is_some()
            || self.source.is_some()
            || self.ty.is_some()
    }

    fn content_type(&self) -> Option<&'a str> {
        self.content_type.and_then(|v| v.to_str().ok())
    }
}

/// Decodes an event request, JSON data parsed. Only POST is accepted; anything that is
/// neither a CloudEvent nor a legacy event is refused with a message that says what is
/// missing.
pub(crate) fn decode(request: &http::Request<Bytes>) -> Result<DecodedEvent, Rejection> {
    decode_with(request, DataForm::Parsed)
}

/// [`decode`], with binary-mode JSON data in the form asked for.
pub(crate) fn decode_with(
    request: &http::Request<Bytes>,
    form: DataForm,
) -> Result<DecodedEvent, Rejection> {
    if request.method() != Method::POST {
        return Err(Rejection::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("event functions accept POST only, not {}", request.method()),
        ));
    }
    let headers = EventHeaders::read(request.headers());
    let body = request.body();
    let media_type = headers.content_type().map(essence);
    let is_media_type =
        |expected: &str| media_type.is_some_and(|m| m.eq_ignore_ascii_case(expected));

    let mut raw_json = None;
    let mut event = if headers.binary() {
        let (event, raw) = decode_binary(request.headers(), &headers, body, form)?;
        raw_json = raw;
        event
    } else if is_media_type("application/cloudevents+json") {
        decode_structured(body)?
    } else if is_media_type("application/cloudevents-batch+json") {
        return Err(Rejection::bad_request(
            "batched CloudEvents (application/cloudevents-batch+json) are not supported: send one event per request",
        ));
    } else {
        let json: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
            Rejection::bad_request(format!("{NOT_AN_EVENT}; the body is not valid JSON: {e}"))
        })?;
        if convert::is_legacy_event(&json) {
            return Ok(DecodedEvent::Legacy(json));
        }
        if super::pubsub_push::is_push(&json) {
            super::pubsub_push::to_cloud_event(request.uri().path(), json)?
        } else {
            // Context fields that do not make a legacy event are a broken event, not data.
            let broken = json
                .as_object()
                .is_some_and(|object| CONTEXT_KEYS.iter().any(|key| object.contains_key(*key)));
            if broken {
                return Err(Rejection::bad_request(NOT_AN_EVENT));
            }
            return Ok(DecodedEvent::Plain(json));
        }
    };

    if let Some(traceparent) = headers.traceparent.and_then(|v| v.to_str().ok()) {
        if event.extension("traceparent").is_none() {
            event.set_extension("traceparent", traceparent.to_owned());
        }
    }
    Ok(DecodedEvent::CloudEvent(Box::new(event), raw_json))
}

/// A header's value as text, or the 400 that names it.
fn header_text<'a>(name: &str, value: &'a HeaderValue) -> Result<&'a str, Rejection> {
    value.to_str().map_err(|_| {
        Rejection::bad_request(format!(
            "invalid binary-mode CloudEvent: header {name} is not printable ASCII"
        ))
    })
}

/// An optional header's value as text, or the 400 that names it.
fn optional_text<'a>(
    name: &str,
    value: Option<&'a HeaderValue>,
) -> Result<Option<&'a str>, Rejection> {
    value.map(|v| header_text(name, v)).transpose()
}

fn decode_binary(
    all: &HeaderMap,
    headers: &EventHeaders<'_>,
    body: &Bytes,
    form: DataForm,
) -> Result<(Event, Option<Bytes>), Rejection> {
    let required = [
        ("ce-specversion", headers.specversion),
        ("ce-id", headers.id),
        ("ce-source", headers.source),
        ("ce-type", headers.ty),
    ];
    let mut texts = [""; 4];
    for (text, (name, value)) in texts.iter_mut().zip(required) {
        *text = optional_text(name, value)?.unwrap_or_default();
    }
    let missing: Vec<&str> = required
        .iter()
        .zip(texts)
        .filter(|(_, text)| text.trim_ascii().is_empty())
        .map(|((name, _), _)| *name)
        .collect();
    if !missing.is_empty() {
        return Err(Rejection::bad_request(format!(
            "binary-mode CloudEvent is missing the required header{} {}",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        )));
    }
    let [specversion, id, source, ty] = texts;
    let mut event = if specversion == "1.0" {
        binary_v10(headers, id, source, ty)?
    } else {
        // Older spec versions (0.3) are rare: the SDK's binding reads them.
        cloudevents::binding::http::to_event(all, Vec::new())
            .map_err(|e| Rejection::bad_request(format!("invalid binary-mode CloudEvent: {e}")))?
    };
    let json = is_json(event.datacontenttype());
    // JSON is parsed from the request's bytes, not from a copy.
    let data = if body.is_empty() {
        None
    } else if json && form == DataForm::Raw {
        return Ok((event, Some(body.clone())));
    } else if json {
        match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(json) => Some(Data::Json(json)),
            Err(e) if event.datacontenttype().is_some() => {
                return Err(Rejection::bad_request(format!(
                    "CloudEvent data is not valid JSON although Content-Type is {}: {e}",
                    event.datacontenttype().unwrap_or_default()
                )));
            }
            Err(_) => Some(Data::Binary(body.to_vec())),
        }
    } else if event
        .datacontenttype()
        .is_some_and(|ct| ct.starts_with("text/"))
    {
        match String::from_utf8(body.to_vec()) {
            Ok(text) => Some(Data::String(text)),
            Err(e) => Some(Data::Binary(e.into_bytes())),
        }
    } else {
        Some(Data::Binary(body.to_vec()))
    };
    if let Some(data) = data {
        event.set_data_unchecked(data);
    }
    Ok((event, None))
}

/// The attributes of a CloudEvent 1.0 in binary mode, from its headers (the SDK's binding
/// formats every value through `Display` and builds a map of them first). Every `ce-` header
/// that is not an attribute is an extension; `Content-Type` is the `datacontenttype`, as the
/// HTTP binding says.
fn binary_v10(
    headers: &EventHeaders<'_>,
    id: &str,
    source: &str,
    ty: &str,
) -> Result<Event, Rejection> {
    let mut builder = EventBuilderV10::new().id(id).source(source).ty(ty);
    if let Some(subject) = optional_text("ce-subject", headers.subject)? {
        builder = builder.subject(subject);
    }
    if let Some(time) = optional_text("ce-time", headers.time)? {
        builder = builder.time(time);
    }
    for (name, value) in &headers.extensions {
        builder = builder.extension(name, header_text(name, value)?);
    }
    let mut event = builder
        .build()
        .map_err(|e| Rejection::bad_request(format!("invalid binary-mode CloudEvent: {e}")))?;
    let content_type = match headers.content_type {
        Some(value) => Some(header_text("content-type", value)?),
        None => optional_text("ce-datacontenttype", headers.ce_datacontenttype)?,
    };
    event.set_datacontenttype(content_type);
    if let Some(schema) = optional_text("ce-dataschema", headers.dataschema)? {
        let url = schema.into_url().map_err(|e| {
            Rejection::bad_request(format!(
                "invalid binary-mode CloudEvent: ce-dataschema is not a URL: {e}"
            ))
        })?;
        event.set_dataschema(Some(url));
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

/// Decodes JSON bytes into `T`. Only when that fails are they decoded again with the path
/// tracked, so that the message names the failing field ("event data: `message.attributes`:
/// invalid type: ...") at no cost to the requests that decode.
pub(crate) fn json_from_slice<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|_| {
        let traced: Result<T, _> =
            serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(bytes));
        match traced {
            Err(error) => describe(what, &error),
            // Not reached: the same bytes decode the same way twice.
            Ok(_) => format!("{what}: does not decode"),
        }
    })
}

/// [`json_from_slice`] for a JSON value already parsed.
pub(crate) fn json_from_value<T: DeserializeOwned>(
    what: &str,
    json: &serde_json::Value,
) -> Result<T, String> {
    T::deserialize(json).map_err(|_| match serde_path_to_error::deserialize::<_, T>(json) {
        Err(error) => describe(what, &error),
        Ok(_) => format!("{what}: does not decode"),
    })
}

/// The path is left out at the root.
fn describe(what: &str, error: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = error.path().to_string();
    if path == "." {
        format!("{what}: {}", error.inner())
    } else {
        format!("{what}: `{path}`: {}", error.inner())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_requests::{BINARY, post};
    use super::*;
    use cloudevents::AttributesReader;

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
        let Ok(DecodedEvent::CloudEvent(event, _)) = decode(&post(&headers, r#"{"name":"a.txt"}"#))
        else {
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
        let Ok(DecodedEvent::CloudEvent(event, _)) = decode(&post(&headers, "hello")) else {
            panic!("not decoded");
        };
        assert_eq!(event.data(), Some(&Data::String("hello".into())));
        assert_eq!(event.datacontenttype(), Some("text/plain; charset=utf-8"));
        headers[4] = ("content-type", "application/octet-stream");
        let Ok(DecodedEvent::CloudEvent(event, _)) = decode(&post(&headers, "\u{1}\u{2}")) else {
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
    fn binary_mode_reads_every_attribute_as_the_sdk_binding_does() {
        let headers = [
            ("ce-specversion", "1.0"),
            ("ce-id", "42"),
            ("ce-source", "//pubsub.googleapis.com/projects/p/topics/t"),
            ("ce-type", "google.cloud.pubsub.topic.v1.messagePublished"),
            ("ce-subject", "messages/42"),
            ("ce-time", "2024-01-02T03:04:05.678+02:00"),
            ("ce-dataschema", "https://example.com/schema.json"),
            ("ce-datacontenttype", "text/plain"),
            ("content-type", "application/json; charset=utf-8"),
            ("ce-myextension", "value"),
        ];
        let request = post(&headers, r#"{"a":1}"#);
        let Ok(DecodedEvent::CloudEvent(ours, _)) = decode(&request) else {
            panic!("not decoded");
        };
        assert_eq!(ours.id(), "42");
        assert_eq!(ours.subject(), Some("messages/42"));
        assert_eq!(
            ours.time().map(|t| t.to_rfc3339()).as_deref(),
            Some("2024-01-02T01:04:05.678+00:00")
        );
        assert_eq!(
            ours.dataschema().map(ToString::to_string).as_deref(),
            Some("https://example.com/schema.json")
        );
        // Content-Type wins over ce-datacontenttype.
        assert_eq!(
            ours.datacontenttype(),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(ours.data(), Some(&Data::Json(serde_json::json!({"a": 1}))));
        // The same attributes and extensions as the SDK's binding reads.
        let sdk = cloudevents::binding::http::to_event(request.headers(), Vec::new()).expect("sdk");
        assert_eq!(ours.source(), sdk.source());
        assert_eq!(ours.ty(), sdk.ty());
        assert_eq!(ours.time(), sdk.time());
        assert_eq!(ours.dataschema(), sdk.dataschema());
        assert_eq!(
            ours.iter_extensions().collect::<Vec<_>>(),
            sdk.iter_extensions().collect::<Vec<_>>()
        );
    }

    #[test]
    fn binary_mode_refuses_bad_attribute_values_by_name() {
        for (name, value, expected) in [
            ("ce-time", &b"yesterday"[..], "time"),
            ("ce-dataschema", &b"not a url"[..], "ce-dataschema"),
            ("ce-subject", &b"caf\xc3\xa9"[..], "ce-subject"),
        ] {
            let mut request = post(&BINARY, "{}");
            request.headers_mut().insert(
                http::HeaderName::from_static(name),
                http::HeaderValue::from_bytes(value).expect("header"),
            );
            let rejection = rejected(&request);
            assert_eq!(rejection.status, StatusCode::BAD_REQUEST);
            assert!(
                rejection.message.contains(expected),
                "{name}: {}",
                rejection.message
            );
        }
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
        let Ok(DecodedEvent::CloudEvent(event, _)) = decode(&post(&structured, body)) else {
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
            Ok(DecodedEvent::Legacy(_))
        ));
        assert!(matches!(
            decode(&post(
                &[("content-type", "application/json")],
                r#"{"hello":1}"#
            )),
            Ok(DecodedEvent::Plain(_))
        ));
        let broken = rejected(&post(
            &[("content-type", "application/json")],
            r#"{"eventType":"t","resource":"r"}"#,
        ));
        assert!(
            broken.message.starts_with("not an event"),
            "{}",
            broken.message
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
}
