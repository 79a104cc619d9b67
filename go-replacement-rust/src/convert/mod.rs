//! Conversion between legacy "background event" bodies and CloudEvents.
//!
//! Before CloudEvents, Google Cloud Functions delivered events as
//! `{"data": ..., "context": {"eventId", "timestamp", "eventType", "resource"}}`
//! (or with the context fields at the top level). A framework must accept either
//! form and hand the function the one its signature expects, so both directions
//! live here. Everything type-specific comes from one static table: each row pairs
//! a legacy event type with its CloudEvent type and points at the event family
//! whose rules (service name, how the legacy resource splits into `source` and
//! `subject`, how `data` is reshaped) apply.
//!
//! | CloudEvent type | legacy event type |
//! | --- | --- |
//! | `google.cloud.pubsub.topic.v1.messagePublished` | `google.pubsub.topic.publish` (also `providers/cloud.pubsub/eventTypes/topic.publish` as input) |
//! | `google.cloud.storage.object.v1.{finalized,deleted,archived,metadataUpdated}` | `google.storage.object.{finalize,delete,archive,metadataUpdate}` (also `providers/cloud.storage/eventTypes/object.change` as input) |
//! | `google.cloud.firestore.document.v1.{written,created,updated,deleted}` | `providers/cloud.firestore/eventTypes/document.{write,create,update,delete}` |
//! | `google.firebase.auth.user.v1.{created,deleted}` | `providers/firebase.auth/eventTypes/user.{create,delete}` |
//! | `google.firebase.analytics.log.v1.written` | `providers/google.firebase.analytics/eventTypes/event.log` |
//! | `google.firebase.database.ref.v1.{created,written,updated,deleted}` | `providers/google.firebase.database/eventTypes/ref.{create,write,update,delete}` |
//!
//! # Choices where the public references are silent or disagree
//!
//! * **Unknown legacy types** convert with the type unchanged, `data` unchanged and
//!   no `subject`. The source is `//<service>/<resource>`, the service being the
//!   resource object's `service` or, failing that, the one of the family whose
//!   legacy prefix the type starts with (`providers/cloud.firestore/`,
//!   `google.storage.`, ...). With no service at all, the resource string itself
//!   becomes the source (a relative URI reference, which CloudEvents allows).
//! * **Unknown CloudEvent types** convert with the type unchanged, `data` unchanged
//!   and a string resource: the source's path after `//<service>/` (the whole
//!   source when it has no such form) followed by `/<subject>` when there is one.
//! * **Known legacy types** take their service from the table, not from the
//!   resource object, because the table also decides how the resource is split.
//! * **Firebase Realtime Database**: a `domain` of `firebaseio.com` means
//!   `us-central1` and `<location>.firebasedatabase.app` means `<location>`; an
//!   absent `domain` also means `us-central1` (the only location that existed
//!   before the field was added), and any other `domain` is an error. The reverse
//!   conversion drops `locations/<location>` from the resource, as legacy
//!   resources never carried it.
//! * **Firebase Analytics** uses the service `firebaseanalytics.googleapis.com`,
//!   the name Eventarc gives it (the Go and Node.js frameworks write
//!   `firebase.googleapis.com`). The reverse conversion is keyed on the event type,
//!   so it accepts either.
//! * **Timestamps** are RFC 3339 date-times. Output is always UTC with a `Z`
//!   suffix; other offsets are shifted to UTC and fractional seconds are kept
//!   digit for digit. A CloudEvent without `time` gives a legacy context without
//!   `timestamp` rather than an invented one.
//! * **`null`** counts as absent for every field, so `"eventId": null` is reported
//!   as a missing field. `event_id` and `event_type` are accepted as spellings of
//!   `eventId` and `eventType`.
//! * A CloudEvent whose payload is in `data_base64` (structured mode, binary data)
//!   is decoded: JSON if the bytes parse as JSON, else a string if they are UTF-8,
//!   else the base64 text unchanged.
//! * Storage's legacy resource `type` is the object's `kind`, `storage#object`
//!   when `data` has none.

use std::fmt;

use base64::Engine as _;
use serde_json::{Map, Value};

mod resource;
mod table;
#[cfg(test)]
mod tests;
mod time;

use resource::*;
use table::*;
use time::normalized_time;

/// Why an event body could not be converted.
///
/// [`Display`](fmt::Display) gives a message that names the problem and the field
/// involved, e.g. ``legacy event: missing field `eventId` `` or
/// ``legacy event: `timestamp` must be a string, found a number``.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertError(String);

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConvertError {}

const SPEC_VERSION: &str = "1.0";
const JSON_CONTENT_TYPE: &str = "application/json";
/// Error messages quote offending values; this keeps a megabyte string from
/// ending up in a log line.
const PREVIEW_CHARS: usize = 64;

/// Firebase Auth metadata fields whose names differ: (legacy, CloudEvent).
const AUTH_METADATA_RENAMES: &[(&str, &str)] = &[
    ("createdAt", "createTime"),
    ("lastSignedInAt", "lastSignInTime"),
];

/// Which form was being read, so messages say where the problem is.
#[derive(Debug, Clone, Copy)]
pub(super) enum Side {
    Legacy,
    CloudEvent,
}

impl Side {
    pub(super) fn error(self, message: fmt::Arguments<'_>) -> ConvertError {
        let form = match self {
            Side::Legacy => "legacy event",
            Side::CloudEvent => "cloud event",
        };
        ConvertError(format!("{form}: {message}"))
    }
}

pub(super) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A quoted, length-capped rendering of `text` for error messages.
pub(super) fn preview(text: &str) -> String {
    match text.char_indices().nth(PREVIEW_CHARS) {
        Some((cut, _)) => format!("{:?}...", text.get(..cut).unwrap_or_default()),
        None => format!("{text:?}"),
    }
}

/// The first non-null value among `keys` (a field and its alternative spellings).
pub(super) fn field<'a>(object: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter()
        .find_map(|key| object.get(*key).filter(|value| !value.is_null()))
}

pub(super) fn required_str<'a>(
    object: &'a Map<String, Value>,
    keys: &[&str],
    label: &str,
    side: Side,
) -> Result<&'a str, ConvertError> {
    match field(object, keys) {
        None => Err(side.error(format_args!("missing field `{label}`"))),
        Some(Value::String(text)) if text.is_empty() => {
            Err(side.error(format_args!("`{label}` must not be empty")))
        }
        Some(Value::String(text)) => Ok(text),
        Some(other) => Err(side.error(format_args!(
            "`{label}` must be a string, found {}",
            kind(other)
        ))),
    }
}

/// An optional string attribute; an empty string counts as absent.
pub(super) fn optional_str<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    side: Side,
) -> Result<Option<&'a str>, ConvertError> {
    match field(object, &[key]) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.as_str()).filter(|text| !text.is_empty())),
        Some(other) => Err(side.error(format_args!(
            "`{key}` must be a string, found {}",
            kind(other)
        ))),
    }
}

/// Whether a `messageId`/`publishTime` slot should be filled in; an empty or
/// null value carries no information, so it is replaced like a missing one.
fn is_blank(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(text)) => text.is_empty(),
        Some(_) => false,
    }
}

fn wrap_pubsub_message(data: Option<Value>, event_id: &str, time: &str) -> Value {
    let mut message = match data {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(message)) => message,
        Some(other) => return single_entry("message", other),
    };
    if is_blank(message.get("messageId")) {
        message.insert("messageId".to_owned(), Value::from(event_id));
    }
    if is_blank(message.get("publishTime")) {
        message.insert("publishTime".to_owned(), Value::from(time));
    }
    single_entry("message", Value::Object(message))
}

/// Legacy Pub/Sub data is the bare message: the CloudEvent wrapper (with its
/// `subscription`) goes, and so do the fields the context already carries.
fn unwrap_pubsub_message(data: Value) -> Value {
    let message = match data {
        Value::Object(mut wrapper) => match wrapper.remove("message") {
            Some(message) => message,
            None => Value::Object(wrapper),
        },
        other => other,
    };
    match message {
        Value::Object(mut message) => {
            message.remove("messageId");
            message.remove("publishTime");
            Value::Object(message)
        }
        other => other,
    }
}

fn rename_auth_metadata(data: &mut Value, to_cloud_event: bool) {
    let Some(metadata) = data.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    for (legacy, cloud_event) in AUTH_METADATA_RENAMES {
        let (from, to) = if to_cloud_event {
            (legacy, cloud_event)
        } else {
            (cloud_event, legacy)
        };
        if let Some(value) = metadata.remove(*from) {
            metadata.insert((*to).to_owned(), value);
        }
    }
}

fn user_subject(data: Option<&Value>) -> Option<String> {
    let uid = data?.get("uid")?.as_str()?;
    (!uid.is_empty()).then(|| format!("users/{uid}"))
}

fn single_entry(key: &str, value: Value) -> Value {
    let mut object = Map::new();
    object.insert(key.to_owned(), value);
    Value::Object(object)
}

/// The path after `//<service>/` in a CloudEvent source, if it has that form.
fn source_path(source: &str) -> Option<&str> {
    let (service, path) = source.strip_prefix("//")?.split_once('/')?;
    (!service.is_empty() && !path.is_empty()).then_some(path)
}

fn join_subject(path: &str, subject: Option<&str>) -> String {
    match subject {
        Some(subject) => format!("{path}/{subject}"),
        None => path.to_owned(),
    }
}

/// CloudEvent type, source, subject and data for a legacy event of a known type.
fn known_cloud_event_parts(
    row: &Row,
    body: &Map<String, Value>,
    context: &Map<String, Value>,
    resource: &ResourceRef<'_>,
    event_id: &str,
    time: &str,
    data: Option<Value>,
) -> Result<(String, Option<String>, Option<Value>), ConvertError> {
    let family = row.family;
    let (path, mut subject) = match family.subject {
        Subject::Path {
            prefix,
            keyword,
            single_segment,
        } => {
            let (path, subject) = split_resource(resource.name, prefix, keyword, single_segment)
                .ok_or_else(|| {
                    Side::Legacy.error(format_args!(
                        "`resource` {} does not match the layout {} of {}",
                        preview(resource.name),
                        describe_layout(prefix, keyword, single_segment),
                        row.legacy_type
                    ))
                })?;
            (path, Some(subject.to_owned()))
        }
        Subject::None | Subject::UserId => (resource.name, None),
    };
    let path = match family.location_after {
        Some(after) => {
            let location = database_location(body, context)?;
            insert_location(path, after, location).ok_or_else(|| {
                Side::Legacy.error(format_args!(
                    "`resource` {} has no room for a location",
                    preview(resource.name)
                ))
            })?
        }
        None => path.to_owned(),
    };
    let data = match family.payload {
        Payload::Same => data,
        Payload::PubSubMessage => Some(wrap_pubsub_message(data, event_id, time)),
        Payload::AuthUser => data.map(|mut data| {
            rename_auth_metadata(&mut data, true);
            data
        }),
    };
    if let Subject::UserId = family.subject {
        subject = user_subject(data.as_ref());
    }
    Ok((format!("//{}/{path}", family.service), subject, data))
}

/// The checked fields of a legacy event body, in either shape.
struct LegacyParts<'a> {
    fields: &'a Map<String, Value>,
    context: &'a Map<String, Value>,
    event_id: &'a str,
    event_type: &'a str,
    /// The timestamp in UTC with a `Z` suffix.
    time: String,
    resource: ResourceRef<'a>,
}

fn legacy_parts(body: &Value) -> Result<LegacyParts<'_>, ConvertError> {
    let side = Side::Legacy;
    let fields = body.as_object().ok_or_else(|| {
        side.error(format_args!(
            "body must be a JSON object, found {}",
            kind(body)
        ))
    })?;
    let context = match fields.get("context") {
        None | Some(Value::Null) => fields,
        Some(Value::Object(context)) => context,
        Some(other) => {
            return Err(side.error(format_args!(
                "`context` must be an object, found {}",
                kind(other)
            )));
        }
    };
    let event_id = required_str(context, &["eventId", "event_id"], "eventId", side)?;
    let event_type = required_str(context, &["eventType", "event_type"], "eventType", side)?;
    let timestamp = required_str(context, &["timestamp"], "timestamp", side)?;
    let time = normalized_time(timestamp, "timestamp", side)?;
    let resource = legacy_resource(context)?;
    Ok(LegacyParts {
        fields,
        context,
        event_id,
        event_type,
        time,
        resource,
    })
}

/// Converts a legacy background event body to a CloudEvent in structured JSON form.
///
/// Accepts both legacy shapes: context fields (`eventId`, `timestamp`,
/// `eventType`, `resource`) inside a `context` object or at the top level, and
/// `resource` as a string or as `{"service", "name", "type"}`. The result has
/// `specversion` `"1.0"`, `id`, `source`, `type`, `subject` (when the type has
/// one), `time` in UTC with a `Z` suffix, `datacontenttype` `"application/json"`
/// and `data` (omitted when the legacy event had none). Types missing from the
/// conversion table pass through unchanged; see the module documentation.
///
/// # Errors
///
/// A [`ConvertError`] naming the field when the body is not an object, a
/// required field is missing or has the wrong type, `timestamp` is not an
/// RFC 3339 date-time, or the resource of a known type does not have that
/// type's layout.
///
/// # Examples
///
/// ```
/// use functions_framework::convert::legacy_to_cloud_event;
/// use serde_json::json;
///
/// let legacy = json!({
///     "context": {
///         "eventId": "1234",
///         "timestamp": "2020-09-29T13:32:00.123+02:00",
///         "eventType": "google.storage.object.finalize",
///         "resource": {
///             "service": "storage.googleapis.com",
///             "name": "projects/_/buckets/my-bucket/objects/folder/a.txt",
///             "type": "storage#object"
///         }
///     },
///     "data": {"bucket": "my-bucket", "name": "folder/a.txt"}
/// });
/// let event = legacy_to_cloud_event(&legacy)?;
/// assert_eq!(event["type"], "google.cloud.storage.object.v1.finalized");
/// assert_eq!(event["source"], "//storage.googleapis.com/projects/_/buckets/my-bucket");
/// assert_eq!(event["subject"], "objects/folder/a.txt");
/// assert_eq!(event["time"], "2020-09-29T11:32:00.123Z");
/// assert_eq!(event["data"]["name"], "folder/a.txt");
/// # Ok::<(), functions_framework::convert::ConvertError>(())
/// ```
pub fn legacy_to_cloud_event(body: &Value) -> Result<Value, ConvertError> {
    let LegacyParts {
        fields,
        context,
        event_id,
        event_type,
        time,
        resource,
    } = legacy_parts(body)?;
    let data = fields.get("data").cloned();

    let (cloud_event_type, (source, subject, data)) = match row_for_legacy_type(event_type) {
        Some(row) => (
            row.cloud_event_type,
            known_cloud_event_parts(row, fields, context, &resource, event_id, &time, data)?,
        ),
        None => {
            let service = resource
                .service
                .or_else(|| service_for_legacy_prefix(event_type));
            let source = match service {
                Some(service) => format!("//{service}/{}", resource.name),
                None => resource.name.to_owned(),
            };
            (event_type, (source, None, data))
        }
    };

    let mut event = Map::new();
    event.insert("specversion".to_owned(), Value::from(SPEC_VERSION));
    event.insert("id".to_owned(), Value::from(event_id));
    event.insert("source".to_owned(), Value::from(source));
    event.insert("type".to_owned(), Value::from(cloud_event_type));
    if let Some(subject) = subject {
        event.insert("subject".to_owned(), Value::from(subject));
    }
    event.insert("time".to_owned(), Value::from(time));
    event.insert("datacontenttype".to_owned(), Value::from(JSON_CONTENT_TYPE));
    if let Some(data) = data {
        event.insert("data".to_owned(), data);
    }
    Ok(Value::Object(event))
}

/// The CloudEvent payload: `data`, or else decoded `data_base64`, or else null.
fn cloud_event_data(attributes: &Map<String, Value>) -> Result<Value, ConvertError> {
    if let Some(data) = attributes.get("data") {
        return Ok(data.clone());
    }
    let side = Side::CloudEvent;
    match field(attributes, &["data_base64"]) {
        None => Ok(Value::Null),
        Some(Value::String(encoded)) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| side.error(format_args!("`data_base64` is not valid base64")))?;
            Ok(serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                String::from_utf8(bytes).map_or_else(|_| Value::from(encoded.as_str()), Value::from)
            }))
        }
        Some(other) => Err(side.error(format_args!(
            "`data_base64` must be a string, found {}",
            kind(other)
        ))),
    }
}

/// Legacy event type, resource and data for a CloudEvent of a known type.
fn known_legacy_parts(
    row: &Row,
    source: &str,
    subject: Option<&str>,
    data: Value,
) -> Result<(&'static str, Value, Value), ConvertError> {
    let side = Side::CloudEvent;
    let family = row.family;
    let path = source_path(source).ok_or_else(|| {
        side.error(format_args!(
            "`source` {} is not of the form //<service>/<resource>",
            preview(source)
        ))
    })?;
    let path = match family.location_after {
        Some(after) => strip_location(path, after),
        None => path.to_owned(),
    };
    let path = match family.subject {
        Subject::Path { .. } => {
            let subject = subject.ok_or_else(|| {
                side.error(format_args!(
                    "missing field `subject` (required for {})",
                    row.cloud_event_type
                ))
            })?;
            join_subject(&path, Some(subject))
        }
        Subject::None | Subject::UserId => path,
    };
    let data = match family.payload {
        Payload::Same => data,
        Payload::PubSubMessage => unwrap_pubsub_message(data),
        Payload::AuthUser => {
            let mut data = data;
            rename_auth_metadata(&mut data, false);
            data
        }
    };
    let resource = match family.legacy_resource {
        LegacyResource::Path => Value::from(path),
        LegacyResource::Object {
            type_field,
            default_type,
        } => {
            let resource_type = type_field
                .and_then(|key| data.get(key))
                .and_then(Value::as_str)
                .unwrap_or(default_type);
            let mut resource = Map::new();
            resource.insert("service".to_owned(), Value::from(family.service));
            resource.insert("name".to_owned(), Value::from(path));
            resource.insert("type".to_owned(), Value::from(resource_type));
            Value::Object(resource)
        }
    };
    Ok((row.legacy_type, resource, data))
}

/// Converts a CloudEvent in structured JSON form to a legacy background event.
///
/// `data` must already be a JSON value (or absent, or given as `data_base64`).
/// The result is `{"data": ..., "context": {"eventId", "timestamp", "eventType",
/// "resource"}}`, with `timestamp` in UTC with a `Z` suffix (left out when the
/// CloudEvent has no `time`). Known types get their legacy type, resource shape
/// and data shape back (Pub/Sub unwrapped, Firebase Auth metadata renamed,
/// Realtime Database location dropped); unknown types keep their type and get
/// the source-derived path as resource; see the module documentation.
///
/// # Errors
///
/// A [`ConvertError`] naming the field when the event is not an object, `id`,
/// `source` or `type` is missing or not a string, `time` is not an RFC 3339
/// date-time, `subject` is not a string, `data_base64` is not base64, or a known
/// type lacks the source layout or subject it needs.
///
/// # Examples
///
/// ```
/// use functions_framework::convert::cloud_event_to_legacy;
/// use serde_json::json;
///
/// let event = json!({
///     "specversion": "1.0",
///     "id": "1234",
///     "source": "//pubsub.googleapis.com/projects/my-project/topics/my-topic",
///     "type": "google.cloud.pubsub.topic.v1.messagePublished",
///     "time": "2020-09-29T11:32:00.123Z",
///     "datacontenttype": "application/json",
///     "data": {
///         "message": {
///             "messageId": "1234",
///             "publishTime": "2020-09-29T11:32:00.123Z",
///             "data": "aGVsbG8="
///         }
///     }
/// });
/// let legacy = cloud_event_to_legacy(&event)?;
/// assert_eq!(legacy["context"]["eventType"], "google.pubsub.topic.publish");
/// assert_eq!(legacy["context"]["resource"]["name"], "projects/my-project/topics/my-topic");
/// assert_eq!(legacy["context"]["timestamp"], "2020-09-29T11:32:00.123Z");
/// assert_eq!(legacy["data"], json!({"data": "aGVsbG8="}));
/// # Ok::<(), functions_framework::convert::ConvertError>(())
/// ```
pub fn cloud_event_to_legacy(event: &Value) -> Result<Value, ConvertError> {
    let side = Side::CloudEvent;
    let attributes = event.as_object().ok_or_else(|| {
        side.error(format_args!(
            "event must be a JSON object, found {}",
            kind(event)
        ))
    })?;
    let id = required_str(attributes, &["id"], "id", side)?;
    let source = required_str(attributes, &["source"], "source", side)?;
    let cloud_event_type = required_str(attributes, &["type"], "type", side)?;
    let subject = optional_str(attributes, "subject", side)?;
    let timestamp = match field(attributes, &["time"]) {
        None => None,
        Some(Value::String(raw)) => Some(normalized_time(raw, "time", side)?),
        Some(other) => {
            return Err(side.error(format_args!(
                "`time` must be a string, found {}",
                kind(other)
            )));
        }
    };
    let data = cloud_event_data(attributes)?;

    let (event_type, resource, data) = match row_for_cloud_event_type(cloud_event_type) {
        Some(row) => known_legacy_parts(row, source, subject, data)?,
        None => {
            let path = source_path(source).unwrap_or(source);
            (
                cloud_event_type,
                Value::from(join_subject(path, subject)),
                data,
            )
        }
    };

    let mut context = Map::new();
    context.insert("eventId".to_owned(), Value::from(id));
    if let Some(timestamp) = timestamp {
        context.insert("timestamp".to_owned(), Value::from(timestamp));
    }
    context.insert("eventType".to_owned(), Value::from(event_type));
    context.insert("resource".to_owned(), resource);
    let mut legacy = Map::new();
    legacy.insert("data".to_owned(), data);
    legacy.insert("context".to_owned(), Value::Object(context));
    Ok(Value::Object(legacy))
}

/// Puts a legacy event body into its canonical shape for an event function:
/// `{"data": ..., "context": {"eventId", "timestamp", "eventType", "resource"}}`.
///
/// Accepts the same shapes as [`legacy_to_cloud_event`] and checks the same
/// fields; the type and resource are kept as sent (no table look-up), and the
/// timestamp is written in UTC with a `Z` suffix.
///
/// # Errors
///
/// A [`ConvertError`] naming the field, as for [`legacy_to_cloud_event`].
///
/// # Examples
///
/// ```
/// use functions_framework::convert::normalize_legacy;
/// use serde_json::json;
///
/// let body = json!({
///     "eventId": "1",
///     "timestamp": "2020-09-29T13:32:00+02:00",
///     "eventType": "providers/cloud.firestore/eventTypes/document.write",
///     "resource": "projects/p/databases/(default)/documents/a/b",
///     "data": {"value": 1}
/// });
/// let legacy = normalize_legacy(&body)?;
/// assert_eq!(legacy["context"]["timestamp"], "2020-09-29T11:32:00Z");
/// assert_eq!(legacy["data"], json!({"value": 1}));
/// # Ok::<(), functions_framework::convert::ConvertError>(())
/// ```
pub fn normalize_legacy(body: &Value) -> Result<Value, ConvertError> {
    let LegacyParts {
        fields,
        context,
        event_id,
        event_type,
        time: timestamp,
        ..
    } = legacy_parts(body)?;
    let resource = field(context, &["resource"])
        .cloned()
        .unwrap_or(Value::Null);

    let mut normalized = Map::new();
    normalized.insert("eventId".to_owned(), Value::from(event_id));
    normalized.insert("timestamp".to_owned(), Value::from(timestamp));
    normalized.insert("eventType".to_owned(), Value::from(event_type));
    normalized.insert("resource".to_owned(), resource);
    let mut legacy = Map::new();
    legacy.insert(
        "data".to_owned(),
        fields.get("data").cloned().unwrap_or(Value::Null),
    );
    legacy.insert("context".to_owned(), Value::Object(normalized));
    Ok(Value::Object(legacy))
}

/// Tells a legacy event body from other JSON.
///
/// True when `body` is an object with a `context` object, or with `data` beside a
/// top-level `eventType` or `eventId` (or their `event_type` / `event_id`
/// spellings). Only the shape is checked; [`legacy_to_cloud_event`] validates
/// the fields.
pub fn is_legacy_event(body: &Value) -> bool {
    let Some(fields) = body.as_object() else {
        return false;
    };
    if fields.get("context").is_some_and(Value::is_object) {
        return true;
    }
    fields.contains_key("data")
        && ["eventType", "eventId", "event_type", "event_id"]
            .iter()
            .any(|key| fields.contains_key(*key))
}
