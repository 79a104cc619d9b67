//! `google.protobuf.Timestamp`, written as the proto3 JSON mapping says: RFC 3339 in UTC with
//! `Z`, and 0, 3, 6 or 9 fractional digits. (pbjson-types' own writes `+00:00`.) It reads
//! what pbjson-types reads: RFC 3339 with any offset.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time: seconds and nanoseconds since the Unix epoch, in UTC.
///
/// ```
/// use functions_framework_events::Timestamp;
///
/// let time: Timestamp = serde_json::from_str(r#""2024-01-02T03:04:05.5+01:00""#)?;
/// assert_eq!(serde_json::to_string(&time)?, r#""2024-01-02T02:04:05.500Z""#);
/// let time = chrono::DateTime::<chrono::Utc>::try_from(time).expect("in range");
/// assert_eq!(time.timestamp(), 1_704_161_045);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct Timestamp {
    /// Seconds since 1970-01-01T00:00:00Z.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds within the second, 0 to 999,999,999.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl prost::Name for Timestamp {
    const NAME: &'static str = "Timestamp";
    const PACKAGE: &'static str = "google.protobuf";

    fn full_name() -> String {
        "google.protobuf.Timestamp".into()
    }

    fn type_url() -> String {
        "type.googleapis.com/google.protobuf.Timestamp".into()
    }
}

impl TryFrom<Timestamp> for DateTime<Utc> {
    type Error = &'static str;

    fn try_from(time: Timestamp) -> Result<Self, Self::Error> {
        DateTime::try_from(pbjson_types::Timestamp::from(time))
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(time: DateTime<Utc>) -> Self {
        pbjson_types::Timestamp::from(time).into()
    }
}

impl From<pbjson_types::Timestamp> for Timestamp {
    fn from(time: pbjson_types::Timestamp) -> Self {
        Timestamp {
            seconds: time.seconds,
            nanos: time.nanos,
        }
    }
}

impl From<Timestamp> for pbjson_types::Timestamp {
    fn from(time: Timestamp) -> Self {
        pbjson_types::Timestamp {
            seconds: time.seconds,
            nanos: time.nanos,
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let time = DateTime::<Utc>::try_from(*self).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(&time.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        pbjson_types::Timestamp::deserialize(deserializer).map(Timestamp::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn written(json: &str) -> String {
        let time: Timestamp = serde_json::from_str(json).expect("reads");
        serde_json::to_string(&time).expect("writes")
    }

    #[test]
    fn written_in_utc_with_z_and_whole_groups_of_digits() {
        for (read, write) in [
            (r#""2024-01-02T03:04:05Z""#, r#""2024-01-02T03:04:05Z""#),
            (
                r#""2024-01-02T03:04:05+00:00""#,
                r#""2024-01-02T03:04:05Z""#,
            ),
            (
                r#""2024-01-02T03:04:05-02:30""#,
                r#""2024-01-02T05:34:05Z""#,
            ),
            (
                r#""2024-01-02T03:04:05.1Z""#,
                r#""2024-01-02T03:04:05.100Z""#,
            ),
            (
                r#""2024-01-02T03:04:05.1234Z""#,
                r#""2024-01-02T03:04:05.123400Z""#,
            ),
            (
                r#""2024-01-02T03:04:05.123456789Z""#,
                r#""2024-01-02T03:04:05.123456789Z""#,
            ),
            (r#""1970-01-01T00:00:00Z""#, r#""1970-01-01T00:00:00Z""#),
        ] {
            assert_eq!(written(read), write, "{read}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for json in [r#""yesterday""#, r#""2024-01-02""#, "12", "null"] {
            assert!(serde_json::from_str::<Timestamp>(json).is_err(), "{json}");
        }
        let out_of_range = Timestamp {
            seconds: 0,
            nanos: -1,
        };
        assert!(serde_json::to_string(&out_of_range).is_err());
    }

    #[test]
    fn protobuf_is_prost_types_wire_format() {
        let time = Timestamp {
            seconds: 1_704_164_645,
            nanos: 5,
        };
        let bytes = time.encode_to_vec();
        let theirs = pbjson_types::Timestamp::decode(bytes.as_slice()).expect("decodes");
        assert_eq!(Timestamp::from(theirs), time);
        assert_eq!(Timestamp::decode(bytes.as_slice()).expect("decodes"), time);
    }
}
