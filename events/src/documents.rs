//! Firestore documents and Datastore entities as your own types: their typed values (the
//! `Value` oneofs) convert to JSON, and from there to any `T: Deserialize`, for the value
//! before and after the change; the update mask says which fields changed.
//!
//! | value | becomes |
//! | --- | --- |
//! | null | `null` (an `Option` is `None`) |
//! | boolean, integer, double, string | the same (integers as numbers, whatever the wire form) |
//! | timestamp | its RFC 3339 string (`chrono::DateTime<Utc>` reads it) |
//! | bytes, blob | an array of byte values (`Vec<u8>` reads it) |
//! | reference (Firestore) | its resource name |
//! | key (Datastore) | the key's proto3 JSON |
//! | geo point | `{"latitude": ..., "longitude": ...}` |
//! | array, map, entity | an array, an object |

// The helpers serve the products' modules below; without either product they are unused.
#![cfg_attr(
    not(any(feature = "firestore", feature = "datastore")),
    allow(dead_code, unused_imports)
)]

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json};

/// Why a document or entity does not convert to the type asked for: names the field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentError {
    message: String,
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DocumentError {}

fn decode<T: DeserializeOwned>(fields: Json, what: &str) -> Result<T, DocumentError> {
    serde_path_to_error::deserialize(fields).map_err(|error| DocumentError {
        message: format!("{what} field `{}`: {}", error.path(), error.inner()),
    })
}

/// What the proto3 JSON mapping writes for a message (timestamps, keys, geo points).
fn as_json<M: serde::Serialize>(message: &M) -> Json {
    serde_json::to_value(message).unwrap_or(Json::Null)
}

/// A map of typed values (document fields, entity properties, a map value) as a JSON object.
fn object<'a, V: 'a>(
    entries: impl IntoIterator<Item = (&'a String, &'a V)>,
    to_json: impl Fn(&V) -> Json,
) -> Json {
    Json::Object(
        entries
            .into_iter()
            .map(|(key, value)| (key.clone(), to_json(value)))
            .collect::<Map<_, _>>(),
    )
}

fn bytes(bytes: &[u8]) -> Json {
    Json::Array(bytes.iter().map(|b| Json::from(*b)).collect())
}

#[cfg(feature = "firestore")]
mod firestore {
    use super::*;
    use crate::google::events::cloud::firestore::v1::value::ValueType;
    use crate::google::events::cloud::firestore::v1::{Document, DocumentEventData, Value};

    impl Value {
        /// The value as plain JSON (see [the module](crate::documents) for the mapping).
        pub fn to_json(&self) -> Json {
            match &self.value_type {
                None | Some(ValueType::NullValue(_)) => Json::Null,
                Some(ValueType::BooleanValue(b)) => Json::from(*b),
                Some(ValueType::IntegerValue(i)) => Json::from(*i),
                Some(ValueType::DoubleValue(d)) => Json::from(*d),
                Some(ValueType::TimestampValue(t)) => as_json(t),
                Some(ValueType::StringValue(s) | ValueType::ReferenceValue(s)) => {
                    Json::from(s.as_str())
                }
                Some(ValueType::BytesValue(b)) => bytes(b),
                Some(ValueType::GeoPointValue(point)) => as_json(point),
                Some(ValueType::ArrayValue(array)) => {
                    Json::Array(array.values.iter().map(Value::to_json).collect())
                }
                Some(ValueType::MapValue(map)) => object(&map.fields, Value::to_json),
            }
        }
    }

    impl Document {
        /// The document's fields as a plain JSON object.
        pub fn fields_json(&self) -> Json {
            object(&self.fields, Value::to_json)
        }

        /// The document's fields as a `T`.
        ///
        /// ```
        /// use functions_framework_events::google::events::cloud::firestore::v1::DocumentEventData;
        /// use serde::Deserialize;
        ///
        /// #[derive(Deserialize)]
        /// struct City {
        ///     name: String,
        ///     population: i64,
        /// }
        ///
        /// let json = br#"{"value": {"name": "projects/p/databases/(default)/documents/cities/LA",
        ///     "fields": {"name": {"stringValue": "Los Angeles"}, "population": {"integerValue": "3900000"}}}}"#;
        /// let event: DocumentEventData = serde_json::from_slice(json).unwrap();
        /// let city: City = event.value_as().unwrap().unwrap();
        /// assert_eq!((city.name.as_str(), city.population), ("Los Angeles", 3_900_000));
        /// ```
        pub fn decode<T: DeserializeOwned>(&self) -> Result<T, DocumentError> {
            decode(self.fields_json(), "document")
        }
    }

    impl DocumentEventData {
        /// The document after the change as a `T`; `None` for a deletion.
        pub fn value_as<T: DeserializeOwned>(&self) -> Option<Result<T, DocumentError>> {
            self.value.as_ref().map(Document::decode)
        }

        /// The document before the change as a `T`; `None` for a creation.
        pub fn old_value_as<T: DeserializeOwned>(&self) -> Option<Result<T, DocumentError>> {
            self.old_value
                .as_ref()
                .filter(|document| !document.name.is_empty())
                .map(Document::decode)
        }

        /// The paths of the fields the update changed (the update mask); empty for other
        /// changes.
        pub fn changed_fields(&self) -> &[String] {
            self.update_mask
                .as_ref()
                .map_or(&[], |mask| mask.field_paths.as_slice())
        }
    }
}

#[cfg(feature = "datastore")]
mod datastore {
    use super::*;
    use crate::google::events::cloud::datastore::v1::value::ValueType;
    use crate::google::events::cloud::datastore::v1::{Entity, EntityEventData, Value};

    impl Value {
        /// The value as plain JSON (see [the module](crate::documents) for the mapping).
        pub fn to_json(&self) -> Json {
            match &self.value_type {
                None | Some(ValueType::NullValue(_)) => Json::Null,
                Some(ValueType::BooleanValue(b)) => Json::from(*b),
                Some(ValueType::IntegerValue(i)) => Json::from(*i),
                Some(ValueType::DoubleValue(d)) => Json::from(*d),
                Some(ValueType::TimestampValue(t)) => as_json(t),
                Some(ValueType::KeyValue(key)) => as_json(key),
                Some(ValueType::StringValue(s)) => Json::from(s.as_str()),
                Some(ValueType::BlobValue(b)) => bytes(b),
                Some(ValueType::GeoPointValue(point)) => as_json(point),
                Some(ValueType::EntityValue(entity)) => entity.properties_json(),
                Some(ValueType::ArrayValue(array)) => {
                    Json::Array(array.values.iter().map(Value::to_json).collect())
                }
            }
        }
    }

    impl Entity {
        /// The entity's properties as a plain JSON object.
        pub fn properties_json(&self) -> Json {
            object(&self.properties, Value::to_json)
        }

        /// The entity's properties as a `T`.
        pub fn decode<T: DeserializeOwned>(&self) -> Result<T, DocumentError> {
            decode(self.properties_json(), "entity")
        }
    }

    impl EntityEventData {
        /// The entity after the change as a `T`; `None` for a deletion.
        pub fn value_as<T: DeserializeOwned>(&self) -> Option<Result<T, DocumentError>> {
            self.value
                .as_ref()
                .and_then(|result| result.entity.as_ref())
                .map(Entity::decode)
        }

        /// The entity before the change as a `T`; `None` for a creation.
        pub fn old_value_as<T: DeserializeOwned>(&self) -> Option<Result<T, DocumentError>> {
            self.old_value
                .as_ref()
                .and_then(|result| result.entity.as_ref())
                .map(Entity::decode)
        }

        /// The paths of the properties the update changed (the update mask).
        pub fn changed_properties(&self) -> &[String] {
            self.update_mask
                .as_ref()
                .map_or(&[], |mask| mask.property_paths.as_slice())
        }
    }
}

#[cfg(all(test, feature = "firestore"))]
mod tests {
    use prost::Message as _;
    use serde::Deserialize;

    use crate::google::events::cloud::firestore::v1::DocumentEventData;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Everything {
        array_value: Vec<i64>,
        boolean_value: bool,
        double_value: f64,
        geo_point_value: Point,
        int_value: u32,
        map_value: Nested,
        null_value: Option<String>,
        reference_value: String,
        string_value: String,
        timestamp_value: String,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Point {
        latitude: f64,
        longitude: f64,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Nested {
        field1: String,
        field2: (String, i64),
    }

    const JSON: &str = include_str!(
        "../../third_party/google-cloudevents/testdata/google/events/cloud/firestore/v1/DocumentEventData-complex.json"
    );
    const PROTOBUF: &[u8] = include_bytes!(
        "../../tests/fixtures/google-events-protobuf/google/events/cloud/firestore/v1/DocumentEventData-complex.pb"
    );

    #[test]
    fn every_kind_of_value_converts_from_json_and_protobuf_alike() {
        let from_json: DocumentEventData = serde_json::from_str(JSON).expect("JSON");
        let from_protobuf = DocumentEventData::decode(PROTOBUF).expect("protobuf");
        let a: Everything = from_json.value_as().expect("a value").expect("converts");
        let b: Everything = from_protobuf
            .value_as()
            .expect("a value")
            .expect("converts");
        assert_eq!(a, b);
        assert_eq!(a.array_value, [1, 2]);
        assert_eq!(a.int_value, 50);
        assert_eq!(a.map_value.field2, ("x".to_owned(), 1));
        assert_eq!(a.null_value, None);
        assert!(
            a.timestamp_value.starts_with("2020-04-23T14:23:53.241"),
            "{}",
            a.timestamp_value
        );
        // The fixture's old value is an empty document: nothing to convert.
        assert!(from_json.old_value_as::<Everything>().is_none());
        assert!(from_json.changed_fields().is_empty());
    }

    #[test]
    fn a_field_of_the_wrong_type_is_named() {
        #[derive(Debug, Deserialize)]
        #[serde(rename_all = "camelCase")]
        #[allow(dead_code)]
        struct Wrong {
            map_value: WrongNested,
        }
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct WrongNested {
            field1: u32,
        }
        let event: DocumentEventData = serde_json::from_str(JSON).expect("JSON");
        let error = event
            .value_as::<Wrong>()
            .expect("a value")
            .expect_err("wrong type");
        assert!(error.to_string().contains("mapValue.field1"), "{error}");
    }
}
