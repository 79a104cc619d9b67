//! Google's event payloads, typed: every fixture of google-cloudevents, sent as JSON and as
//! protobuf (bytes made by Google's own Python library, see
//! tests/fixtures/google-events-protobuf), in binary and structured mode, to
//! `google_event_echo`, which decodes the data into its generated type through
//! `CloudEvent<T>` and answers it re-encoded as proto3 JSON. The four must give one value.

mod common;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Value, json};

use common::serve;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Fixture {
    name: String,
    json: Vec<u8>,
    protobuf: Vec<u8>,
    cloud_event_type: &'static str,
}

/// The fixtures of the manifest, each with a CloudEvent type whose data is its message.
fn fixtures() -> Vec<Fixture> {
    let folder = root().join("tests/fixtures/google-events-protobuf");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(folder.join("manifest.json")).expect("manifest"))
            .expect("manifest JSON");
    let table = functions_framework::events::cloud_event_types::ALL;
    manifest["fixtures"]
        .as_array()
        .expect("fixtures")
        .iter()
        .map(|fixture| {
            let message = fixture["message"].as_str().expect("message");
            let json_path = fixture["json"].as_str().expect("json");
            let cloud_event_type = table
                .iter()
                .find(|(_, data, _)| *data == message)
                .map(|(ty, _, _)| *ty)
                .unwrap_or_else(|| panic!("no CloudEvent type carries {message}"));
            Fixture {
                name: json_path.rsplit('/').next().unwrap_or(json_path).to_owned(),
                json: std::fs::read(root().join(json_path)).expect("JSON fixture"),
                protobuf: std::fs::read(folder.join(fixture["pb"].as_str().expect("pb")))
                    .expect("protobuf fixture"),
                cloud_event_type,
            }
        })
        .collect()
}

fn binary(port: u16, ty: &str, content_type: &str, body: &[u8]) -> common::Reply {
    common::request(
        port,
        "POST",
        "/",
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", "fixture-1"),
            ("ce-source", "//test/google-events"),
            ("ce-type", ty),
            ("content-type", content_type),
        ],
        body,
    )
    .expect("reply")
}

fn structured(port: u16, event: &Value) -> common::Reply {
    common::request(
        port,
        "POST",
        "/",
        &[("content-type", "application/cloudevents+json")],
        event.to_string().as_bytes(),
    )
    .expect("reply")
}

fn answer(reply: &common::Reply, what: &str) -> Value {
    assert_eq!(reply.status, 200, "{what}: {}", reply.text());
    serde_json::from_slice(reply.body.as_ref()).expect("JSON answer")
}

#[test]
fn every_fixture_decodes_to_one_value_from_json_and_protobuf_in_both_modes() {
    let server = serve(Some("google_event_echo"), &[]);
    let fixtures = fixtures();
    assert_eq!(fixtures.len(), 19);
    for fixture in &fixtures {
        let ty = fixture.cloud_event_type;
        let name = &fixture.name;
        let from_json = answer(
            &binary(server.port, ty, "application/json", &fixture.json),
            &format!("{name}, binary JSON"),
        );
        let from_protobuf = answer(
            &binary(server.port, ty, "application/protobuf", &fixture.protobuf),
            &format!("{name}, binary protobuf"),
        );
        let data: Value = serde_json::from_slice(&fixture.json).expect("fixture JSON");
        let base = json!({
            "specversion": "1.0", "id": "fixture-2", "source": "//test/google-events", "type": ty,
        });
        let mut with_json = base.clone();
        with_json["datacontenttype"] = json!("application/json");
        with_json["data"] = data;
        let structured_json = answer(
            &structured(server.port, &with_json),
            &format!("{name}, structured JSON"),
        );
        let mut with_protobuf = base;
        with_protobuf["datacontenttype"] = json!("application/protobuf");
        with_protobuf["data_base64"] =
            json!(base64::engine::general_purpose::STANDARD.encode(&fixture.protobuf));
        let structured_protobuf = answer(
            &structured(server.port, &with_protobuf),
            &format!("{name}, structured protobuf"),
        );
        // A decoder that dropped everything would agree with itself: the value has content.
        assert!(
            from_json.as_object().is_some_and(|o| !o.is_empty()),
            "{name}: {from_json}"
        );
        assert_eq!(from_json, from_protobuf, "{name}: JSON and protobuf differ");
        assert_eq!(
            from_json, structured_json,
            "{name}: structured JSON differs"
        );
        assert_eq!(
            from_json, structured_protobuf,
            "{name}: structured protobuf differs"
        );
    }
}

#[test]
fn unknown_types_and_malformed_data_get_400_naming_the_problem() {
    let server = serve(Some("google_event_echo"), &[]);
    let unknown = binary(
        server.port,
        "com.example.not.google",
        "application/json",
        b"{}",
    );
    assert_eq!(unknown.status, 400);
    assert!(
        unknown.text().contains("com.example.not.google"),
        "{}",
        unknown.text()
    );

    let pubsub = "google.cloud.pubsub.topic.v1.messagePublished";
    // A wrong JSON type names the field.
    let wrong = binary(
        server.port,
        pubsub,
        "application/json",
        br#"{"message": {"attributes": 7}}"#,
    );
    assert_eq!(wrong.status, 400);
    assert!(wrong.text().contains("attributes"), "{}", wrong.text());

    // Truncated protobuf, and a wrong wire type (field 1 as a varint, not a message).
    let fixture = fixtures()
        .into_iter()
        .find(|f| f.name.starts_with("DocumentEventData"))
        .expect("a Firestore fixture");
    let firestore = fixture.cloud_event_type;
    let truncated = &fixture.protobuf[..fixture.protobuf.len() / 2];
    for bad in [truncated, &[0x08, 0x01][..], &[0xff, 0xff, 0xff][..]] {
        let reply = binary(server.port, firestore, "application/protobuf", bad);
        assert_eq!(reply.status, 400, "{bad:?}: {}", reply.text());
        assert!(reply.text().contains(firestore), "{}", reply.text());
    }
    // The server keeps serving.
    let good = binary(
        server.port,
        firestore,
        "application/protobuf",
        &fixture.protobuf,
    );
    assert_eq!(good.status, 200);
}

/// Every CloudEvent type of the catalog reaches its data type: an empty object in JSON and
/// an empty message in protobuf decode to the type's default value.
#[cfg(feature = "all-events")]
#[test]
fn every_type_of_the_catalog_is_decoded_into_its_data_type() {
    let server = serve(Some("google_event_echo"), &[]);
    let table = functions_framework::events::cloud_event_types::ALL;
    assert_eq!(table.len(), 372);
    for (ty, message, _feature) in table {
        let json = binary(server.port, ty, "application/json", b"{}");
        assert_eq!(json.status, 200, "{ty} ({message}): {}", json.text());
        let protobuf = binary(server.port, ty, "application/protobuf", b"");
        assert_eq!(
            protobuf.status,
            200,
            "{ty} ({message}): {}",
            protobuf.text()
        );
        assert_eq!(json.text(), protobuf.text(), "{ty}");
    }
}

#[test]
fn huge_repeated_fields_neither_crash_nor_stall_the_server() {
    let server = serve(Some("google_event_echo"), &[]);
    let pubsub = "google.cloud.pubsub.topic.v1.messagePublished";
    // A length-delimited field that claims 4 GiB and brings 3 bytes.
    let claims_too_much = [0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3];
    let reply = binary(
        server.port,
        pubsub,
        "application/protobuf",
        &claims_too_much,
    );
    assert_eq!(reply.status, 400, "{}", reply.text());

    // 200,000 attributes in JSON and 100,000 repeated messages in protobuf: large, valid,
    // decoded within the body limit.
    let attributes: serde_json::Map<String, Value> = (0..200_000)
        .map(|i| (format!("k{i}"), Value::from("v")))
        .collect();
    let json = json!({"message": {"attributes": attributes, "messageId": "big"}});
    let reply = binary(
        server.port,
        pubsub,
        "application/json",
        json.to_string().as_bytes(),
    );
    assert_eq!(reply.status, 200);
    let answer: Value = serde_json::from_slice(reply.body.as_ref()).expect("JSON");
    assert_eq!(
        answer["message"]["attributes"].as_object().map(|a| a.len()),
        Some(200_000)
    );
    // Field 1 (message) of MessagePublishedData, 100,000 times: the last one wins.
    let mut repeated = Vec::new();
    for _ in 0..100_000 {
        repeated.extend_from_slice(&[0x0a, 0x02, 0x32, 0x00]);
    }
    let reply = binary(server.port, pubsub, "application/protobuf", &repeated);
    assert_eq!(reply.status, 200, "{}", reply.text());
    // And the server still answers a small event.
    let small = binary(
        server.port,
        pubsub,
        "application/json",
        br#"{"message": {}}"#,
    );
    assert_eq!(small.status, 200);
}

/// A failed call's audit log entry carries a `google.rpc.Status` whose `details` are `Any`s:
/// in proto3 JSON, each is its message's own object with an `"@type"`. The event decodes, and
/// the details come back as they were sent.
#[test]
fn status_details_in_json_decode_and_come_back_as_sent() {
    let server = serve(Some("google_event_echo"), &[]);
    let fixture = fixtures()
        .into_iter()
        .find(|f| f.name.starts_with("LogEntryData"))
        .expect("an audit log fixture");
    let mut entry: Value = serde_json::from_slice(&fixture.json).expect("fixture JSON");
    let status = json!({
        "code": 7,
        "message": "Permission 'pubsub.topics.create' denied",
        "details": [{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "IAM_PERMISSION_DENIED",
            "domain": "iam.googleapis.com",
            "metadata": {"permission": "pubsub.topics.create"}
        }]
    });
    entry["protoPayload"]["status"] = status.clone();
    let ty = fixture.cloud_event_type;
    let body = entry.to_string();
    let from_binary = answer(
        &binary(server.port, ty, "application/json", body.as_bytes()),
        "binary",
    );
    assert_eq!(
        from_binary["protoPayload"]["status"], status,
        "{from_binary}"
    );
    // Times are written back in UTC with `Z`, as the proto3 JSON mapping asks.
    for time in ["timestamp", "receiveTimestamp"] {
        let written = from_binary[time].as_str().unwrap_or_default();
        assert!(written.ends_with('Z'), "{time}: {written}");
    }
    let event = json!({
        "specversion": "1.0", "id": "audit-2", "source": "//test/google-events", "type": ty,
        "datacontenttype": "application/json", "data": entry,
    });
    let from_structured = answer(&structured(server.port, &event), "structured");
    assert_eq!(from_structured, from_binary);

    // Members without a type cannot be read: 400, naming the field.
    entry["protoPayload"]["status"]["details"] = json!([{"reason": "IAM_PERMISSION_DENIED"}]);
    let untyped = binary(
        server.port,
        ty,
        "application/json",
        entry.to_string().as_bytes(),
    );
    assert_eq!(untyped.status, 400, "{}", untyped.text());
    assert!(untyped.text().contains("@type"), "{}", untyped.text());
}
