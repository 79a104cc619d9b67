//! Typed data of Google's events, for [`CloudEvent<T>`](crate::CloudEvent) and legacy event
//! functions: every event payload of Google's catalog, generated from its schemas
//! (googleapis/google-cloudevents) with prost and pbjson, from the `functions-framework-events`
//! crate. Protobuf and proto3 JSON both decode into them, so a `CloudEvent<T>` of one of them
//! takes `application/protobuf` data (what Firestore and Datastore triggers send) as well as
//! JSON.
//!
//! The common ones are named here: [`MessagePublishedData`] and [`PubsubMessage`] (Pub/Sub,
//! with the data as bytes, [`text`](PubsubMessage::text) and [`json`](PubsubMessage::json)),
//! [`StorageObjectData`] (Cloud Storage) and [`DocumentEventData`] (Firestore, whose
//! documents convert to your own types with
//! [`value_as`](DocumentEventData::value_as)). All of them are in [`google`], one module per
//! protobuf package.
//!
//! The products are the features of `functions-framework-events` (`pubsub`, `storage` and
//! `firestore` by default; `full` for all): add it to `Cargo.toml` with the features of your
//! events.
//!
//! ```
//! use functions_framework::events::{MessagePublishedData, StorageObjectData};
//! use functions_framework::{CloudEvent, Error, Functions};
//!
//! async fn on_message(event: CloudEvent<MessagePublishedData>) -> Result<(), Error> {
//!     let message = event.data.message();
//!     println!("message {}: {}", message.message_id, message.text().unwrap_or_default());
//!     Ok(())
//! }
//!
//! async fn on_upload(event: CloudEvent<StorageObjectData>) -> Result<(), Error> {
//!     println!("gs://{}/{} ({} bytes)", event.data.bucket, event.data.name, event.data.size);
//!     Ok(())
//! }
//!
//! let app = Functions::new()
//!     .cloud_event("on_message", on_message)
//!     .cloud_event("on_upload", on_upload);
//! # let _ = app;
//! ```

pub use functions_framework_events::google;
pub use functions_framework_events::google::events::cloud::firestore::v1::{
    Document, DocumentEventData, DocumentMask, Value as FirestoreValue,
};
pub use functions_framework_events::google::events::cloud::pubsub::v1::{
    MessagePublishedData, PubsubMessage,
};
pub use functions_framework_events::google::events::cloud::storage::v1::StorageObjectData;
pub use functions_framework_events::{Any, DocumentError, EventData, Timestamp, cloud_event_types};

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
        assert!(data.message().text().is_some_and(|t| !t.is_empty()));
        assert!(!data.message().message_id.is_empty());
        let bad: Result<MessagePublishedData, _> =
            serde_json::from_str(r#"{"message":{"data":"%%%"}}"#);
        assert!(bad.is_err());
        let json = PubsubMessage {
            data: br#"{"a":1}"#.to_vec(),
            ..PubsubMessage::default()
        };
        assert_eq!(
            json.json::<serde_json::Value>().ok(),
            Some(serde_json::json!({"a": 1}))
        );
        // No message at all reads as an empty one.
        assert_eq!(MessagePublishedData::default().message().text(), Some(""));
    }

    #[test]
    fn storage_object_with_integers_as_strings() {
        let event = vector("storage-cloudevent-input.json");
        let data: StorageObjectData =
            serde_json::from_value(event["data"].clone()).expect("decode");
        assert_eq!(data.bucket, "some-bucket");
        assert_eq!(data.name, "folder/Test.cs");
        assert_eq!(data.size, 352);
        assert_eq!(data.generation, 1_587_627_537_231_057);
        assert_eq!(data.content_type, "text/plain");
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
        assert_eq!(value.to_json(), serde_json::json!(42));
    }
}
