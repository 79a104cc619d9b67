//! CloudEvent functions: the SDK's [`Event`] as it came, or a [`CloudEvent<T>`] with its data
//! decoded. Legacy event bodies are converted to CloudEvents on the way in.

use std::marker::PhantomData;

use bytes::Bytes;
use cloudevents::{AttributesReader, Data, Event};
use futures_util::FutureExt;
use http::StatusCode;
use serde::de::DeserializeOwned;

use super::decode::{
    DataForm, DecodedEvent, NOT_AN_EVENT, decode_with, is_protobuf, json_from_slice,
    json_from_value,
};
use super::{BoxFuture, Invoke, refused};
use crate::convert;
use crate::error::{InvokeError, Rejection};
use crate::{Error, Response};

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
    /// Whether binary-mode JSON data is handed over as the request's bytes, through
    /// `from_cloud_event_and_json`, rather than parsed into the event. `CloudEvent<T>` takes
    /// the bytes: it decodes them straight into `T`.
    #[doc(hidden)]
    const RAW_JSON_DATA: bool = false;

    /// Builds `Self` from a decoded event; `Err` is answered with 400 and its message, and the
    /// function is not invoked.
    fn from_cloud_event(event: Event) -> Result<Self, EventDataError>;

    /// Builds `Self` from an event without its data and the data, JSON, as it came (only
    /// called when `RAW_JSON_DATA` is true).
    #[doc(hidden)]
    fn from_cloud_event_and_json(mut event: Event, json: Bytes) -> Result<Self, EventDataError> {
        event.set_data_unchecked(Data::Binary(json.to_vec()));
        Self::from_cloud_event(event)
    }
}

/// Why an event's data does not fit what the function takes: answered with 400 and this
/// message, which names the failing field.
///
/// ```
/// use functions_framework::EventDataError;
///
/// let error = EventDataError::new("event data: `size`: invalid type: string \"big\"");
/// assert!(error.to_string().contains("`size`"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDataError {
    message: String,
}

impl EventDataError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        EventDataError {
            message: message.into(),
        }
    }
}

impl std::fmt::Display for EventDataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EventDataError {}

impl FromCloudEvent for Event {
    fn from_cloud_event(event: Event) -> Result<Self, EventDataError> {
        Ok(event)
    }
}

impl<T: DeserializeOwned + Send + 'static> FromCloudEvent for CloudEvent<T> {
    const RAW_JSON_DATA: bool = true;

    fn from_cloud_event_and_json(event: Event, json: Bytes) -> Result<Self, EventDataError> {
        let data = json_from_slice("event data", &json).map_err(EventDataError::new)?;
        Ok(CloudEvent { event, data })
    }

    fn from_cloud_event(mut event: Event) -> Result<Self, EventDataError> {
        let protobuf = event.datacontenttype().is_some_and(is_protobuf);
        let (_, _, data) = event.take_data();
        let data = if protobuf {
            decode_protobuf(data.as_ref(), event.ty())?
        } else {
            decode_data(data.as_ref())?
        };
        Ok(CloudEvent { event, data })
    }
}

/// Decodes protobuf event data into `T`, one of the Google event data types
/// ([`events::google`](crate::events::google)).
fn decode_protobuf<T: 'static>(data: Option<&Data>, ty: &str) -> Result<T, EventDataError> {
    let bytes: &[u8] = match data {
        Some(Data::Binary(bytes)) => bytes,
        Some(Data::String(text)) => text.as_bytes(),
        Some(Data::Json(_)) => {
            return Err(EventDataError::new(format!(
                "event data of type {ty}: datacontenttype says application/protobuf, but the \
                 data is JSON; send the protobuf bytes (data_base64 in structured mode)"
            )));
        }
        None => &[],
    };
    // The generated types live in a private module of the events crate; name them by the
    // path users write.
    let target = std::any::type_name::<T>().replace(
        "functions_framework_events::generated::",
        "functions_framework::events::",
    );
    match functions_framework_events::decode_protobuf::<T>(bytes) {
        Some(Ok(value)) => Ok(value),
        Some(Err(error)) => Err(EventDataError::new(format!(
            "event data of type {ty}: the application/protobuf data does not decode as \
             {target}: {error}"
        ))),
        None => Err(EventDataError::new(format!(
            "event data of type {ty} is application/protobuf, which {target} cannot take: take \
             the event's data type from functions_framework::events::google (with its \
             product's feature of functions-framework-events), or Event"
        ))),
    }
}

/// Decodes event data into `T`, naming the failing field on error.
fn decode_data<T: DeserializeOwned>(data: Option<&Data>) -> Result<T, EventDataError> {
    const WHAT: &str = "event data";
    let result = match data {
        Some(Data::Json(json)) => json_from_value(WHAT, json),
        Some(Data::String(text)) => json_from_slice(WHAT, text.as_bytes()),
        Some(Data::Binary(bytes)) => json_from_slice(WHAT, bytes),
        None => json_from_value(WHAT, &serde_json::Value::Null),
    };
    result.map_err(EventDataError::new)
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
    Err: Into<Error>,
{
    fn invoke(&self, request: http::Request<Bytes>) -> BoxFuture<Result<Response, InvokeError>> {
        let form = if E::RAW_JSON_DATA {
            DataForm::Raw
        } else {
            DataForm::Parsed
        };
        let prepared = to_cloud_event_with(&request, form).and_then(|(event, json)| {
            match json {
                Some(json) => E::from_cloud_event_and_json(event, json),
                None => E::from_cloud_event(event),
            }
            .map_err(|e| Rejection::bad_request(e.to_string()))
        });
        match prepared {
            Ok(argument) => {
                let future = (self.function)(argument);
                // `map`, not an `async` block: a block would hold the function's future twice
                // (before and while it is awaited), and the box is made per request.
                Box::pin(future.map(|result| event_result(result)))
            }
            Err(rejection) => refused(rejection),
        }
    }
}

/// The CloudEvent a CloudEvent function taking `Event` receives, converting legacy bodies.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn to_cloud_event(request: &http::Request<Bytes>) -> Result<Event, Rejection> {
    to_cloud_event_with(request, DataForm::Parsed).map(|(event, _)| event)
}

/// [`to_cloud_event`], with binary-mode JSON data in the form asked for: with
/// [`DataForm::Raw`], such data comes beside the event, as the request's bytes.
pub(crate) fn to_cloud_event_with(
    request: &http::Request<Bytes>,
    form: DataForm,
) -> Result<(Event, Option<Bytes>), Rejection> {
    match decode_with(request, form)? {
        DecodedEvent::CloudEvent(event, json) => Ok((*event, json)),
        DecodedEvent::Plain(_) => Err(Rejection::bad_request(NOT_AN_EVENT)),
        DecodedEvent::Legacy(body) => {
            let structured = convert::legacy_to_cloud_event(&body)
                .map_err(|e| Rejection::bad_request(e.to_string()))?;
            let event = serde_json::from_value(structured).map_err(|e| {
                Rejection::bad_request(format!(
                    "legacy event does not make a valid CloudEvent: {e}"
                ))
            })?;
            Ok((event, None))
        }
    }
}

/// Success is 204 No Content; an error fails the invocation (500), so that Pub/Sub and
/// Eventarc retry.
pub(crate) fn event_result<E: Into<Error>>(result: Result<(), E>) -> Result<Response, InvokeError> {
    match result {
        Ok(()) => Ok(crate::error::status_only(StatusCode::NO_CONTENT)),
        Err(error) => Err(InvokeError::Failed(error.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_requests::{BINARY, post};
    use super::*;

    #[test]
    fn plain_json_is_not_an_event_for_cloud_event_functions() {
        let rejection =
            to_cloud_event(&post(&[("content-type", "application/json")], r#"{"a":1}"#))
                .expect_err("refused");
        assert!(
            rejection.message.starts_with("not an event"),
            "{}",
            rejection.message
        );
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
        let message = CloudEvent::<Object>::from_cloud_event(event)
            .expect_err("rejected")
            .to_string();
        assert!(message.contains("`size`"), "{message}");
        let event = to_cloud_event(&post(&BINARY, r#"{"bucket":"b","size":3}"#)).expect("event");
        let decoded = CloudEvent::<Object>::from_cloud_event(event).expect("decoded");
        assert_eq!(decoded.id(), "1");
        assert!(decoded.event.data().is_none());
    }
}
