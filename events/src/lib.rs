//! Rust types for every Google Cloud event payload, generated from Google's schemas
//! (googleapis/google-cloudevents) with prost and pbjson: each decodes from protobuf
//! (`prost::Message::decode`) and from the proto3 JSON mapping (`serde_json::from_slice`),
//! and encodes to both.
//!
//! One cargo feature per product (`pubsub`, `storage`, `firestore`, ... `full` for all):
//! only the types of the enabled products are compiled. [`cloud_event_types`] names every
//! CloudEvent type with the data type it carries, and [`EventData`] ties each data type to
//! its CloudEvent types.
//!
//! ```
//! use functions_framework_events::google::events::cloud::pubsub::v1::MessagePublishedData;
//! use functions_framework_events::EventData;
//!
//! let json = br#"{"message": {"data": "SGVsbG8=", "messageId": "1"}, "subscription": "projects/p/subscriptions/s"}"#;
//! let data: MessagePublishedData = serde_json::from_slice(json).unwrap();
//! assert_eq!(data.message.unwrap().data, b"Hello");
//! assert!(MessagePublishedData::CLOUD_EVENT_TYPES.contains(&"google.cloud.pubsub.topic.v1.messagePublished"));
//! ```

mod any;
mod base64;
pub mod documents;
#[cfg(feature = "pubsub")]
mod pubsub;
mod timestamp;
#[rustfmt::skip]
mod generated;

pub use any::Any;
pub use documents::DocumentError;
pub use generated::{
    DataTypeVisitor, EventData, cloud_event_types, decode_protobuf, google, visit_data_type,
};
pub use pbjson_types;
pub use prost;
pub use timestamp::Timestamp;
