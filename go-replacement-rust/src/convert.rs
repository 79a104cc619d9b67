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

/// Why an event body could not be converted.
///
/// [`Display`](fmt::Display) gives a message that names the problem and the field
/// involved, e.g. ``legacy event: missing field `eventId` `` or
/// ``legacy event: `timestamp` must be a string, found a number``.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertError(pub String);

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConvertError {}

const SPEC_VERSION: &str = "1.0";
const JSON_CONTENT_TYPE: &str = "application/json";
const PUBSUB_MESSAGE_TYPE: &str = "type.googleapis.com/google.pubsub.v1.PubsubMessage";
const STORAGE_OBJECT_TYPE: &str = "storage#object";
const DEFAULT_DATABASE_DOMAIN: &str = "firebaseio.com";
const DEFAULT_DATABASE_LOCATION: &str = "us-central1";
const REGIONAL_DATABASE_DOMAIN_SUFFIX: &str = ".firebasedatabase.app";
/// Error messages quote offending values; this keeps a megabyte string from
/// ending up in a log line.
const PREVIEW_CHARS: usize = 64;

/// Firebase Auth metadata fields whose names differ: (legacy, CloudEvent).
const AUTH_METADATA_RENAMES: &[(&str, &str)] = &[
    ("createdAt", "createTime"),
    ("lastSignedInAt", "lastSignInTime"),
];

/// One `/`-separated segment of a resource layout.
#[derive(Debug, Clone, Copy)]
enum Segment {
    Literal(&'static str),
    Any,
}

/// Where the CloudEvent `subject` comes from.
#[derive(Debug, Clone, Copy)]
enum Subject {
    /// No subject: the whole legacy resource is the source path.
    None,
    /// The legacy resource is `<prefix>/<keyword>/<rest>`: `<prefix>` is the
    /// source path and `<keyword>/<rest>` the subject. `single_segment` limits
    /// `<rest>` to one segment.
    Path {
        prefix: &'static [Segment],
        keyword: &'static str,
        single_segment: bool,
    },
    /// `users/<uid>` from `data.uid`; the whole legacy resource is the source path.
    UserId,
}

/// How `data` differs between the two forms.
#[derive(Debug, Clone, Copy)]
enum Payload {
    Same,
    /// CloudEvents wrap the message as `{"message": ...}` with `messageId` and
    /// `publishTime` inside; legacy events carry the bare message.
    PubSubMessage,
    /// `metadata` field names differ (see `AUTH_METADATA_RENAMES`).
    AuthUser,
}

/// Shape of the legacy `resource` written by the reverse conversion.
#[derive(Debug, Clone, Copy)]
enum LegacyResource {
    /// A string: the resource path.
    Path,
    /// `{"service", "name", "type"}`; `type` is read from `data[type_field]`
    /// when present, else `default_type`.
    Object {
        type_field: Option<&'static str>,
        default_type: &'static str,
    },
}

/// The rules shared by every event type of one Google service.
#[derive(Debug)]
struct Family {
    service: &'static str,
    /// Legacy type prefixes of this family; they give unknown legacy types a service.
    legacy_prefixes: &'static [&'static str],
    subject: Subject,
    /// CloudEvent sources carry `locations/<location>` after this many segments;
    /// legacy resources do not.
    location_after: Option<usize>,
    payload: Payload,
    legacy_resource: LegacyResource,
}

/// One legacy type <-> CloudEvent type pairing.
#[derive(Debug)]
struct Row {
    legacy_type: &'static str,
    cloud_event_type: &'static str,
    family: &'static Family,
    /// Alias rows are accepted as legacy input only; the reverse conversion
    /// produces the canonical row's legacy type.
    canonical: bool,
}

const PUBSUB: Family = Family {
    service: "pubsub.googleapis.com",
    legacy_prefixes: &["google.pubsub.", "providers/cloud.pubsub/"],
    subject: Subject::None,
    location_after: None,
    payload: Payload::PubSubMessage,
    legacy_resource: LegacyResource::Object {
        type_field: None,
        default_type: PUBSUB_MESSAGE_TYPE,
    },
};

const STORAGE: Family = Family {
    service: "storage.googleapis.com",
    legacy_prefixes: &["google.storage.", "providers/cloud.storage/"],
    subject: Subject::Path {
        prefix: &[
            Segment::Literal("projects"),
            Segment::Any,
            Segment::Literal("buckets"),
            Segment::Any,
        ],
        keyword: "objects",
        single_segment: false,
    },
    location_after: None,
    payload: Payload::Same,
    legacy_resource: LegacyResource::Object {
        type_field: Some("kind"),
        default_type: STORAGE_OBJECT_TYPE,
    },
};

const FIRESTORE: Family = Family {
    service: "firestore.googleapis.com",
    legacy_prefixes: &["providers/cloud.firestore/"],
    subject: Subject::Path {
        prefix: &[
            Segment::Literal("projects"),
            Segment::Any,
            Segment::Literal("databases"),
            Segment::Any,
        ],
        keyword: "documents",
        single_segment: false,
    },
    location_after: None,
    payload: Payload::Same,
    legacy_resource: LegacyResource::Path,
};

const FIREBASE_AUTH: Family = Family {
    service: "firebaseauth.googleapis.com",
    legacy_prefixes: &["providers/firebase.auth/"],
    subject: Subject::UserId,
    location_after: None,
    payload: Payload::AuthUser,
    legacy_resource: LegacyResource::Path,
};

const FIREBASE_ANALYTICS: Family = Family {
    service: "firebaseanalytics.googleapis.com",
    legacy_prefixes: &["providers/google.firebase.analytics/"],
    subject: Subject::Path {
        prefix: &[Segment::Literal("projects"), Segment::Any],
        keyword: "events",
        single_segment: true,
    },
    location_after: None,
    payload: Payload::Same,
    legacy_resource: LegacyResource::Path,
};

const FIREBASE_DATABASE: Family = Family {
    service: "firebasedatabase.googleapis.com",
    legacy_prefixes: &["providers/google.firebase.database/"],
    subject: Subject::Path {
        prefix: &[
            Segment::Literal("projects"),
            Segment::Any,
            Segment::Literal("instances"),
            Segment::Any,
        ],
        keyword: "refs",
        single_segment: false,
    },
    location_after: Some(2),
    payload: Payload::Same,
    legacy_resource: LegacyResource::Path,
};

/// The single source of truth for which types convert and how.
static ROWS: &[Row] = &[
    Row {
        legacy_type: "google.pubsub.topic.publish",
        cloud_event_type: "google.cloud.pubsub.topic.v1.messagePublished",
        family: &PUBSUB,
        canonical: true,
    },
    Row {
        legacy_type: "providers/cloud.pubsub/eventTypes/topic.publish",
        cloud_event_type: "google.cloud.pubsub.topic.v1.messagePublished",
        family: &PUBSUB,
        canonical: false,
    },
    Row {
        legacy_type: "google.storage.object.finalize",
        cloud_event_type: "google.cloud.storage.object.v1.finalized",
        family: &STORAGE,
        canonical: true,
    },
    Row {
        legacy_type: "google.storage.object.delete",
        cloud_event_type: "google.cloud.storage.object.v1.deleted",
        family: &STORAGE,
        canonical: true,
    },
    Row {
        legacy_type: "google.storage.object.archive",
        cloud_event_type: "google.cloud.storage.object.v1.archived",
        family: &STORAGE,
        canonical: true,
    },
    Row {
        legacy_type: "google.storage.object.metadataUpdate",
        cloud_event_type: "google.cloud.storage.object.v1.metadataUpdated",
        family: &STORAGE,
        canonical: true,
    },
    Row {
        legacy_type: "providers/cloud.storage/eventTypes/object.change",
        cloud_event_type: "google.cloud.storage.object.v1.finalized",
        family: &STORAGE,
        canonical: false,
    },
    Row {
        legacy_type: "providers/cloud.firestore/eventTypes/document.write",
        cloud_event_type: "google.cloud.firestore.document.v1.written",
        family: &FIRESTORE,
        canonical: true,
    },
    Row {
        legacy_type: "providers/cloud.firestore/eventTypes/document.create",
        cloud_event_type: "google.cloud.firestore.document.v1.created",
        family: &FIRESTORE,
        canonical: true,
    },
    Row {
        legacy_type: "providers/cloud.firestore/eventTypes/document.update",
        cloud_event_type: "google.cloud.firestore.document.v1.updated",
        family: &FIRESTORE,
        canonical: true,
    },
    Row {
        legacy_type: "providers/cloud.firestore/eventTypes/document.delete",
        cloud_event_type: "google.cloud.firestore.document.v1.deleted",
        family: &FIRESTORE,
        canonical: true,
    },
    Row {
        legacy_type: "providers/firebase.auth/eventTypes/user.create",
        cloud_event_type: "google.firebase.auth.user.v1.created",
        family: &FIREBASE_AUTH,
        canonical: true,
    },
    Row {
        legacy_type: "providers/firebase.auth/eventTypes/user.delete",
        cloud_event_type: "google.firebase.auth.user.v1.deleted",
        family: &FIREBASE_AUTH,
        canonical: true,
    },
    Row {
        legacy_type: "providers/google.firebase.analytics/eventTypes/event.log",
        cloud_event_type: "google.firebase.analytics.log.v1.written",
        family: &FIREBASE_ANALYTICS,
        canonical: true,
    },
    Row {
        legacy_type: "providers/google.firebase.database/eventTypes/ref.create",
        cloud_event_type: "google.firebase.database.ref.v1.created",
        family: &FIREBASE_DATABASE,
        canonical: true,
    },
    Row {
        legacy_type: "providers/google.firebase.database/eventTypes/ref.write",
        cloud_event_type: "google.firebase.database.ref.v1.written",
        family: &FIREBASE_DATABASE,
        canonical: true,
    },
    Row {
        legacy_type: "providers/google.firebase.database/eventTypes/ref.update",
        cloud_event_type: "google.firebase.database.ref.v1.updated",
        family: &FIREBASE_DATABASE,
        canonical: true,
    },
    Row {
        legacy_type: "providers/google.firebase.database/eventTypes/ref.delete",
        cloud_event_type: "google.firebase.database.ref.v1.deleted",
        family: &FIREBASE_DATABASE,
        canonical: true,
    },
];

fn row_for_legacy_type(legacy_type: &str) -> Option<&'static Row> {
    ROWS.iter().find(|row| row.legacy_type == legacy_type)
}

fn row_for_cloud_event_type(cloud_event_type: &str) -> Option<&'static Row> {
    ROWS.iter()
        .find(|row| row.canonical && row.cloud_event_type == cloud_event_type)
}

fn service_for_legacy_prefix(legacy_type: &str) -> Option<&'static str> {
    ROWS.iter()
        .map(|row| row.family)
        .find(|family| {
            family
                .legacy_prefixes
                .iter()
                .any(|prefix| legacy_type.starts_with(prefix))
        })
        .map(|family| family.service)
}

/// Which form was being read, so messages say where the problem is.
#[derive(Debug, Clone, Copy)]
enum Side {
    Legacy,
    CloudEvent,
}

impl Side {
    fn error(self, message: fmt::Arguments<'_>) -> ConvertError {
        let form = match self {
            Side::Legacy => "legacy event",
            Side::CloudEvent => "cloud event",
        };
        ConvertError(format!("{form}: {message}"))
    }
}

fn kind(value: &Value) -> &'static str {
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
fn preview(text: &str) -> String {
    match text.char_indices().nth(PREVIEW_CHARS) {
        Some((cut, _)) => format!("{:?}...", text.get(..cut).unwrap_or_default()),
        None => format!("{text:?}"),
    }
}

/// The first non-null value among `keys` (a field and its alternative spellings).
fn field<'a>(object: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter()
        .find_map(|key| object.get(*key).filter(|value| !value.is_null()))
}

fn required_str<'a>(
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
fn optional_str<'a>(
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

/// An RFC 3339 date-time, split into its parts; `fraction` keeps the digits
/// after the decimal point exactly as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DateTime<'a> {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    fraction: &'a str,
    offset_minutes: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimestampError {
    Malformed,
    /// Valid, but before 0000-01-01 or after 9999-12-31 once moved to UTC,
    /// which RFC 3339 cannot write.
    OutOfRange,
}

/// Reads a string left to right without ever slicing inside a character.
struct Scanner<'a> {
    rest: &'a str,
}

impl<'a> Scanner<'a> {
    fn number(&mut self, width: usize) -> Option<i64> {
        let digits = self.rest.get(..width)?;
        if !digits.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        self.rest = self.rest.get(width..)?;
        digits.parse().ok()
    }

    /// Consumes one ASCII byte accepted by `accept`.
    fn byte(&mut self, accept: impl Fn(u8) -> bool) -> Option<u8> {
        let byte = *self.rest.as_bytes().first()?;
        if !byte.is_ascii() || !accept(byte) {
            return None;
        }
        self.rest = self.rest.get(1..)?;
        Some(byte)
    }

    fn digits(&mut self) -> &'a str {
        let len = self.rest.bytes().take_while(u8::is_ascii_digit).count();
        let (digits, rest) = self.rest.split_at_checked(len).unwrap_or(("", self.rest));
        self.rest = rest;
        digits
    }
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

fn parse_timestamp(raw: &str) -> Option<DateTime<'_>> {
    let mut scanner = Scanner { rest: raw };
    let year = scanner.number(4)?;
    scanner.byte(|b| b == b'-')?;
    let month = scanner.number(2)?;
    scanner.byte(|b| b == b'-')?;
    let day = scanner.number(2)?;
    scanner.byte(|b| b == b'T' || b == b't')?;
    let hour = scanner.number(2)?;
    scanner.byte(|b| b == b':')?;
    let minute = scanner.number(2)?;
    scanner.byte(|b| b == b':')?;
    let second = scanner.number(2)?;
    let fraction = if scanner.byte(|b| b == b'.').is_some() {
        let digits = scanner.digits();
        if digits.is_empty() {
            return None;
        }
        digits
    } else {
        ""
    };
    let offset_minutes = match scanner.byte(|b| matches!(b, b'Z' | b'z' | b'+' | b'-'))? {
        b'Z' | b'z' => 0,
        sign => {
            let hours = scanner.number(2)?;
            scanner.byte(|b| b == b':')?;
            let minutes = scanner.number(2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let total = hours * 60 + minutes;
            if sign == b'-' { -total } else { total }
        }
    };
    // Second 60 is RFC 3339's leap second; it is carried through unchanged.
    let valid = scanner.rest.is_empty()
        && (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour <= 23
        && minute <= 59
        && second <= 60;
    valid.then_some(DateTime {
        year,
        month,
        day,
        hour,
        minute,
        second,
        fraction,
        offset_minutes,
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Inverse of `days_from_civil`: (year, month, day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Rewrites an RFC 3339 date-time in UTC with a `Z` suffix. Offsets are whole
/// minutes, so only the date, hour and minute move; seconds and their fraction
/// are kept exactly as written.
fn normalize_timestamp(raw: &str) -> Result<String, TimestampError> {
    let time = parse_timestamp(raw).ok_or(TimestampError::Malformed)?;
    let local_minutes =
        days_from_civil(time.year, time.month, time.day) * 1440 + time.hour * 60 + time.minute;
    let utc_minutes = local_minutes - time.offset_minutes;
    let (year, month, day) = civil_from_days(utc_minutes.div_euclid(1440));
    let minute_of_day = utc_minutes.rem_euclid(1440);
    if !(0..=9999).contains(&year) {
        return Err(TimestampError::OutOfRange);
    }
    let point = if time.fraction.is_empty() { "" } else { "." };
    Ok(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{point}{}Z",
        minute_of_day / 60,
        minute_of_day % 60,
        time.second,
        time.fraction
    ))
}

fn normalized_time(raw: &str, label: &str, side: Side) -> Result<String, ConvertError> {
    normalize_timestamp(raw).map_err(|error| match error {
        TimestampError::Malformed => side.error(format_args!(
            "`{label}` must be an RFC 3339 date-time, found {}",
            preview(raw)
        )),
        TimestampError::OutOfRange => side.error(format_args!(
            "`{label}` {} is outside years 0000-9999 in UTC",
            preview(raw)
        )),
    })
}

/// Byte index just past the `count`-th `/` of `path`.
fn segment_boundary(path: &str, count: usize) -> Option<usize> {
    let mut index = 0;
    for _ in 0..count {
        index += path.get(index..)?.find('/')? + 1;
    }
    Some(index)
}

/// Splits `resource` into (`<prefix>`, `<keyword>/<rest>`) when it follows the
/// layout; every segment matched by the prefix must be non-empty.
fn split_resource<'a>(
    resource: &'a str,
    prefix: &[Segment],
    keyword: &str,
    single_segment: bool,
) -> Option<(&'a str, &'a str)> {
    let mut rest = resource;
    for segment in prefix {
        let (head, tail) = rest.split_once('/')?;
        let matches = match segment {
            Segment::Literal(literal) => head == *literal,
            Segment::Any => !head.is_empty(),
        };
        if !matches {
            return None;
        }
        rest = tail;
    }
    let (head, tail) = rest.split_once('/')?;
    if head != keyword || tail.is_empty() || (single_segment && tail.contains('/')) {
        return None;
    }
    let prefix_len = resource.len().checked_sub(rest.len() + 1)?;
    Some((resource.get(..prefix_len)?, rest))
}

/// Human-readable layout, e.g. `projects/*/buckets/*/objects/...`.
fn describe_layout(prefix: &[Segment], keyword: &str, single_segment: bool) -> String {
    let mut layout: Vec<&str> = prefix
        .iter()
        .map(|segment| match segment {
            Segment::Literal(literal) => *literal,
            Segment::Any => "*",
        })
        .collect();
    layout.push(keyword);
    layout.push(if single_segment { "*" } else { "..." });
    layout.join("/")
}

fn insert_location(path: &str, after: usize, location: &str) -> Option<String> {
    let at = segment_boundary(path, after)?;
    Some(format!(
        "{}locations/{location}/{}",
        path.get(..at)?,
        path.get(at..)?
    ))
}

/// Removes `locations/<location>` when it follows the first `after` segments.
fn strip_location(path: &str, after: usize) -> String {
    let parts =
        segment_boundary(path, after).and_then(|at| Some((path.get(..at)?, path.get(at..)?)));
    let Some((head, tail)) = parts else {
        return path.to_owned();
    };
    match tail.strip_prefix("locations/") {
        Some(located) => match located.split_once('/') {
            Some((_, remainder)) => format!("{head}{remainder}"),
            None => head.strip_suffix('/').unwrap_or(head).to_owned(),
        },
        None => path.to_owned(),
    }
}

fn location_from_domain(domain: &str) -> Option<&str> {
    if domain == DEFAULT_DATABASE_DOMAIN {
        return Some(DEFAULT_DATABASE_LOCATION);
    }
    let location = domain.strip_suffix(REGIONAL_DATABASE_DOMAIN_SUFFIX)?;
    let valid = !location.is_empty()
        && location
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
    valid.then_some(location)
}

/// The Realtime Database location named by the event's `domain`, which
/// producers put at the top level but which is also honoured inside `context`.
fn database_location<'a>(
    body: &'a Map<String, Value>,
    context: &'a Map<String, Value>,
) -> Result<&'a str, ConvertError> {
    let domain = field(body, &["domain"]).or_else(|| field(context, &["domain"]));
    match domain {
        None => Ok(DEFAULT_DATABASE_LOCATION),
        Some(Value::String(domain)) => location_from_domain(domain).ok_or_else(|| {
            Side::Legacy.error(format_args!(
                "`domain` {} is neither {DEFAULT_DATABASE_DOMAIN} nor <location>{REGIONAL_DATABASE_DOMAIN_SUFFIX}",
                preview(domain)
            ))
        }),
        Some(other) => Err(Side::Legacy.error(format_args!(
            "`domain` must be a string, found {}",
            kind(other)
        ))),
    }
}

/// The legacy `resource`, whichever of its two shapes was sent.
struct ResourceRef<'a> {
    name: &'a str,
    service: Option<&'a str>,
}

fn legacy_resource(context: &Map<String, Value>) -> Result<ResourceRef<'_>, ConvertError> {
    let side = Side::Legacy;
    match field(context, &["resource"]) {
        None => Err(side.error(format_args!("missing field `resource`"))),
        Some(Value::String(name)) if name.is_empty() => {
            Err(side.error(format_args!("`resource` must not be empty")))
        }
        Some(Value::String(name)) => Ok(ResourceRef {
            name,
            service: None,
        }),
        Some(Value::Object(resource)) => Ok(ResourceRef {
            name: required_str(resource, &["name"], "resource.name", side)?,
            service: optional_str(resource, "service", side)
                .map_err(|_| side.error(format_args!("`resource.service` must be a string")))?,
        }),
        Some(other) => Err(side.error(format_args!(
            "`resource` must be a string or an object, found {}",
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// One conformance case: the files of `<name>-*.json`.
    struct Case {
        name: &'static str,
        legacy_input: &'static str,
        legacy_output: &'static str,
        cloud_event_input: &'static str,
        cloud_event_output: &'static str,
        /// What a legacy function must see when the CloudEvent input is sent:
        /// the `-converted` override where one exists, else the legacy output.
        legacy_from_cloud_event: &'static str,
    }

    macro_rules! case {
        ($name:literal) => {
            case!($name, "-legacy-output.json")
        };
        ($name:literal, $from_cloud_event:literal) => {
            Case {
                name: $name,
                legacy_input: include_str!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../tests/conformance/vectors/",
                    $name,
                    "-legacy-input.json"
                )),
                legacy_output: include_str!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../tests/conformance/vectors/",
                    $name,
                    "-legacy-output.json"
                )),
                cloud_event_input: include_str!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../tests/conformance/vectors/",
                    $name,
                    "-cloudevent-input.json"
                )),
                cloud_event_output: include_str!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../tests/conformance/vectors/",
                    $name,
                    "-cloudevent-output.json"
                )),
                legacy_from_cloud_event: include_str!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../tests/conformance/vectors/",
                    $name,
                    $from_cloud_event
                )),
            }
        };
    }

    const CASES: [Case; 17] = [
        case!("firebase-auth"),
        case!("firebase-db1"),
        case!("firebase-db2"),
        case!("firebase-db3"),
        case!("firebase-db4"),
        case!("firebase-db5"),
        case!("firebase-db6"),
        case!("firebase-db7"),
        case!("firebase-db8"),
        case!("firebase-dbdelete1"),
        case!("firebase-dbdelete2"),
        case!("firestore_simple"),
        case!("firestore_complex"),
        case!("legacy_pubsub", "-legacy-output-converted.json"),
        case!("pubsub_binary"),
        case!("pubsub_text"),
        case!("storage"),
    ];

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).expect("conformance vector is valid JSON")
    }

    /// Seconds since the epoch and nanoseconds, so times compare as instants.
    fn instant(raw: &str) -> (i64, u32) {
        let time = parse_timestamp(raw).expect("RFC 3339 timestamp");
        let seconds = days_from_civil(time.year, time.month, time.day) * 86_400
            + time.hour * 3600
            + time.minute * 60
            + time.second
            - time.offset_minutes * 60;
        let nanos = format!("{:0<9}", time.fraction.get(..9).unwrap_or(time.fraction));
        (seconds, nanos.parse().expect("fraction digits"))
    }

    fn str_at<'a>(value: &'a Value, key: &str) -> &'a str {
        value
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("`{key}` is not a string in {value}"))
    }

    /// The README's CloudEvent comparison.
    fn assert_cloud_event_matches(name: &str, actual: &Value, expected: &Value) {
        assert!(
            actual.get("specversion").is_some(),
            "{name}: specversion missing"
        );
        for key in ["id", "source", "subject", "type", "datacontenttype"] {
            assert_eq!(
                actual.get(key),
                expected.get(key),
                "{name}: `{key}` differs"
            );
        }
        assert_eq!(
            instant(str_at(actual, "time")),
            instant(str_at(expected, "time")),
            "{name}: `time` differs"
        );
        assert_eq!(
            actual.get("data"),
            expected.get("data"),
            "{name}: `data` differs"
        );
    }

    fn context_field<'a>(event: &'a Value, key: &str, alias: &str) -> Option<&'a Value> {
        let context = event.get("context")?;
        context.get(key).or_else(|| context.get(alias))
    }

    /// The README's legacy event comparison.
    fn assert_legacy_matches(name: &str, actual: &Value, expected: &Value) {
        for (key, alias) in [("eventId", "event_id"), ("eventType", "event_type")] {
            assert_eq!(
                context_field(actual, key, alias),
                context_field(expected, key, alias),
                "{name}: `{key}` differs"
            );
        }
        let timestamp = |event: &Value| {
            context_field(event, "timestamp", "timestamp")
                .and_then(Value::as_str)
                .map(instant)
        };
        assert_eq!(
            timestamp(actual),
            timestamp(expected),
            "{name}: `timestamp` differs"
        );
        assert_eq!(
            context_field(actual, "resource", "resource"),
            context_field(expected, "resource", "resource"),
            "{name}: `resource` differs"
        );
        assert_eq!(
            actual.get("data"),
            expected.get("data"),
            "{name}: `data` differs"
        );
    }

    fn legacy_timestamp(event: &Value) -> &str {
        event
            .get("context")
            .and_then(|context| context.get("timestamp"))
            .and_then(Value::as_str)
            .expect("legacy context has a string timestamp")
    }

    fn to_cloud_event(body: &Value) -> Value {
        legacy_to_cloud_event(body).unwrap_or_else(|error| panic!("{error}: {body}"))
    }

    fn to_legacy(event: &Value) -> Value {
        cloud_event_to_legacy(event).unwrap_or_else(|error| panic!("{error}: {event}"))
    }

    fn legacy_error(body: &Value) -> String {
        match legacy_to_cloud_event(body) {
            Ok(event) => panic!("expected an error for {body}, got {event}"),
            Err(error) => error.to_string(),
        }
    }

    fn cloud_event_error(event: &Value) -> String {
        match cloud_event_to_legacy(event) {
            Ok(legacy) => panic!("expected an error for {event}, got {legacy}"),
            Err(error) => error.to_string(),
        }
    }

    /// An object built from owned values, so helpers can move their arguments in.
    fn object<const N: usize>(entries: [(&str, Value); N]) -> Value {
        Value::Object(
            entries
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value))
                .collect(),
        )
    }

    fn legacy_event(event_type: &str, resource: Value, data: Value) -> Value {
        object([
            ("eventId", json!("event-1")),
            ("timestamp", json!("2021-03-04T05:06:07.890Z")),
            ("eventType", json!(event_type)),
            ("resource", resource),
            ("data", data),
        ])
    }

    fn cloud_event(event_type: &str, source: &str, subject: Option<&str>, data: Value) -> Value {
        let mut event = object([
            ("specversion", json!("1.0")),
            ("id", json!("event-1")),
            ("source", json!(source)),
            ("type", json!(event_type)),
            ("time", json!("2021-03-04T05:06:07.890Z")),
            ("datacontenttype", json!("application/json")),
            ("data", data),
        ]);
        if let (Some(subject), Some(object)) = (subject, event.as_object_mut()) {
            object.insert("subject".to_owned(), Value::from(subject));
        }
        event
    }

    #[test]
    fn legacy_vectors_convert_to_the_expected_cloud_events() {
        for case in &CASES {
            let actual = to_cloud_event(&parse(case.legacy_input));
            assert_cloud_event_matches(case.name, &actual, &parse(case.cloud_event_output));
        }
    }

    #[test]
    fn cloud_event_vectors_convert_to_the_expected_legacy_events() {
        for case in &CASES {
            let actual = to_legacy(&parse(case.cloud_event_input));
            assert_legacy_matches(case.name, &actual, &parse(case.legacy_from_cloud_event));
            assert!(
                legacy_timestamp(&actual).ends_with('Z'),
                "{}: timestamp {} is not in UTC",
                case.name,
                legacy_timestamp(&actual)
            );
        }
    }

    #[test]
    fn legacy_vectors_normalize_to_the_expected_legacy_events() {
        for case in &CASES {
            let actual = normalize_legacy(&parse(case.legacy_input))
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            assert_legacy_matches(case.name, &actual, &parse(case.legacy_output));
            assert!(legacy_timestamp(&actual).ends_with('Z'), "{}", case.name);
        }
        for bad in [
            json!([]),
            json!({"data": 1}),
            json!({"context": {"eventId": "1"}}),
        ] {
            assert!(normalize_legacy(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn legacy_vectors_survive_a_round_trip_through_cloud_events() {
        for case in &CASES {
            let cloud_event = to_cloud_event(&parse(case.legacy_input));
            let actual = to_legacy(&cloud_event);
            assert_legacy_matches(case.name, &actual, &parse(case.legacy_from_cloud_event));
        }
    }

    #[test]
    fn cloud_event_vectors_survive_a_round_trip_through_legacy_events() {
        for case in &CASES {
            let legacy = to_legacy(&parse(case.cloud_event_input));
            let mut actual = to_cloud_event(&legacy);
            // The legacy form has no `domain`, so a regional database comes back
            // as us-central1; everything else must survive.
            let expected = parse(case.cloud_event_output);
            if case.name == "firebase-db2" {
                assert_eq!(
                    str_at(&actual, "source"),
                    "//firebasedatabase.googleapis.com/projects/_/locations/us-central1/instances/my-project-id"
                );
                if let Some(object) = actual.as_object_mut() {
                    object.insert("source".to_owned(), expected["source"].clone());
                }
            }
            assert_cloud_event_matches(case.name, &actual, &expected);
        }
    }

    #[test]
    fn vectors_are_told_apart_by_shape() {
        for case in &CASES {
            assert!(is_legacy_event(&parse(case.legacy_input)), "{}", case.name);
            assert!(is_legacy_event(&parse(case.legacy_output)), "{}", case.name);
            assert!(
                !is_legacy_event(&parse(case.cloud_event_input)),
                "{}",
                case.name
            );
            assert!(
                !is_legacy_event(&parse(case.cloud_event_output)),
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn is_legacy_event_needs_a_context_object_or_ids_beside_data() {
        assert!(is_legacy_event(&json!({"context": {}, "data": 1})));
        assert!(is_legacy_event(&json!({"context": {}})));
        assert!(is_legacy_event(&json!({"eventType": "x", "data": null})));
        assert!(is_legacy_event(&json!({"eventId": "x", "data": {}})));
        assert!(is_legacy_event(&json!({"event_id": "x", "data": {}})));
        assert!(!is_legacy_event(&json!({"eventId": "x"})));
        assert!(!is_legacy_event(&json!({"data": {}})));
        assert!(!is_legacy_event(&json!({"context": "x", "data": {}})));
        assert!(!is_legacy_event(&json!({"res": "PASS"})));
        assert!(!is_legacy_event(&json!({"message": "Hello world!"})));
        assert!(!is_legacy_event(&json!([{"context": {}}])));
        assert!(!is_legacy_event(&json!("context")));
        assert!(!is_legacy_event(&Value::Null));
    }

    fn sample_resource(service: &str) -> &'static str {
        match service {
            "pubsub.googleapis.com" => "projects/p/topics/t",
            "storage.googleapis.com" => "projects/_/buckets/b/objects/dir/o.txt",
            "firestore.googleapis.com" => "projects/p/databases/(default)/documents/c/d",
            "firebaseauth.googleapis.com" => "projects/p",
            "firebaseanalytics.googleapis.com" => "projects/p/events/purchase",
            "firebasedatabase.googleapis.com" => "projects/_/instances/i/refs/a/b",
            other => panic!("no sample resource for {other}"),
        }
    }

    #[test]
    fn every_table_row_converts_both_ways() {
        for row in ROWS {
            let resource = sample_resource(row.family.service);
            let legacy = legacy_event(row.legacy_type, json!(resource), json!({"uid": "u1"}));
            let event = to_cloud_event(&legacy);
            assert_eq!(
                str_at(&event, "type"),
                row.cloud_event_type,
                "{}",
                row.legacy_type
            );
            assert!(
                str_at(&event, "source").starts_with(&format!("//{}/", row.family.service)),
                "{}: {event}",
                row.legacy_type
            );

            let back = to_legacy(&event);
            let canonical = row_for_cloud_event_type(row.cloud_event_type)
                .expect("every CloudEvent type has a canonical row");
            assert_eq!(
                context_field(&back, "eventType", "event_type"),
                Some(&json!(canonical.legacy_type))
            );
            let resource_back =
                context_field(&back, "resource", "resource").expect("resource is written");
            let name = resource_back
                .as_str()
                .or_else(|| resource_back.get("name").and_then(Value::as_str));
            assert_eq!(name, Some(resource), "{}", row.legacy_type);
        }
    }

    #[test]
    fn every_cloud_event_type_has_exactly_one_canonical_row() {
        for row in ROWS {
            let canonical = ROWS
                .iter()
                .filter(|other| other.canonical && other.cloud_event_type == row.cloud_event_type)
                .count();
            assert_eq!(canonical, 1, "{}", row.cloud_event_type);
            let same_legacy = ROWS
                .iter()
                .filter(|other| other.legacy_type == row.legacy_type)
                .count();
            assert_eq!(same_legacy, 1, "{}", row.legacy_type);
        }
    }

    #[test]
    fn storage_archived_and_metadata_updated_convert_both_ways() {
        for (legacy_type, cloud_event_type) in [
            (
                "google.storage.object.archive",
                "google.cloud.storage.object.v1.archived",
            ),
            (
                "google.storage.object.metadataUpdate",
                "google.cloud.storage.object.v1.metadataUpdated",
            ),
            (
                "google.storage.object.delete",
                "google.cloud.storage.object.v1.deleted",
            ),
        ] {
            let resource = json!({
                "service": "storage.googleapis.com",
                "name": "projects/_/buckets/bkt/objects/a/b.txt",
                "type": "storage#object"
            });
            let data = json!({"bucket": "bkt", "name": "a/b.txt", "kind": "storage#object"});
            let event = to_cloud_event(&json!({
                "context": {
                    "eventId": "event-1",
                    "timestamp": "2021-03-04T05:06:07.890Z",
                    "eventType": legacy_type,
                    "resource": resource,
                },
                "data": data,
            }));
            let expected = cloud_event(
                cloud_event_type,
                "//storage.googleapis.com/projects/_/buckets/bkt",
                Some("objects/a/b.txt"),
                data.clone(),
            );
            assert_cloud_event_matches(legacy_type, &event, &expected);

            let legacy = to_legacy(&expected);
            assert_eq!(
                legacy,
                json!({
                    "data": data,
                    "context": {
                        "eventId": "event-1",
                        "timestamp": "2021-03-04T05:06:07.890Z",
                        "eventType": legacy_type,
                        "resource": resource,
                    }
                })
            );
        }
    }

    #[test]
    fn storage_object_change_is_read_as_finalized() {
        let event = to_cloud_event(&legacy_event(
            "providers/cloud.storage/eventTypes/object.change",
            json!("projects/_/buckets/bkt/objects/x"),
            json!({"name": "x"}),
        ));
        assert_eq!(event["type"], "google.cloud.storage.object.v1.finalized");
        assert_eq!(
            event["source"],
            "//storage.googleapis.com/projects/_/buckets/bkt"
        );
        assert_eq!(event["subject"], "objects/x");

        // Without `kind` in the data the resource type falls back to the default.
        let legacy = to_legacy(&event);
        assert_eq!(
            legacy["context"]["eventType"],
            "google.storage.object.finalize"
        );
        assert_eq!(
            legacy["context"]["resource"],
            json!({
                "service": "storage.googleapis.com",
                "name": "projects/_/buckets/bkt/objects/x",
                "type": "storage#object"
            })
        );
    }

    #[test]
    fn firestore_created_updated_and_deleted_convert_both_ways() {
        for (legacy_type, cloud_event_type) in [
            (
                "providers/cloud.firestore/eventTypes/document.create",
                "google.cloud.firestore.document.v1.created",
            ),
            (
                "providers/cloud.firestore/eventTypes/document.update",
                "google.cloud.firestore.document.v1.updated",
            ),
            (
                "providers/cloud.firestore/eventTypes/document.delete",
                "google.cloud.firestore.document.v1.deleted",
            ),
        ] {
            let resource = "projects/proj/databases/(default)/documents/users/alice";
            let data = json!({"value": {"fields": {"n": {"integerValue": "1"}}}});
            let event = to_cloud_event(&legacy_event(legacy_type, json!(resource), data.clone()));
            let expected = cloud_event(
                cloud_event_type,
                "//firestore.googleapis.com/projects/proj/databases/(default)",
                Some("documents/users/alice"),
                data.clone(),
            );
            assert_cloud_event_matches(legacy_type, &event, &expected);
            assert_legacy_matches(
                legacy_type,
                &to_legacy(&expected),
                &legacy_context_event(legacy_type, json!(resource), data),
            );
        }
    }

    fn legacy_context_event(event_type: &str, resource: Value, data: Value) -> Value {
        object([
            ("data", data),
            (
                "context",
                object([
                    ("eventId", json!("event-1")),
                    ("timestamp", json!("2021-03-04T05:06:07.890Z")),
                    ("eventType", json!(event_type)),
                    ("resource", resource),
                ]),
            ),
        ])
    }

    #[test]
    fn database_created_and_updated_use_the_location_from_the_domain() {
        for (legacy_type, cloud_event_type, domain, location) in [
            (
                "providers/google.firebase.database/eventTypes/ref.create",
                "google.firebase.database.ref.v1.created",
                "asia-southeast1.firebasedatabase.app",
                "asia-southeast1",
            ),
            (
                "providers/google.firebase.database/eventTypes/ref.update",
                "google.firebase.database.ref.v1.updated",
                "firebaseio.com",
                "us-central1",
            ),
        ] {
            let resource = "projects/_/instances/db-1/refs/rooms/r1";
            let data = json!({"data": null, "delta": {"x": 1}});
            let mut legacy = legacy_event(legacy_type, json!(resource), data.clone());
            if let Some(object) = legacy.as_object_mut() {
                object.insert("domain".to_owned(), json!(domain));
            }
            let event = to_cloud_event(&legacy);
            let expected = cloud_event(
                cloud_event_type,
                &format!(
                    "//firebasedatabase.googleapis.com/projects/_/locations/{location}/instances/db-1"
                ),
                Some("refs/rooms/r1"),
                data.clone(),
            );
            assert_cloud_event_matches(legacy_type, &event, &expected);
            assert_legacy_matches(
                legacy_type,
                &to_legacy(&expected),
                &legacy_context_event(legacy_type, json!(resource), data),
            );
        }
    }

    #[test]
    fn database_domain_may_be_absent_or_inside_the_context() {
        let resource = json!("projects/_/instances/db-1/refs/a");
        let legacy_type = "providers/google.firebase.database/eventTypes/ref.write";
        let event = to_cloud_event(&legacy_event(legacy_type, resource.clone(), json!({})));
        assert_eq!(
            event["source"],
            "//firebasedatabase.googleapis.com/projects/_/locations/us-central1/instances/db-1"
        );
        let event = to_cloud_event(&json!({
            "context": {
                "eventId": "e",
                "timestamp": "2021-03-04T05:06:07Z",
                "eventType": legacy_type,
                "resource": resource,
                "domain": "europe-west1.firebasedatabase.app",
            },
            "data": {},
        }));
        assert_eq!(
            event["source"],
            "//firebasedatabase.googleapis.com/projects/_/locations/europe-west1/instances/db-1"
        );
    }

    #[test]
    fn database_source_without_a_location_still_converts_back() {
        let legacy = to_legacy(&cloud_event(
            "google.firebase.database.ref.v1.deleted",
            "//firebasedatabase.googleapis.com/projects/_/instances/db-1",
            Some("refs/a"),
            json!({"data": 1, "delta": null}),
        ));
        assert_eq!(
            legacy["context"]["resource"],
            "projects/_/instances/db-1/refs/a"
        );
    }

    #[test]
    fn auth_deleted_converts_both_ways() {
        let legacy_type = "providers/firebase.auth/eventTypes/user.delete";
        let legacy_data = json!({
            "uid": "user-7",
            "email": "a@b.c",
            "metadata": {"createdAt": "2020-01-01T00:00:00Z", "lastSignedInAt": "2020-02-02T00:00:00Z"}
        });
        let cloud_data = json!({
            "uid": "user-7",
            "email": "a@b.c",
            "metadata": {"createTime": "2020-01-01T00:00:00Z", "lastSignInTime": "2020-02-02T00:00:00Z"}
        });
        let event = to_cloud_event(&legacy_event(
            legacy_type,
            json!("projects/proj"),
            legacy_data.clone(),
        ));
        let expected = cloud_event(
            "google.firebase.auth.user.v1.deleted",
            "//firebaseauth.googleapis.com/projects/proj",
            Some("users/user-7"),
            cloud_data,
        );
        assert_cloud_event_matches(legacy_type, &event, &expected);
        assert_legacy_matches(
            legacy_type,
            &to_legacy(&expected),
            &legacy_context_event(legacy_type, json!("projects/proj"), legacy_data),
        );
    }

    #[test]
    fn auth_without_uid_or_metadata_has_no_subject_and_unchanged_data() {
        let event = to_cloud_event(&legacy_event(
            "providers/firebase.auth/eventTypes/user.create",
            json!("projects/proj"),
            json!({"email": "a@b.c", "metadata": "odd"}),
        ));
        assert!(event.get("subject").is_none());
        assert_eq!(event["data"], json!({"email": "a@b.c", "metadata": "odd"}));
    }

    #[test]
    fn analytics_written_converts_both_ways() {
        let legacy_type = "providers/google.firebase.analytics/eventTypes/event.log";
        let resource = "projects/proj/events/in_app_purchase";
        let data = json!({"eventDim": [{"name": "in_app_purchase"}]});
        let event = to_cloud_event(&legacy_event(legacy_type, json!(resource), data.clone()));
        let expected = cloud_event(
            "google.firebase.analytics.log.v1.written",
            "//firebaseanalytics.googleapis.com/projects/proj",
            Some("events/in_app_purchase"),
            data.clone(),
        );
        assert_cloud_event_matches(legacy_type, &event, &expected);
        assert_legacy_matches(
            legacy_type,
            &to_legacy(&expected),
            &legacy_context_event(legacy_type, json!(resource), data.clone()),
        );
        // The Go and Node.js frameworks name the service firebase.googleapis.com.
        let other_service = cloud_event(
            "google.firebase.analytics.log.v1.written",
            "//firebase.googleapis.com/projects/proj",
            Some("events/in_app_purchase"),
            data,
        );
        assert_eq!(to_legacy(&other_service)["context"]["resource"], resource);
    }

    #[test]
    fn pubsub_keeps_message_fields_that_are_already_set() {
        let event = to_cloud_event(&legacy_event(
            "google.pubsub.topic.publish",
            json!("projects/p/topics/t"),
            json!({"data": "AA==", "messageId": "m-9", "publishTime": ""}),
        ));
        assert_eq!(
            event["data"],
            json!({"message": {
                "data": "AA==",
                "messageId": "m-9",
                "publishTime": "2021-03-04T05:06:07.890Z"
            }})
        );
    }

    #[test]
    fn pubsub_without_an_object_payload_is_still_wrapped() {
        let wrap = |data: Value| {
            let mut legacy = legacy_event(
                "google.pubsub.topic.publish",
                json!("projects/p/topics/t"),
                data,
            );
            if let Some(object) = legacy.as_object_mut() {
                object.remove("data");
            }
            legacy
        };
        let event = to_cloud_event(&wrap(Value::Null));
        assert_eq!(
            event["data"],
            json!({"message": {"messageId": "event-1", "publishTime": "2021-03-04T05:06:07.890Z"}})
        );
        let event = to_cloud_event(&legacy_event(
            "google.pubsub.topic.publish",
            json!("projects/p/topics/t"),
            json!("text"),
        ));
        assert_eq!(event["data"], json!({"message": "text"}));
    }

    #[test]
    fn pubsub_cloud_event_without_a_message_wrapper_converts() {
        let legacy = to_legacy(&cloud_event(
            "google.cloud.pubsub.topic.v1.messagePublished",
            "//pubsub.googleapis.com/projects/p/topics/t",
            None,
            json!({"data": "AA==", "messageId": "m", "attributes": {"a": "b"}}),
        ));
        assert_eq!(
            legacy["data"],
            json!({"data": "AA==", "attributes": {"a": "b"}})
        );
        let legacy = to_legacy(&cloud_event(
            "google.cloud.pubsub.topic.v1.messagePublished",
            "//pubsub.googleapis.com/projects/p/topics/t",
            None,
            Value::Null,
        ));
        assert_eq!(legacy["data"], Value::Null);
    }

    #[test]
    fn unknown_legacy_types_pass_through() {
        // Service from the resource object.
        let event = to_cloud_event(&json!({
            "context": {
                "eventId": "e",
                "timestamp": "2021-03-04T05:06:07Z",
                "eventType": "google.custom.thing.happen",
                "resource": {"service": "custom.googleapis.com", "name": "projects/p/things/t"},
            },
            "data": {"k": "v"},
        }));
        assert_eq!(event["type"], "google.custom.thing.happen");
        assert_eq!(
            event["source"],
            "//custom.googleapis.com/projects/p/things/t"
        );
        assert!(event.get("subject").is_none());
        assert_eq!(event["data"], json!({"k": "v"}));

        // Service from the family the type's prefix belongs to; no reshaping.
        let event = to_cloud_event(&legacy_event(
            "providers/cloud.firestore/eventTypes/document.rename",
            json!("projects/p/databases/(default)/documents/c/d"),
            json!({"k": "v"}),
        ));
        assert_eq!(
            event["type"],
            "providers/cloud.firestore/eventTypes/document.rename"
        );
        assert_eq!(
            event["source"],
            "//firestore.googleapis.com/projects/p/databases/(default)/documents/c/d"
        );
        assert!(event.get("subject").is_none());

        // No service at all: the resource itself is the source.
        let event = to_cloud_event(&legacy_event("my.event", json!("things/1"), json!(null)));
        assert_eq!(event["source"], "things/1");
        assert_eq!(event["data"], Value::Null);

        // Round trip restores the resource string.
        let back = to_legacy(&event);
        assert_eq!(back["context"]["eventType"], "my.event");
        assert_eq!(back["context"]["resource"], "things/1");
    }

    #[test]
    fn unknown_cloud_event_types_pass_through() {
        let legacy = to_legacy(&cloud_event(
            "com.example.thing.v1.created",
            "//example.com/things/t1",
            Some("parts/p1"),
            json!({"k": "v"}),
        ));
        assert_eq!(
            legacy,
            json!({
                "data": {"k": "v"},
                "context": {
                    "eventId": "event-1",
                    "timestamp": "2021-03-04T05:06:07.890Z",
                    "eventType": "com.example.thing.v1.created",
                    "resource": "things/t1/parts/p1",
                }
            })
        );
        let legacy = to_legacy(&cloud_event(
            "com.example.other",
            "https://example.com/a",
            None,
            json!(1),
        ));
        assert_eq!(legacy["context"]["resource"], "https://example.com/a");
    }

    #[test]
    fn legacy_data_may_be_absent() {
        let mut legacy = legacy_event(
            "providers/cloud.firestore/eventTypes/document.write",
            json!("projects/p/databases/(default)/documents/c/d"),
            Value::Null,
        );
        if let Some(object) = legacy.as_object_mut() {
            object.remove("data");
        }
        let event = to_cloud_event(&legacy);
        assert!(event.get("data").is_none());
        assert_eq!(to_legacy(&event)["data"], Value::Null);
    }

    #[test]
    fn snake_case_context_fields_are_accepted() {
        let event = to_cloud_event(&json!({
            "context": {
                "event_id": "e-snake",
                "timestamp": "2021-03-04T05:06:07Z",
                "event_type": "google.pubsub.topic.publish",
                "resource": "projects/p/topics/t",
            },
            "data": {},
        }));
        assert_eq!(event["id"], "e-snake");
        assert_eq!(
            event["type"],
            "google.cloud.pubsub.topic.v1.messagePublished"
        );
    }

    #[test]
    fn timestamps_are_normalised_to_utc() {
        for (input, expected) in [
            ("2020-09-29T11:32:00.123Z", "2020-09-29T11:32:00.123Z"),
            ("2020-09-29T11:32:00.123+00:00", "2020-09-29T11:32:00.123Z"),
            ("2020-09-29T11:32:00-00:00", "2020-09-29T11:32:00Z"),
            ("2020-09-29t11:32:00z", "2020-09-29T11:32:00Z"),
            (
                "2020-09-29T13:32:00.123456789+02:00",
                "2020-09-29T11:32:00.123456789Z",
            ),
            (
                "2020-09-29T11:32:00.1000+05:30",
                "2020-09-29T06:02:00.1000Z",
            ),
            ("2020-12-31T20:00:00-05:00", "2021-01-01T01:00:00Z"),
            ("2020-03-01T00:30:00+01:00", "2020-02-29T23:30:00Z"),
            ("2021-03-01T00:30:00+01:00", "2021-02-28T23:30:00Z"),
            ("1970-01-01T00:00:00+23:59", "1969-12-31T00:01:00Z"),
            ("2016-12-31T23:59:60Z", "2016-12-31T23:59:60Z"),
            ("2017-01-01T00:59:60+01:00", "2016-12-31T23:59:60Z"),
            ("9999-12-31T23:59:59+01:00", "9999-12-31T22:59:59Z"),
        ] {
            assert_eq!(
                normalize_timestamp(input).as_deref(),
                Ok(expected),
                "{input}"
            );
            if !input.contains(":60") {
                assert_eq!(instant(input), instant(expected), "{input}");
            }
        }
    }

    #[test]
    fn malformed_or_unrepresentable_timestamps_are_rejected() {
        for input in [
            "",
            "yesterday",
            "2020-09-29",
            "2020-09-29T11:32:00",
            "2020-09-29 11:32:00Z",
            "2020-09-29T11:32Z",
            "2020-09-29T11:32:00.Z",
            "2020-09-29T11:32:00.123",
            "2020-09-29T11:32:00+0100",
            "2020-09-29T11:32:00+24:00",
            "2020-09-29T11:32:00+01:60",
            "2020-13-01T00:00:00Z",
            "2020-00-01T00:00:00Z",
            "2021-02-29T00:00:00Z",
            "2020-04-31T00:00:00Z",
            "2020-04-00T00:00:00Z",
            "2020-04-01T24:00:00Z",
            "2020-04-01T23:60:00Z",
            "2020-04-01T23:59:61Z",
            "2020-04-01T23:59:59Zjunk",
            "+2020-04-01T23:59:59Z",
            "２０２０-04-01T23:59:59Z",
            "2020-04-01T23:59:59.12é3Z",
        ] {
            assert_eq!(
                normalize_timestamp(input),
                Err(TimestampError::Malformed),
                "{input}"
            );
        }
        for input in ["0000-01-01T00:00:00+00:01", "9999-12-31T23:59:00-00:01"] {
            assert_eq!(
                normalize_timestamp(input),
                Err(TimestampError::OutOfRange),
                "{input}"
            );
        }
    }

    #[test]
    fn legacy_timestamps_with_offsets_become_utc_cloud_event_times() {
        let mut legacy = legacy_event(
            "google.pubsub.topic.publish",
            json!("projects/p/topics/t"),
            json!({}),
        );
        if let Some(object) = legacy.as_object_mut() {
            object.insert("timestamp".to_owned(), json!("2020-09-29T13:32:00.5+02:00"));
        }
        let event = to_cloud_event(&legacy);
        assert_eq!(event["time"], "2020-09-29T11:32:00.5Z");
        assert_eq!(
            event["data"]["message"]["publishTime"],
            "2020-09-29T11:32:00.5Z"
        );
    }

    #[test]
    fn cloud_event_times_with_offsets_become_utc_legacy_timestamps() {
        let mut event = cloud_event(
            "google.cloud.firestore.document.v1.written",
            "//firestore.googleapis.com/projects/p/databases/(default)",
            Some("documents/c/d"),
            json!({}),
        );
        if let Some(object) = event.as_object_mut() {
            object.insert("time".to_owned(), json!("2020-09-29T06:32:00.123-05:00"));
        }
        assert_eq!(
            legacy_timestamp(&to_legacy(&event)),
            "2020-09-29T11:32:00.123Z"
        );
    }

    #[test]
    fn cloud_event_without_time_gives_a_context_without_timestamp() {
        let mut event = cloud_event(
            "google.cloud.firestore.document.v1.written",
            "//firestore.googleapis.com/projects/p/databases/(default)",
            Some("documents/c/d"),
            json!({}),
        );
        if let Some(object) = event.as_object_mut() {
            object.remove("time");
        }
        let legacy = to_legacy(&event);
        assert!(legacy["context"].get("timestamp").is_none());
        assert_eq!(legacy["context"]["eventId"], "event-1");
    }

    #[test]
    fn data_base64_is_decoded_when_data_is_absent() {
        let with_base64 = |encoded: &str| {
            let mut event = cloud_event("com.example.x", "//example.com/x", None, Value::Null);
            if let Some(object) = event.as_object_mut() {
                object.remove("data");
                object.insert("data_base64".to_owned(), json!(encoded));
            }
            event
        };
        // {"a":1}
        assert_eq!(
            to_legacy(&with_base64("eyJhIjoxfQ=="))["data"],
            json!({"a": 1})
        );
        // hello
        assert_eq!(to_legacy(&with_base64("aGVsbG8="))["data"], json!("hello"));
        // bytes 0xff 0xfe: neither JSON nor UTF-8, so the text is kept.
        assert_eq!(to_legacy(&with_base64("//4="))["data"], json!("//4="));
        assert!(cloud_event_error(&with_base64("not base64!")).contains("`data_base64`"));
    }

    fn assert_legacy_rejected(body: &Value, field: &str) {
        let message = legacy_error(body);
        assert!(message.starts_with("legacy event: "), "{message}");
        assert!(message.contains(field), "`{message}` does not name {field}");
    }

    fn assert_cloud_event_rejected(event: &Value, field: &str) {
        let message = cloud_event_error(event);
        assert!(message.starts_with("cloud event: "), "{message}");
        assert!(message.contains(field), "`{message}` does not name {field}");
    }

    /// A valid flat legacy event with `key` replaced by `value` (or removed).
    fn legacy_with(key: &str, value: Option<Value>) -> Value {
        let mut body = legacy_event(
            "google.storage.object.finalize",
            json!("projects/_/buckets/b/objects/o"),
            json!({}),
        );
        if let Some(object) = body.as_object_mut() {
            match value {
                Some(value) => object.insert(key.to_owned(), value),
                None => object.remove(key),
            };
        }
        body
    }

    /// A valid CloudEvent with `key` replaced by `value` (or removed).
    fn cloud_event_with(key: &str, value: Option<Value>) -> Value {
        let mut event = cloud_event(
            "google.cloud.storage.object.v1.finalized",
            "//storage.googleapis.com/projects/_/buckets/b",
            Some("objects/o"),
            json!({}),
        );
        if let Some(object) = event.as_object_mut() {
            match value {
                Some(value) => object.insert(key.to_owned(), value),
                None => object.remove(key),
            };
        }
        event
    }

    #[test]
    fn legacy_bodies_that_are_not_objects_are_rejected() {
        for body in [
            json!(null),
            json!(1),
            json!("x"),
            json!([]),
            json!([{"eventId": "e"}]),
        ] {
            assert_legacy_rejected(&body, "body must be a JSON object");
        }
        assert_legacy_rejected(
            &json!({"context": 5, "data": {}}),
            "`context` must be an object",
        );
        assert_legacy_rejected(
            &json!({"context": [], "data": {}}),
            "`context` must be an object",
        );
    }

    #[test]
    fn missing_legacy_fields_are_named() {
        for key in ["eventId", "eventType", "timestamp", "resource"] {
            assert_legacy_rejected(&legacy_with(key, None), &format!("missing field `{key}`"));
            assert_legacy_rejected(
                &legacy_with(key, Some(Value::Null)),
                &format!("missing field `{key}`"),
            );
        }
        assert_legacy_rejected(
            &json!({"context": {}, "data": {}}),
            "missing field `eventId`",
        );
    }

    #[test]
    fn legacy_fields_of_the_wrong_type_are_named() {
        for key in ["eventId", "eventType", "timestamp"] {
            for value in [json!(5), json!(true), json!([]), json!({})] {
                assert_legacy_rejected(
                    &legacy_with(key, Some(value)),
                    &format!("`{key}` must be a string"),
                );
            }
            assert_legacy_rejected(
                &legacy_with(key, Some(json!(""))),
                &format!("`{key}` must not be empty"),
            );
        }
        for value in [json!(5), json!(false), json!(["projects/p"])] {
            assert_legacy_rejected(
                &legacy_with("resource", Some(value)),
                "`resource` must be a string or an object",
            );
        }
        assert_legacy_rejected(
            &legacy_with("resource", Some(json!(""))),
            "`resource` must not be empty",
        );
        assert_legacy_rejected(
            &legacy_with(
                "resource",
                Some(json!({"service": "storage.googleapis.com"})),
            ),
            "missing field `resource.name`",
        );
        assert_legacy_rejected(
            &legacy_with("resource", Some(json!({"name": 5}))),
            "`resource.name` must be a string",
        );
        assert_legacy_rejected(
            &legacy_with(
                "resource",
                Some(json!({"name": "projects/_/buckets/b/objects/o", "service": 5})),
            ),
            "`resource.service` must be a string",
        );
    }

    #[test]
    fn bad_legacy_timestamps_are_named() {
        assert_legacy_rejected(
            &legacy_with("timestamp", Some(json!("2020-02-30T00:00:00Z"))),
            "`timestamp` must be an RFC 3339 date-time",
        );
        assert_legacy_rejected(
            &legacy_with("timestamp", Some(json!("x".repeat(10_000)))),
            "`timestamp` must be an RFC 3339 date-time",
        );
        assert_legacy_rejected(
            &legacy_with("timestamp", Some(json!("0000-01-01T00:00:00+01:00"))),
            "`timestamp`",
        );
        // Long values are cut short in the message.
        let message = legacy_error(&legacy_with("timestamp", Some(json!("x".repeat(10_000)))));
        assert!(message.len() < 200, "{message}");
    }

    #[test]
    fn resources_that_do_not_fit_the_type_are_named() {
        for (legacy_type, resource) in [
            ("google.storage.object.finalize", "projects/_/buckets/b"),
            (
                "google.storage.object.finalize",
                "projects/_/buckets/b/objects/",
            ),
            (
                "google.storage.object.finalize",
                "projects//buckets/b/objects/o",
            ),
            ("google.storage.object.finalize", "buckets/b/objects/o"),
            (
                "providers/cloud.firestore/eventTypes/document.write",
                "projects/p/documents/d",
            ),
            (
                "providers/google.firebase.analytics/eventTypes/event.log",
                "projects/p/events/a/b",
            ),
            (
                "providers/google.firebase.database/eventTypes/ref.write",
                "projects/_/refs/a",
            ),
        ] {
            assert_legacy_rejected(
                &legacy_event(legacy_type, json!(resource), json!({})),
                "`resource`",
            );
        }
    }

    #[test]
    fn bad_database_domains_are_named() {
        for domain in [
            json!("example.com"),
            json!(".firebasedatabase.app"),
            json!("a.b.firebasedatabase.app"),
            json!(""),
            json!(7),
            json!({}),
        ] {
            let mut legacy = legacy_event(
                "providers/google.firebase.database/eventTypes/ref.write",
                json!("projects/_/instances/i/refs/a"),
                json!({}),
            );
            if let Some(object) = legacy.as_object_mut() {
                object.insert("domain".to_owned(), domain);
            }
            assert_legacy_rejected(&legacy, "`domain`");
        }
    }

    #[test]
    fn cloud_events_that_are_not_objects_are_rejected() {
        for event in [json!(null), json!(1), json!("x"), json!([])] {
            assert_cloud_event_rejected(&event, "event must be a JSON object");
        }
    }

    #[test]
    fn missing_or_mistyped_cloud_event_attributes_are_named() {
        for key in ["id", "source", "type"] {
            assert_cloud_event_rejected(
                &cloud_event_with(key, None),
                &format!("missing field `{key}`"),
            );
            assert_cloud_event_rejected(
                &cloud_event_with(key, Some(Value::Null)),
                &format!("missing field `{key}`"),
            );
            assert_cloud_event_rejected(
                &cloud_event_with(key, Some(json!(5))),
                &format!("`{key}` must be a string"),
            );
            assert_cloud_event_rejected(
                &cloud_event_with(key, Some(json!(""))),
                &format!("`{key}` must not be empty"),
            );
        }
        assert_cloud_event_rejected(
            &cloud_event_with("time", Some(json!(5))),
            "`time` must be a string",
        );
        assert_cloud_event_rejected(
            &cloud_event_with("time", Some(json!("noon"))),
            "`time` must be an RFC 3339 date-time",
        );
        assert_cloud_event_rejected(
            &cloud_event_with("subject", Some(json!(["objects/o"]))),
            "`subject` must be a string",
        );
        assert_cloud_event_rejected(
            &cloud_event_with("data_base64", Some(json!(5))).tap_remove("data"),
            "`data_base64` must be a string",
        );
    }

    trait TapRemove {
        fn tap_remove(self, key: &str) -> Self;
    }

    impl TapRemove for Value {
        fn tap_remove(mut self, key: &str) -> Self {
            if let Some(object) = self.as_object_mut() {
                object.remove(key);
            }
            self
        }
    }

    #[test]
    fn known_cloud_event_types_need_their_source_and_subject() {
        for source in [
            "storage.googleapis.com/projects/_/buckets/b",
            "//storage.googleapis.com/",
            "///x",
            "//",
        ] {
            assert_cloud_event_rejected(
                &cloud_event_with("source", Some(json!(source))),
                "`source`",
            );
        }
        assert_cloud_event_rejected(
            &cloud_event_with("subject", None),
            "missing field `subject`",
        );
        assert_cloud_event_rejected(
            &cloud_event_with("subject", Some(json!(""))),
            "missing field `subject`",
        );
        // Pub/Sub and Auth have no subject to need.
        let legacy = to_legacy(&cloud_event(
            "google.firebase.auth.user.v1.created",
            "//firebaseauth.googleapis.com/projects/p",
            None,
            json!({}),
        ));
        assert_eq!(legacy["context"]["resource"], "projects/p");
    }

    #[test]
    fn convert_error_is_a_displayable_error() {
        let error = ConvertError("legacy event: missing field `eventId`".to_owned());
        assert_eq!(error.to_string(), "legacy event: missing field `eventId`");
        let boxed: Box<dyn std::error::Error> = Box::new(error.clone());
        assert_eq!(boxed.to_string(), error.0);
    }

    /// A small deterministic generator, so failures reproduce.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }

        fn below(&mut self, bound: usize) -> usize {
            usize::try_from(self.next()).unwrap_or(0) % bound.max(1)
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items.get(self.below(items.len())).copied().unwrap_or("")
        }
    }

    const ODD_STRINGS: &[&str] = &[
        "",
        "/",
        "//",
        "///",
        "//svc/",
        "//pubsub.googleapis.com/projects/p/topics/t",
        "//firebasedatabase.googleapis.com/projects/_/locations/x",
        "//firebasedatabase.googleapis.com/projects/_/locations",
        "//firebasedatabase.googleapis.com/projects",
        "projects/_/instances/i/refs/",
        "projects/_/instances/i/refs/a",
        "projects/_/buckets/b/objects/o",
        "projects/_/buckets/b/objects/",
        "projects/p/databases/(default)/documents/d",
        "projects/p/events/a",
        "projects/p/events/a/b",
        "projects/p",
        "projects/p/topics/t",
        "users/é/ü/日本",
        "2020-02-29T23:59:60.5-23:59",
        "0000-01-01T00:00:00+00:01",
        "9999-12-31T23:59:59-00:01",
        "2020-09-29T11:32:00.123Z",
        "2020-13-01T00:00:00Z",
        "2020-09-29T11:32:00.１Z",
        "firebaseio.com",
        "x.firebasedatabase.app",
        ".firebasedatabase.app",
        "eyJhIjoxfQ==",
        "!!!",
        "\u{0}",
        "storage#object",
    ];

    const ODD_KEYS: &[&str] = &[
        "context",
        "data",
        "eventId",
        "event_id",
        "eventType",
        "event_type",
        "resource",
        "timestamp",
        "name",
        "service",
        "type",
        "id",
        "source",
        "time",
        "subject",
        "specversion",
        "domain",
        "metadata",
        "createdAt",
        "createTime",
        "uid",
        "message",
        "messageId",
        "publishTime",
        "data_base64",
        "kind",
    ];

    fn odd_string(rng: &mut Lcg) -> String {
        match rng.below(4) {
            0 => "ab/".repeat(20_000 + rng.below(20_000)),
            1 => {
                let row = ROWS.get(rng.below(ROWS.len()));
                match (row, rng.below(2)) {
                    (Some(row), 0) => row.legacy_type.to_owned(),
                    (Some(row), _) => row.cloud_event_type.to_owned(),
                    (None, _) => String::new(),
                }
            }
            _ => rng.pick(ODD_STRINGS).to_owned(),
        }
    }

    fn odd_value(rng: &mut Lcg, depth: usize) -> Value {
        let choices = if depth == 0 { 5 } else { 8 };
        match rng.below(choices) {
            0 => Value::Null,
            1 => Value::Bool(rng.below(2) == 0),
            2 => match rng.below(4) {
                0 => json!(i64::MIN),
                1 => json!(u64::MAX),
                2 => json!(-0.5e300),
                _ => json!(0),
            },
            3 | 4 => Value::from(odd_string(rng)),
            5 => Value::Array(
                (0..rng.below(4))
                    .map(|_| odd_value(rng, depth - 1))
                    .collect(),
            ),
            _ => {
                let mut object = Map::new();
                for _ in 0..rng.below(6) {
                    object.insert(rng.pick(ODD_KEYS).to_owned(), odd_value(rng, depth - 1));
                }
                Value::Object(object)
            }
        }
    }

    fn nested_nulls(depth: usize) -> Value {
        (0..depth).fold(Value::Null, |inner, level| {
            if level % 2 == 0 {
                Value::Array(vec![inner, Value::Null])
            } else {
                single_entry("data", inner)
            }
        })
    }

    /// Replaces one field (top level, in `context`, in `resource` or in `data`)
    /// of a valid event with an odd value.
    fn mutate(rng: &mut Lcg, event: &Value) -> Value {
        let mut event = event.clone();
        let replacement = odd_value(rng, 3);
        let key = rng.pick(ODD_KEYS).to_owned();
        let target = match rng.below(4) {
            0 => event.get_mut("context"),
            1 => event
                .get_mut("context")
                .and_then(|context| context.get_mut("resource")),
            2 => event.get_mut("data"),
            _ => Some(&mut event),
        };
        if let Some(object) = target.and_then(Value::as_object_mut) {
            if rng.below(5) == 0 {
                object.remove(&key);
            } else {
                object.insert(key, replacement);
            }
        }
        event
    }

    fn check_outputs_are_well_formed(input: &Value) {
        if let Ok(event) = legacy_to_cloud_event(input) {
            for key in ["id", "source", "type", "time"] {
                assert!(
                    event
                        .get(key)
                        .and_then(Value::as_str)
                        .is_some_and(|text| !text.is_empty()),
                    "`{key}` missing from {event}"
                );
            }
            assert!(str_at(&event, "time").ends_with('Z'));
            let _ = cloud_event_to_legacy(&event);
        }
        if let Ok(legacy) = cloud_event_to_legacy(input) {
            if let Some(timestamp) = legacy["context"].get("timestamp") {
                assert!(timestamp.as_str().is_some_and(|text| text.ends_with('Z')));
            }
            assert!(is_legacy_event(&legacy), "{legacy}");
            let _ = legacy_to_cloud_event(&legacy);
        }
        let _ = is_legacy_event(input);
    }

    #[test]
    fn odd_inputs_never_panic() {
        let mut rng = Lcg(0x5eed);
        let mut inputs: Vec<Value> = (0..400).map(|_| odd_value(&mut rng, 4)).collect();
        for case in &CASES {
            for text in [
                case.legacy_input,
                case.cloud_event_input,
                case.legacy_output,
            ] {
                let valid = parse(text);
                inputs.extend((0..15).map(|_| mutate(&mut rng, &valid)));
            }
        }
        for depth in [1, 10, 100, 500] {
            let nested = nested_nulls(depth);
            inputs.push(nested.clone());
            inputs.push(legacy_event(
                "google.pubsub.topic.publish",
                nested.clone(),
                nested.clone(),
            ));
            inputs.push(cloud_event(
                "google.cloud.pubsub.topic.v1.messagePublished",
                "//x/y",
                None,
                nested,
            ));
        }
        assert!(inputs.len() >= 300, "only {} inputs", inputs.len());
        for input in &inputs {
            check_outputs_are_well_formed(input);
        }
    }
}
