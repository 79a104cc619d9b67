//! `google.protobuf.Any`, as event payloads carry it: in `google.rpc.Status.details` (an audit
//! log entry's `status`, a failed job's `error`).
//!
//! In protobuf an `Any` is a type URL and the message's bytes. In proto3 JSON it is the
//! message's own JSON object with an `"@type"` member, which only a reader that knows every
//! type can turn back into bytes. The error details Google's services attach
//! (`google.rpc.ErrorInfo`, `BadRequest`, ...) are not among the event types, so such an `Any`
//! keeps its JSON fields as they came instead: a status with details decodes, whichever form it
//! came in, rather than failing the whole event.

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A message of any type: `google.protobuf.Any`.
///
/// From protobuf, `type_url` and `value` (the message's bytes) are set. From proto3 JSON,
/// `type_url` comes from `"@type"` and the other members are kept in `fields`; `value` stays
/// empty, since encoding them needs the type's schema.
///
/// ```
/// use functions_framework_events::Any;
///
/// let detail: Any = serde_json::from_str(
///     r#"{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "QUOTA"}"#,
/// )?;
/// assert_eq!(detail.type_name(), "google.rpc.ErrorInfo");
/// assert_eq!(detail.fields.as_ref().map(|f| &f["reason"]), Some(&"QUOTA".into()));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, PartialEq, Default, Debug)]
pub struct Any {
    /// The message's type: `type.googleapis.com/<full name>`.
    pub type_url: String,
    /// The message, protobuf-encoded (empty when it came as JSON).
    pub value: Vec<u8>,
    /// The message's members in proto3 JSON, when it came as JSON (without `"@type"`).
    pub fields: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Any {
    /// The full protobuf name of the message's type: the type URL after its last `/`.
    pub fn type_name(&self) -> &str {
        self.type_url
            .rsplit_once('/')
            .map_or(self.type_url.as_str(), |(_, name)| name)
    }
}

impl prost::Message for Any {
    fn encode_raw(&self, buf: &mut impl prost::bytes::BufMut) {
        if !self.type_url.is_empty() {
            prost::encoding::string::encode(1, &self.type_url, buf);
        }
        if !self.value.is_empty() {
            prost::encoding::bytes::encode(2, &self.value, buf);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl prost::bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        match tag {
            1 => prost::encoding::string::merge(wire_type, &mut self.type_url, buf, ctx).map_err(
                |mut error| {
                    error.push("Any", "type_url");
                    error
                },
            ),
            2 => prost::encoding::bytes::merge(wire_type, &mut self.value, buf, ctx).map_err(
                |mut error| {
                    error.push("Any", "value");
                    error
                },
            ),
            _ => prost::encoding::skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        let mut len = 0;
        if !self.type_url.is_empty() {
            len += prost::encoding::string::encoded_len(1, &self.type_url);
        }
        if !self.value.is_empty() {
            len += prost::encoding::bytes::encoded_len(2, &self.value);
        }
        len
    }

    fn clear(&mut self) {
        *self = Any::default();
    }
}

impl prost::Name for Any {
    const NAME: &'static str = "Any";
    const PACKAGE: &'static str = "google.protobuf";

    fn full_name() -> String {
        "google.protobuf.Any".into()
    }

    fn type_url() -> String {
        "type.googleapis.com/google.protobuf.Any".into()
    }
}

/// `{"@type": ..., members...}`; the empty `Any` is `{}`. An `Any` decoded from protobuf has
/// no members to show: its bytes go in `"value"`, base64, as for a `bytes` field.
impl Serialize for Any {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if *self == Any::default() {
            return serializer.serialize_map(Some(0))?.end();
        }
        let fields = self.fields.as_ref();
        let bytes = fields.is_none() && !self.value.is_empty();
        let len = 1 + fields.map_or(usize::from(bytes), serde_json::Map::len);
        let mut map = serializer.serialize_map(Some(len))?;
        map.serialize_entry("@type", &self.type_url)?;
        if let Some(fields) = fields {
            for (name, value) in fields {
                map.serialize_entry(name, value)?;
            }
        } else if bytes {
            map.serialize_entry(
                "value",
                &base64_simd::STANDARD.encode_to_string(&self.value),
            )?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Any {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(AnyVisitor)
    }
}

struct AnyVisitor;

impl<'de> Visitor<'de> for AnyVisitor {
    type Value = Any;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a google.protobuf.Any: a JSON object with \"@type\"")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Any, A::Error> {
        let mut type_url = None;
        let mut fields = serde_json::Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if name == "@type" {
                if type_url.is_some() {
                    return Err(de::Error::duplicate_field("@type"));
                }
                type_url = Some(map.next_value::<String>()?);
            } else {
                let value = map.next_value::<serde_json::Value>()?;
                fields.insert(name, value);
            }
        }
        // `{}` is the empty `Any`; members without a type cannot be read by anyone.
        let Some(type_url) = type_url else {
            if fields.is_empty() {
                return Ok(Any::default());
            }
            return Err(de::Error::missing_field("@type"));
        };
        Ok(Any {
            type_url,
            value: Vec::new(),
            fields: Some(fields),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// A message with `Any`s, as `google.rpc.Status` has them.
    #[derive(Clone, PartialEq, prost::Message)]
    struct Holder {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(message, repeated, tag = "3")]
        details: Vec<Any>,
    }

    #[test]
    fn protobuf_round_trip() {
        let holder = Holder {
            code: 7,
            details: vec![Any {
                type_url: "type.googleapis.com/google.rpc.ErrorInfo".into(),
                value: vec![0x0a, 0x05, b'Q', b'U', b'O', b'T', b'A'],
                fields: None,
            }],
        };
        let bytes = holder.encode_to_vec();
        assert_eq!(Holder::decode(bytes.as_slice()).expect("decodes"), holder);
        // Field by field, as protoc encodes `Any`: 1 the URL, 2 the bytes.
        let any = Any::decode(&holder.details[0].encode_to_vec()[..]).expect("decodes");
        assert_eq!(any.type_name(), "google.rpc.ErrorInfo");
        assert_eq!(any.value.len(), 7);
        assert!(Any::decode(&[0x0a, 0x05, b'a'][..]).is_err());
    }

    #[test]
    fn proto3_json_keeps_the_members() {
        let json = r#"{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"QUOTA","metadata":{"service":"pubsub.googleapis.com"}}"#;
        let any: Any = serde_json::from_str(json).expect("decodes");
        assert_eq!(any.type_url, "type.googleapis.com/google.rpc.ErrorInfo");
        assert!(any.value.is_empty());
        let fields = any.fields.as_ref().expect("members");
        assert_eq!(fields["reason"], "QUOTA");
        assert_eq!(fields["metadata"]["service"], "pubsub.googleapis.com");
        // Written back the way it came.
        let again: serde_json::Value = serde_json::to_value(&any).expect("serializes");
        assert_eq!(
            again,
            serde_json::from_str::<serde_json::Value>(json).expect("json")
        );
    }

    #[test]
    fn from_protobuf_to_json_carries_the_bytes() {
        let any = Any {
            type_url: "type.googleapis.com/google.rpc.ErrorInfo".into(),
            value: vec![1, 2, 3],
            fields: None,
        };
        assert_eq!(
            serde_json::to_value(&any).expect("serializes"),
            serde_json::json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "value": "AQID"})
        );
        assert_eq!(
            serde_json::to_value(Any::default()).expect("serializes"),
            serde_json::json!({})
        );
    }

    #[test]
    fn refuses_what_is_not_an_any() {
        assert_eq!(
            serde_json::from_str::<Any>("{}").expect("the empty Any"),
            Any::default()
        );
        for json in [
            r#"{"reason":"QUOTA"}"#,
            r#"{"@type":1}"#,
            r#"{"@type":"a","@type":"b"}"#,
            r#""text""#,
            "[]",
        ] {
            assert!(serde_json::from_str::<Any>(json).is_err(), "{json}");
        }
    }
}
