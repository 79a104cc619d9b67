//! The Functions Framework conformance checks, run against `test-functions` as a real process
//! per signature type, with every vector in `tests/conformance/vectors/`. Comparison follows
//! the rules of Google's conformance tool (see the vectors' README).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{InDir, command, request, start_in_dir};
use serde_json::{Map, Value};

const EVENTS: [&str; 17] = [
    "firebase-auth",
    "firebase-db1",
    "firebase-db2",
    "firebase-db3",
    "firebase-db4",
    "firebase-db5",
    "firebase-db6",
    "firebase-db7",
    "firebase-db8",
    "firebase-dbdelete1",
    "firebase-dbdelete2",
    "firestore_complex",
    "firestore_simple",
    "legacy_pubsub",
    "pubsub_binary",
    "pubsub_text",
    "storage",
];

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/vectors")
}

fn vector(name: &str) -> Value {
    let path = vectors().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

type Target = InDir;

fn serve(target: &str, signature: &str, sleep_ms: Option<u64>) -> Target {
    let mut cmd = command();
    cmd.env("PORT", "0")
        .env("FUNCTION_TARGET", target)
        .env("FUNCTION_SIGNATURE_TYPE", signature);
    if let Some(ms) = sleep_ms {
        cmd.env("CONFORMANCE_SLEEP_MS", ms.to_string());
    }
    start_in_dir(cmd, "conformance")
}

/// Sends a request, expects a 2xx without ETag, and returns what the function recorded.
fn send(target: &Target, what: &str, headers: &[(&str, &str)], body: &[u8]) -> Value {
    let output = target.dir.join("function_output.json");
    let _ = std::fs::remove_file(&output);
    let reply = request(target.server.port, "POST", "/", headers, body).expect("request");
    assert!(
        (200..300).contains(&reply.status),
        "{what}: status {} body {}",
        reply.status,
        reply.text()
    );
    assert!(reply.header("etag").is_none(), "{what}: ETag sent");
    let text =
        std::fs::read_to_string(&output).unwrap_or_else(|e| panic!("{what}: no output: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: output not JSON: {e}: {text}"))
}

/// A structured CloudEvent as a binary-mode request: attributes as `ce-` headers,
/// `datacontenttype` as Content-Type, `data` as the body.
fn binary_mode(event: &Value) -> (Vec<(String, String)>, Vec<u8>) {
    let mut headers = Vec::new();
    let mut body = Vec::new();
    for (name, value) in event.as_object().expect("event object") {
        match name.as_str() {
            "data" => body = serde_json::to_vec(value).expect("data"),
            "datacontenttype" => headers.push((
                "Content-Type".to_owned(),
                value.as_str().unwrap_or_default().to_owned(),
            )),
            _ => {
                let text = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned);
                headers.push((format!("ce-{name}"), text));
            }
        }
    }
    (headers, body)
}

fn as_refs(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

fn instant(what: &str, value: Option<&Value>) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    let text = value?
        .as_str()
        .unwrap_or_else(|| panic!("{what}: time is not a string"));
    Some(
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap_or_else(|e| panic!("{what}: {text}: {e}")),
    )
}

/// id, source, subject, type, time (as an instant), datacontenttype (exact) and data (deep).
fn assert_cloud_event(what: &str, actual: &Value, expected: &Value) {
    assert!(
        actual.get("specversion").is_some(),
        "{what}: no specversion in {actual}"
    );
    for key in ["id", "source", "subject", "type", "datacontenttype"] {
        assert_eq!(
            actual.get(key),
            expected.get(key),
            "{what}: `{key}` differs\nactual {actual}\nexpected {expected}"
        );
    }
    assert_eq!(
        instant(what, actual.get("time")),
        instant(what, expected.get("time")),
        "{what}: time differs"
    );
    assert_eq!(
        actual.get("data"),
        expected.get("data"),
        "{what}: data differs"
    );
}

fn context_field<'a>(event: &'a Value, key: &str, alias: &str) -> Option<&'a Value> {
    let context = event.get("context").unwrap_or(event);
    context.get(key).or_else(|| context.get(alias))
}

/// eventId, eventType, timestamp (as an instant), resource (deep) and data (deep).
fn assert_legacy(what: &str, actual: &Value, expected: &Value) {
    for (key, alias) in [
        ("eventId", "event_id"),
        ("eventType", "event_type"),
        ("resource", "resource"),
    ] {
        assert_eq!(
            context_field(actual, key, alias),
            context_field(expected, key, alias),
            "{what}: `{key}` differs\nactual {actual}\nexpected {expected}"
        );
    }
    let timestamp = |v: &Value| instant(what, context_field(v, "timestamp", "timestamp"));
    assert_eq!(
        timestamp(actual),
        timestamp(expected),
        "{what}: timestamp differs"
    );
    let stamp = context_field(actual, "timestamp", "timestamp")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(
        stamp.ends_with('Z'),
        "{what}: timestamp {stamp} is not UTC with Z"
    );
    assert_eq!(
        actual.get("data"),
        expected.get("data"),
        "{what}: data differs"
    );
}

/// Request headers as owned pairs.
type Headers = Vec<(String, String)>;

const JSON: (&str, &str) = ("Content-Type", "application/json");
const STRUCTURED: (&str, &str) = ("Content-Type", "application/cloudevents+json");

#[test]
fn cloudevent_function_receives_every_vector() {
    let target = serve("cloudevent", "cloudevent", None);
    for event in EVENTS {
        let input = vector(&format!("{event}-cloudevent-input.json"));
        let (headers, body) = binary_mode(&input);
        let got = send(
            &target,
            &format!("{event} binary"),
            &as_refs(&headers),
            &body,
        );
        assert_cloud_event(&format!("{event} binary"), &got, &input);

        let got = send(
            &target,
            &format!("{event} structured"),
            &[STRUCTURED],
            input.to_string().as_bytes(),
        );
        assert_cloud_event(&format!("{event} structured"), &got, &input);

        let legacy = vector(&format!("{event}-legacy-input.json"));
        let got = send(
            &target,
            &format!("{event} legacy->cloudevent"),
            &[JSON],
            legacy.to_string().as_bytes(),
        );
        assert_cloud_event(
            &format!("{event} legacy->cloudevent"),
            &got,
            &vector(&format!("{event}-cloudevent-output.json")),
        );
    }
}

#[test]
fn legacy_event_function_receives_every_vector() {
    let target = serve("legacyevent", "event", None);
    for event in EVENTS {
        let expected = vector(&format!("{event}-legacy-output.json"));
        let legacy = vector(&format!("{event}-legacy-input.json"));
        let got = send(
            &target,
            &format!("{event} legacy"),
            &[JSON],
            legacy.to_string().as_bytes(),
        );
        assert_legacy(&format!("{event} legacy"), &got, &expected);

        let converted_name = format!("{event}-legacy-output-converted.json");
        let from_cloud_event = if vectors().join(&converted_name).exists() {
            vector(&converted_name)
        } else {
            expected
        };
        let input = vector(&format!("{event}-cloudevent-input.json"));
        let (headers, body) = binary_mode(&input);
        let got = send(
            &target,
            &format!("{event} binary->legacy"),
            &as_refs(&headers),
            &body,
        );
        assert_legacy(&format!("{event} binary->legacy"), &got, &from_cloud_event);
        let got = send(
            &target,
            &format!("{event} structured->legacy"),
            &[STRUCTURED],
            input.to_string().as_bytes(),
        );
        assert_legacy(
            &format!("{event} structured->legacy"),
            &got,
            &from_cloud_event,
        );
    }
}

#[test]
fn http_function_records_the_body() {
    let target = serve("http", "http", None);
    let got = send(&target, "http", &[JSON], br#"{"res":"PASS"}"#);
    assert_eq!(got, serde_json::json!({"res": "PASS"}));
}

#[test]
fn typed_function_echoes_the_payload() {
    let target = serve("typed", "http", None);
    let reply = request(
        target.server.port,
        "POST",
        "/",
        &[JSON],
        br#"{"message":"Hello world!"}"#,
    )
    .expect("request");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(reply.header("etag").is_none());
    let got: Value = serde_json::from_slice(&reply.body).expect("JSON response");
    assert_eq!(
        got,
        serde_json::json!({"payload": {"message": "Hello world!"}})
    );

    let bad = request(
        target.server.port,
        "POST",
        "/",
        &[JSON],
        br#"{"message": 42}"#,
    )
    .expect("request");
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("message"), "{}", bad.text());
}

#[test]
fn robots_and_favicon_are_404_for_every_signature() {
    for (target, signature) in [
        ("http", "http"),
        ("cloudevent", "cloudevent"),
        ("legacyevent", "event"),
        ("typed", "http"),
    ] {
        let target = serve(target, signature, None);
        for path in ["/robots.txt", "/favicon.ico"] {
            let reply = common::get(target.server.port, path).expect("request");
            assert_eq!(reply.status, 404, "{path}");
        }
        assert!(!target.dir.join("function_output.json").exists());
    }
}

/// One request that is valid for the target, as the conformance tool's concurrency check
/// sends it.
fn concurrency_request(target: &str) -> (Vec<(String, String)>, Vec<u8>) {
    match target {
        "http" => (
            vec![("Content-Type".into(), "application/json".into())],
            br#"{"data": "hello"}"#.to_vec(),
        ),
        _ => (
            vec![("Content-Type".into(), "application/json".into())],
            vector("firebase-auth-legacy-input.json")
                .to_string()
                .into_bytes(),
        ),
    }
}

#[test]
fn ten_parallel_requests_overlap() {
    for (target, signature) in [
        ("http", "http"),
        ("cloudevent", "cloudevent"),
        ("legacyevent", "event"),
    ] {
        let server = serve(target, signature, Some(1000));
        let port = server.server.port;
        let (headers, body) = concurrency_request(target);
        let one = move |headers: Vec<(String, String)>, body: Vec<u8>| {
            let reply = request(port, "POST", "/", &as_refs(&headers), &body).expect("request");
            assert!(
                (200..300).contains(&reply.status),
                "{target}: {}",
                reply.status
            );
        };
        let started = Instant::now();
        one(headers.clone(), body.clone());
        let single = started.elapsed();

        let started = Instant::now();
        let batch: Vec<_> = (0..10)
            .map(|_| {
                let (headers, body) = (headers.clone(), body.clone());
                std::thread::spawn(move || one(headers, body))
            })
            .collect();
        for request in batch {
            request.join().expect("request thread");
        }
        let all = started.elapsed();
        assert!(
            single >= Duration::from_millis(1000),
            "{target}: the sleep did not apply"
        );
        assert!(
            all < single * 2,
            "{target}: 10 parallel requests took {all:?}, one took {single:?}"
        );
    }
}

#[test]
fn malformed_events_are_400_and_the_function_is_not_invoked() {
    let auth = vector("firebase-auth-cloudevent-input.json");
    let (headers, body) = binary_mode(&auth);
    let without = |name: &str| -> Vec<(String, String)> {
        headers.iter().filter(|(k, _)| k != name).cloned().collect()
    };
    let mut structured_without_id: Map<String, Value> =
        auth.as_object().cloned().unwrap_or_default();
    structured_without_id.remove("id");

    for (target, signature) in [("cloudevent", "cloudevent"), ("legacyevent", "event")] {
        let server = serve(target, signature, None);
        let port = server.server.port;
        let cases: Vec<(&str, Headers, Vec<u8>, &str)> = vec![
            ("no ce-type", without("ce-type"), body.clone(), "ce-type"),
            ("no ce-id", without("ce-id"), body.clone(), "ce-id"),
            ("no ce-source", without("ce-source"), body.clone(), "ce-source"),
            ("no ce-specversion", without("ce-specversion"), body.clone(), "ce-specversion"),
            ("invalid JSON data", headers.clone(), b"{not json".to_vec(), "JSON"),
            (
                "structured without id",
                vec![("Content-Type".into(), "application/cloudevents+json".into())],
                Value::Object(structured_without_id.clone()).to_string().into_bytes(),
                "id",
            ),
            (
                "structured, invalid JSON",
                vec![("Content-Type".into(), "application/cloudevents+json".into())],
                b"{\"id\":".to_vec(),
                "JSON",
            ),
            (
                "neither",
                vec![("Content-Type".into(), "application/json".into())],
                br#"{"hello": "world"}"#.to_vec(),
                "not an event",
            ),
            ("not JSON at all", vec![("Content-Type".into(), "text/plain".into())], b"hello".to_vec(), "not valid JSON"),
            (
                "legacy without eventId",
                vec![("Content-Type".into(), "application/json".into())],
                br#"{"eventType": "google.pubsub.topic.publish", "resource": "projects/p/topics/t", "timestamp": "2020-09-29T11:32:00.000Z", "data": {}}"#.to_vec(),
                "eventId",
            ),
        ];
        for (what, headers, body, names) in cases {
            if what == "neither" && target == "legacyevent" {
                // Legacy event functions take plain JSON as data sent by hand (http.rs
                // tests that); only CloudEvent functions refuse it.
                continue;
            }
            let reply = request(port, "POST", "/", &as_refs(&headers), &body).expect("request");
            assert_eq!(reply.status, 400, "{target} {what}: {}", reply.text());
            assert!(
                reply.text().contains(names),
                "{target} {what}: message {:?} does not name {names}",
                reply.text()
            );
            assert!(
                !server.dir.join("function_output.json").exists(),
                "{target} {what}: the function ran"
            );
        }
        let get = common::get(port, "/").expect("request");
        assert_eq!(get.status, 405, "{target}: GET");
        // Still serving good events.
        let good = request(port, "POST", "/", &as_refs(&headers), &body).expect("request");
        assert_eq!(good.status, 204, "{target}: {}", good.text());
    }
}
