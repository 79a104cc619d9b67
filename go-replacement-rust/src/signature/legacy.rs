//! Legacy event (background) functions: `async fn(data, EventContext)`, the signature of Cloud
//! Functions' first triggers. CloudEvents are converted to legacy events on the way in.

use std::marker::PhantomData;

use bytes::Bytes;
use futures_util::FutureExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::cloudevent::event_result;
use super::decode::{DecodedEvent, decode, json_from_value};
use super::{BoxFuture, Invoke, refused};
use crate::convert;
use crate::error::{InvokeError, Rejection};
use crate::{Error, Response};

/// The context of a legacy event: what happened, where and when.
///
/// ```
/// use functions_framework::{EventContext, Error, Functions};
///
/// async fn on_write(data: serde_json::Value, context: EventContext) -> Result<(), Error> {
///     println!("{} on {:?} at {:?}: {data}", context.event_type, context.resource.name(), context.timestamp);
///     Ok(())
/// }
///
/// let app = Functions::new().event("on_write", on_write);
/// # let _ = app;
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventContext {
    /// The event id.
    pub event_id: String,
    /// When the event happened (RFC 3339, UTC with a `Z` suffix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// The legacy event type, e.g. `google.pubsub.topic.publish`.
    pub event_type: String,
    /// What the event is about.
    pub resource: Resource,
}

/// The resource of a legacy event: a name, or an object with `service`, `name` and `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Resource {
    /// A resource name, e.g. `projects/p/topics/t`.
    Name(String),
    /// A resource object, kept whole.
    Object(Map<String, Value>),
}

impl Resource {
    /// The resource name, whichever the form.
    pub fn name(&self) -> Option<&str> {
        match self {
            Resource::Name(name) => Some(name),
            Resource::Object(object) => object.get("name").and_then(Value::as_str),
        }
    }

    /// The service, for the object form.
    pub fn service(&self) -> Option<&str> {
        match self {
            Resource::Name(_) => None,
            Resource::Object(object) => object.get("service").and_then(Value::as_str),
        }
    }
}

/// An `async fn(T, EventContext) -> Result<(), E>`.
pub(crate) struct LegacyEventFunction<F, T> {
    pub(crate) function: F,
    pub(crate) _data: PhantomData<fn(T)>,
}

/// The legacy event an event function receives: `{"data", "context"}`.
pub(crate) fn to_legacy(request: &http::Request<Bytes>) -> Result<Value, Rejection> {
    let legacy = match decode(request)? {
        DecodedEvent::Legacy(body) => convert::normalize_legacy(&body),
        DecodedEvent::Plain(body) => return Ok(plain(body)),
        DecodedEvent::CloudEvent(event, _) => {
            let structured = serde_json::to_value(&event).map_err(|e| {
                Rejection::bad_request(format!("CloudEvent cannot be converted: {e}"))
            })?;
            convert::cloud_event_to_legacy(&structured)
        }
    };
    legacy.map_err(|e| Rejection::bad_request(e.to_string()))
}

/// What people send by hand, as the Go and Node.js frameworks take it: `{"data": ...}`
/// without a context, or any JSON as the data. The context has the invocation's execution
/// id as the event id and is otherwise empty.
fn plain(body: Value) -> Value {
    let data = match body {
        Value::Object(mut object) if object.len() == 1 && object.contains_key("data") => {
            object.remove("data").unwrap_or_default()
        }
        other => other,
    };
    let event_id = crate::Context::current()
        .map(|context| context.execution_id().to_owned())
        .unwrap_or_default();
    serde_json::json!({
        "data": data,
        "context": { "eventId": event_id, "eventType": "", "resource": "" },
    })
}

fn split<T: DeserializeOwned>(mut legacy: Value) -> Result<(T, EventContext), Rejection> {
    let context = legacy
        .get_mut("context")
        .map(Value::take)
        .unwrap_or_default();
    let data = legacy.get_mut("data").map(Value::take).unwrap_or_default();
    let context: EventContext = serde_json::from_value(context)
        .map_err(|e| Rejection::bad_request(format!("legacy event context: {e}")))?;
    let data = json_from_value("event data", &data).map_err(Rejection::bad_request)?;
    Ok((data, context))
}

impl<F, T, Fut, E> Invoke for LegacyEventFunction<F, T>
where
    F: Fn(T, EventContext) -> Fut + Send + Sync + 'static,
    T: DeserializeOwned + Send + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Into<Error>,
{
    fn invoke(&self, request: http::Request<Bytes>) -> BoxFuture<Result<Response, InvokeError>> {
        match to_legacy(&request).and_then(split::<T>) {
            Ok((data, context)) => {
                let future = (self.function)(data, context);
                // `map`: see `CloudEventFunction`.
                Box::pin(future.map(|result| event_result(result)))
            }
            Err(rejection) => refused(rejection),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(content_type: &str, body: &str) -> http::Request<Bytes> {
        http::Request::post("/")
            .header("content-type", content_type)
            .body(Bytes::copy_from_slice(body.as_bytes()))
            .expect("request")
    }

    #[test]
    fn both_legacy_shapes_give_the_same_context() {
        let nested = r#"{"context":{"eventId":"1","timestamp":"2020-09-29T11:32:00+00:00","eventType":"t","resource":{"service":"s","name":"n","type":"k"}},"data":{"a":1}}"#;
        let flat = r#"{"eventId":"1","timestamp":"2020-09-29T11:32:00Z","eventType":"t","resource":{"service":"s","name":"n","type":"k"},"data":{"a":1}}"#;
        let a: (Value, EventContext) =
            split(to_legacy(&post("application/json", nested)).expect("nested")).expect("split");
        let b: (Value, EventContext) =
            split(to_legacy(&post("application/json", flat)).expect("flat")).expect("split");
        assert_eq!(a, b);
        assert_eq!(a.1.timestamp.as_deref(), Some("2020-09-29T11:32:00Z"));
        assert_eq!(a.1.resource.name(), Some("n"));
        assert_eq!(a.1.resource.service(), Some("s"));
    }

    #[test]
    fn wrong_field_types_are_rejected_with_the_field_named() {
        for (body, names) in [
            (
                r#"{"eventId":1,"timestamp":"2020-09-29T11:32:00Z","eventType":"t","resource":"r","data":{}}"#,
                "eventId",
            ),
            (
                r#"{"eventId":"1","timestamp":5,"eventType":"t","resource":"r","data":{}}"#,
                "timestamp",
            ),
            (
                r#"{"eventId":"1","timestamp":"2020-09-29T11:32:00Z","eventType":["t"],"resource":"r","data":{}}"#,
                "eventType",
            ),
            (
                r#"{"eventId":"1","timestamp":"2020-09-29T11:32:00Z","eventType":"t","resource":7,"data":{}}"#,
                "resource",
            ),
            (r#"{"context":"x","data":{}}"#, "not an event"),
        ] {
            let rejection = to_legacy(&post("application/json", body)).expect_err("rejected");
            assert_eq!(rejection.status, http::StatusCode::BAD_REQUEST);
            assert!(
                rejection.message.contains(names),
                "{body}: {}",
                rejection.message
            );
        }
    }

    #[derive(Debug, Deserialize)]
    struct Message {
        #[allow(dead_code)]
        data: String,
    }

    #[test]
    fn typed_data_names_the_failing_field() {
        let body = r#"{"eventId":"1","timestamp":"2020-09-29T11:32:00Z","eventType":"t","resource":"r","data":{"data":7}}"#;
        let rejection =
            split::<Message>(to_legacy(&post("application/json", body)).expect("legacy"))
                .expect_err("rejected");
        assert!(
            rejection.message.contains("`data`"),
            "{}",
            rejection.message
        );
    }

    #[test]
    fn data_sent_by_hand_is_taken_as_it_comes() {
        let (data, context): (Value, EventContext) =
            split(to_legacy(&post("application/json", r#"{"data":{"n":1}}"#)).expect("data"))
                .expect("split");
        assert_eq!(data, serde_json::json!({"n": 1}));
        assert_eq!(context.event_type, "");
        let (data, _): (Value, EventContext) =
            split(to_legacy(&post("application/json", r#"[1,2]"#)).expect("plain")).expect("split");
        assert_eq!(data, serde_json::json!([1, 2]));
        let (data, _): (Value, EventContext) =
            split(to_legacy(&post("application/json", r#"{"name":"x","data":1}"#)).expect("plain"))
                .expect("split");
        assert_eq!(data, serde_json::json!({"name": "x", "data": 1}));
    }

    #[test]
    fn cloud_events_are_converted() {
        let request = http::Request::post("/")
            .header("ce-specversion", "1.0")
            .header("ce-id", "42")
            .header("ce-source", "//pubsub.googleapis.com/projects/p/topics/t")
            .header("ce-type", "google.cloud.pubsub.topic.v1.messagePublished")
            .header("ce-time", "2020-09-29T13:32:00.5+02:00")
            .header("content-type", "application/json")
            .body(Bytes::from_static(
                br#"{"message":{"data":"aGk=","messageId":"42"}}"#,
            ))
            .expect("request");
        let (data, context): (Value, EventContext) =
            split(to_legacy(&request).expect("legacy")).expect("split");
        assert_eq!(context.event_type, "google.pubsub.topic.publish");
        assert_eq!(
            context.timestamp.as_deref(),
            Some("2020-09-29T11:32:00.500Z")
        );
        assert_eq!(data, serde_json::json!({"data": "aGk="}));
    }
}
