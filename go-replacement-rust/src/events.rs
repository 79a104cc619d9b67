//! Typed data of the common Google Cloud events, for [`CloudEvent<T>`](crate::CloudEvent)
//! and legacy event functions: no JSON parsed by hand.
//!
//! ```
//! use functions_framework::events::{MessagePublishedData, StorageObjectData};
//! use functions_framework::{CloudEvent, Error, Functions};
//!
//! async fn on_message(event: CloudEvent<MessagePublishedData>) -> Result<(), Error> {
//!     let text = event.data.message.text().unwrap_or_default();
//!     println!("message {}: {text}", event.data.message.message_id);
//!     Ok(())
//! }
//!
//! async fn on_upload(event: CloudEvent<StorageObjectData>) -> Result<(), Error> {
//!     println!("gs://{}/{} ({} bytes)", event.data.bucket, event.data.name, event.data.size.unwrap_or(0));
//!     Ok(())
//! }
//!
//! let app = Functions::new()
//!     .cloud_event("on_message", on_message)
//!     .cloud_event("on_upload", on_upload);
//! # let _ = app;
//! ```

use std::collections::HashMap;

/// Every Google event data type, generated from Google's schemas (googleapis/google-cloudevents)
/// by prost and pbjson: protobuf and proto3 JSON both decode into them, and a
/// [`CloudEvent<T>`](crate::CloudEvent) of one of them takes `application/protobuf` data (what
/// Firestore and Datastore triggers send) as well as JSON. The products are the features of
/// the `functions-framework-events` crate (`pubsub`, `storage` and `firestore` by default;
/// `full` for all): add it to `Cargo.toml` with the features of your events.
///
/// ```
/// use functions_framework::events::google::events::cloud::firestore::v1::DocumentEventData;
/// use functions_framework::{CloudEvent, Error, Functions};
///
/// async fn on_write(event: CloudEvent<DocumentEventData>) -> Result<(), Error> {
///     if let Some(document) = &event.data.value {
///         println!("{} has {} fields", document.name, document.fields.len());
///     }
///     Ok(())
/// }
///
/// let app = Functions::new().cloud_event("on_write", on_write);
/// # let _ = app;
/// ```
pub use functions_framework_events::google;
pub use functions_framework_events::{EventData, cloud_event_types};

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Accepts a JSON number or a string holding one: Google APIs write 64-bit integers as
/// strings.
fn u64_from_string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(u64),
        Text(String),
    }
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::Number(n)) => Ok(Some(n)),
        Some(Raw::Text(text)) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("expected an integer, got {text:?}"))),
    }
}

mod base64_bytes {
    use super::*;

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map(Some)
                .map_err(|e| serde::de::Error::custom(format!("`data` is not valid base64: {e}"))),
        }
    }

    pub(super) fn serialize<S: Serializer>(
        data: &Option<Vec<u8>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match data {
            Some(bytes) => {
                s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
            }
            None => s.serialize_none(),
        }
    }
}

/// The data of `google.cloud.pubsub.topic.v1.messagePublished`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagePublishedData {
    /// The message.
    pub message: PubsubMessage,
    /// The subscription that delivered it, `projects/P/subscriptions/S`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
}

/// A Pub/Sub message, its `data` decoded from base64. Also what a legacy event function
/// gets as data for a Pub/Sub trigger.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PubsubMessage {
    /// The payload, decoded.
    #[serde(
        default,
        with = "base64_bytes",
        skip_serializing_if = "Option::is_none"
    )]
    pub data: Option<Vec<u8>>,
    /// The attributes.
    #[serde(default)]
    pub attributes: HashMap<String, String>,
    /// The message id (empty in legacy events, which carry it as the event id).
    #[serde(default)]
    pub message_id: String,
    /// When it was published (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_time: Option<String>,
    /// The ordering key, when the publisher set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering_key: Option<String>,
}

impl PubsubMessage {
    /// The payload as UTF-8 text, when it is.
    pub fn text(&self) -> Option<&str> {
        self.data
            .as_deref()
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
    }

    /// The payload decoded as JSON into `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(self.data.as_deref().unwrap_or_default())
    }
}

/// The data of the `google.cloud.storage.object.v1.*` events: the object's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageObjectData {
    /// The bucket.
    pub bucket: String,
    /// The object name, e.g. `folder/file.txt`.
    pub name: String,
    /// The object's generation.
    #[serde(
        default,
        deserialize_with = "u64_from_string_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub generation: Option<u64>,
    /// The metadata's generation.
    #[serde(
        default,
        deserialize_with = "u64_from_string_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub metageneration: Option<u64>,
    /// The size in bytes.
    #[serde(
        default,
        deserialize_with = "u64_from_string_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub size: Option<u64>,
    /// The content type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The storage class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// Creation time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_created: Option<String>,
    /// Last update time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    /// MD5 of the content, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5_hash: Option<String>,
    /// CRC32C of the content, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32c: Option<String>,
    /// User metadata.
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub metadata: HashMap<String, String>,
}

/// The data of the `google.cloud.firestore.document.v1.*` events in JSON form (and of the
/// legacy Firestore triggers).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentEventData {
    /// The document after the change (absent on delete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Document>,
    /// The document before the change (absent on create).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_value: Option<Document>,
    /// The fields the update changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_mask: Option<DocumentMask>,
}

/// A Firestore document.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    /// `projects/P/databases/(default)/documents/PATH`.
    #[serde(default)]
    pub name: String,
    /// The fields.
    #[serde(default)]
    pub fields: HashMap<String, FirestoreValue>,
    /// Creation time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_time: Option<String>,
    /// Last update time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_time: Option<String>,
}

/// The changed field paths of an update.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentMask {
    /// The field paths.
    #[serde(default)]
    pub field_paths: Vec<String>,
}

/// A Firestore value, as the REST/JSON form writes it (`{"stringValue": "x"}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FirestoreValue {
    /// Null.
    NullValue(Option<String>),
    /// A boolean.
    BooleanValue(bool),
    /// A 64-bit integer (written as a string).
    IntegerValue(String),
    /// A double.
    DoubleValue(f64),
    /// A timestamp (RFC 3339).
    TimestampValue(String),
    /// A string.
    StringValue(String),
    /// Bytes, base64.
    BytesValue(String),
    /// A reference to another document.
    ReferenceValue(String),
    /// A geographic point.
    GeoPointValue {
        /// Latitude.
        latitude: f64,
        /// Longitude.
        longitude: f64,
    },
    /// An array.
    ArrayValue {
        /// The values.
        #[serde(default)]
        values: Vec<FirestoreValue>,
    },
    /// A map.
    MapValue {
        /// The fields.
        #[serde(default)]
        fields: HashMap<String, FirestoreValue>,
    },
}

impl FirestoreValue {
    /// The value as a string, for string-like values.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            FirestoreValue::StringValue(s)
            | FirestoreValue::TimestampValue(s)
            | FirestoreValue::ReferenceValue(s) => Some(s),
            _ => None,
        }
    }

    /// The value as an integer, for integer values.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            FirestoreValue::IntegerValue(s) => s.parse().ok(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(name: &str) -> serde_json::Value {
        let path = format!(
            "{}/../tests/conformance/vectors/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).expect("vector");
        serde_json::from_str(&text).expect("JSON")
    }

    #[test]
    fn pubsub_data_is_decoded_from_base64() {
        let event = vector("pubsub_text-cloudevent-input.json");
        let data: MessagePublishedData =
            serde_json::from_value(event["data"].clone()).expect("decode");
        assert!(data.message.text().is_some_and(|t| !t.is_empty()));
        assert!(!data.message.message_id.is_empty());
        let bad: Result<MessagePublishedData, _> =
            serde_json::from_str(r#"{"message":{"data":"%%%"}}"#);
        assert!(bad.is_err_and(|e| e.to_string().contains("base64")));
        let json = PubsubMessage {
            data: Some(br#"{"a":1}"#.to_vec()),
            ..PubsubMessage::default()
        };
        assert_eq!(
            json.json::<serde_json::Value>().ok(),
            Some(serde_json::json!({"a": 1}))
        );
    }

    #[test]
    fn storage_object_with_integers_as_strings() {
        let event = vector("storage-cloudevent-input.json");
        let data: StorageObjectData =
            serde_json::from_value(event["data"].clone()).expect("decode");
        assert_eq!(data.bucket, "some-bucket");
        assert_eq!(data.name, "folder/Test.cs");
        assert_eq!(data.size, Some(352));
        assert_eq!(data.generation, Some(1_587_627_537_231_057));
        assert_eq!(data.content_type.as_deref(), Some("text/plain"));
        let bad: Result<StorageObjectData, _> =
            serde_json::from_str(r#"{"bucket":"b","name":"n","size":"big"}"#);
        assert!(bad.is_err());
    }

    #[test]
    fn firestore_documents_decode() {
        for name in [
            "firestore_simple-cloudevent-input.json",
            "firestore_complex-cloudevent-input.json",
        ] {
            let event = vector(name);
            let data: DocumentEventData =
                serde_json::from_value(event["data"].clone()).expect(name);
            assert!(data.value.is_some() || data.old_value.is_some(), "{name}");
        }
        let value: FirestoreValue =
            serde_json::from_str(r#"{"integerValue":"42"}"#).expect("value");
        assert_eq!(value.as_i64(), Some(42));
    }
}
