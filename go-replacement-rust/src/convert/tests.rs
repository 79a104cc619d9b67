//! The conversion's tests: the conformance vectors, every table row both ways, and the
//! refusals with the field they name.

use super::time::{TimestampError, normalize_timestamp};
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
    let time = chrono::DateTime::parse_from_rfc3339(raw).expect("RFC 3339 timestamp");
    (time.timestamp(), time.timestamp_subsec_nanos())
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
        assert_cloud_event_rejected(&cloud_event_with("source", Some(json!(source))), "`source`");
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
    assert_eq!(boxed.to_string(), error.to_string());
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
