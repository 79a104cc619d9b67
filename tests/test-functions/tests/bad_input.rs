//! Generated bad input against the real server: malformed HTTP, oversized headers and
//! bodies, lying lengths, invalid UTF-8, broken JSON, malformed CloudEvents and legacy
//! events, and malformed Google event data (Firestore protobuf and JSON) for a typed
//! `CloudEvent<DocumentEventData>`. Every case must get a 4xx with a message, must never reach the function, and
//! the next good request must succeed.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use common::{InDir, command, parse, start_in_dir};
use serde_json::{Value, json};

/// A request sent as raw bytes on a fresh connection.
struct Case {
    name: String,
    raw: Vec<u8>,
    /// Refused by the HTTP layer: the message is the status line's reason phrase. Otherwise
    /// the framework refused it and the body must say why.
    protocol: bool,
}

fn request(method: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut raw = format!("{method} / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    if !headers.iter().any(|(n, _)| {
        n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("transfer-encoding")
    }) {
        raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    raw.push_str("\r\n");
    let mut raw = raw.into_bytes();
    raw.extend_from_slice(body);
    raw
}

fn post_json(body: &[u8], content_type: &str) -> Vec<u8> {
    request("POST", &[("Content-Type", content_type.to_owned())], body)
}

fn case(name: impl Into<String>, raw: Vec<u8>, protocol: bool) -> Case {
    Case {
        name: name.into(),
        raw,
        protocol,
    }
}

const BODY_LIMIT: usize = 64 * 1024;

/// Malformed HTTP, refused by the HTTP layer whatever the function.
fn protocol_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    // Bytes that may not appear in a method token.
    for byte in [
        0x00u8, 0x01, 0x08, 0x0b, 0x7f, b'(', b')', b'<', b'>', b'@', b',', b';', b'"', b'/', b'[',
        b']', b'{', b'}', b'?', b'=', 0x80, 0xff,
    ] {
        let mut raw = b"GE".to_vec();
        raw.push(byte);
        raw.extend_from_slice(b"T / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        cases.push(case(format!("method with byte {byte:#04x}"), raw, true));
    }
    // Control bytes in the request target.
    for byte in (0x00u8..0x20)
        .filter(|b| ![b'\t', b'\n', b'\r', b' '].contains(b))
        .chain([0x7f])
    {
        let mut raw = b"GET /a".to_vec();
        raw.push(byte);
        raw.extend_from_slice(b"b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        cases.push(case(format!("target with byte {byte:#04x}"), raw, true));
    }
    for version in [
        "HTTP/1.1x",
        "HTTP/1",
        "HTTP/11",
        "HTTPS/1.1",
        "http/1.1",
        "HTTP/1.1 extra",
        "HTTP/a.b",
        "HTTP/",
        "",
    ] {
        let raw = format!("GET / {version}\r\nHost: x\r\nConnection: close\r\n\r\n").into_bytes();
        cases.push(case(format!("version {version:?}"), raw, true));
    }
    for line in [
        "NOT HTTP AT ALL",
        "GET",
        "GET /",
        " GET / HTTP/1.1",
        "GET  / HTTP/1.1",
    ] {
        cases.push(case(
            format!("request line {line:?}"),
            format!("{line}\r\nHost: x\r\n\r\n").into_bytes(),
            true,
        ));
    }
    // Bytes that may not appear in a header name.
    for byte in [
        0x00u8, 0x01, 0x7f, b' ', b'(', b')', b'<', b'>', b'@', b',', b';', b'"', b'/', b'[', b']',
        b'?', b'=', b'{', b'}', 0xc3,
    ] {
        let mut raw = b"GET / HTTP/1.1\r\nHost: x\r\nX-".to_vec();
        raw.push(byte);
        raw.extend_from_slice(b"Y: v\r\nConnection: close\r\n\r\n");
        cases.push(case(
            format!("header name with byte {byte:#04x}"),
            raw,
            true,
        ));
    }
    // Control bytes in a header value.
    for byte in (0x00u8..0x20)
        .filter(|b| ![b'\t', b'\n', b'\r'].contains(b))
        .chain([0x7f])
    {
        let mut raw = b"GET / HTTP/1.1\r\nHost: x\r\nX-Value: a".to_vec();
        raw.push(byte);
        raw.extend_from_slice(b"b\r\nConnection: close\r\n\r\n");
        cases.push(case(
            format!("header value with byte {byte:#04x}"),
            raw,
            true,
        ));
    }
    for line in [
        "Bad Header Without Colon",
        ": no name",
        "NoColon",
        " leading-space: v",
    ] {
        let raw = format!("GET / HTTP/1.1\r\nHost: x\r\n{line}\r\nConnection: close\r\n\r\n")
            .into_bytes();
        cases.push(case(format!("header line {line:?}"), raw, true));
    }
    for length in [
        "abc",
        "-1",
        "1.5",
        "0x10",
        "1 2",
        "+5",
        "99999999999999999999999",
        "",
        "1,2",
    ] {
        let raw = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
        )
        .into_bytes();
        cases.push(case(format!("Content-Length {length:?}"), raw, true));
    }
    cases.push(case(
        "two different Content-Length headers",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab".to_vec(),
        true,
    ));
    for encoding in ["gzip", "chunked, gzip", "identity, chunked, gzip"] {
        let raw = format!("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {encoding}\r\nConnection: close\r\n\r\n").into_bytes();
        cases.push(case(format!("Transfer-Encoding {encoding:?}"), raw, true));
    }
    // Headers past the 16 KiB limit (431), as one large header or as too many.
    for kib in 17..=40 {
        let raw = request("GET", &[("X-Large", "a".repeat(kib * 1024))], b"");
        cases.push(case(format!("{kib} KiB header"), raw, true));
    }
    for count in (101..=160).step_by(5) {
        let headers: Vec<(&str, String)> = (0..count).map(|i| ("X-Many", i.to_string())).collect();
        cases.push(case(
            format!("{count} headers"),
            request("GET", &headers, b""),
            true,
        ));
    }
    cases
}

/// Bodies the framework refuses before any function runs: too large, stalled, broken chunks.
fn body_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for declared in [BODY_LIMIT + 1, 1 << 20, 32 << 20, 10 << 30] {
        let raw = request("POST", &[("Content-Length", declared.to_string())], b"");
        cases.push(case(
            format!("declared body of {declared} bytes"),
            raw,
            false,
        ));
    }
    for kib in [65usize, 80, 100, 200] {
        let mut body = Vec::new();
        for chunk in vec![b'x'; kib * 1024].chunks(4096) {
            body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            body.extend_from_slice(chunk);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"0\r\n\r\n");
        let raw = request(
            "POST",
            &[("Transfer-Encoding", "chunked".to_owned())],
            &body,
        );
        cases.push(case(format!("chunked body of {kib} KiB"), raw, false));
    }
    // Content-Length larger than what is sent: the body stalls.
    for (declared, sent) in [(100, 10), (1000, 0), (5000, 4999), (20, 19)] {
        let raw = request(
            "POST",
            &[("Content-Length", declared.to_string())],
            &vec![b'{'; sent],
        );
        cases.push(case(
            format!("Content-Length {declared} with {sent} bytes sent"),
            raw,
            false,
        ));
    }
    for size in ["zz", "-1", "fffffffffffffffffffff", "1;\u{1}"] {
        let body = format!("{size}\r\nab\r\n0\r\n\r\n");
        let raw = request(
            "POST",
            &[("Transfer-Encoding", "chunked".to_owned())],
            body.as_bytes(),
        );
        cases.push(case(format!("chunk size {size:?}"), raw, false));
    }
    cases
}

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../conformance/vectors")
}

fn vector(name: &str) -> Value {
    let text = std::fs::read_to_string(vectors().join(name)).expect("vector");
    serde_json::from_str(&text).expect("vector JSON")
}

/// `text` cut at `count` evenly spaced points: every prefix is broken JSON.
fn truncations(text: &str, count: usize) -> Vec<Vec<u8>> {
    let bytes = text.as_bytes();
    (1..=count)
        .map(|i| bytes[..(bytes.len() - 1) * i / (count + 1)].to_vec())
        .filter(|prefix| serde_json::from_slice::<Value>(prefix).is_err())
        .collect()
}

/// `text` with one byte of a string value replaced by an invalid UTF-8 byte.
fn invalid_utf8(text: &str) -> Vec<Vec<u8>> {
    let bytes = text.as_bytes();
    let quotes: Vec<usize> = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'"')
        .map(|(i, _)| i)
        .collect();
    quotes
        .chunks(2)
        .filter(|pair| pair.len() == 2 && pair[1] > pair[0] + 1)
        .take(6)
        .flat_map(|pair| {
            [0xffu8, 0xc3, 0x80].into_iter().map(move |bad| {
                let mut copy = bytes.to_vec();
                copy[pair[0] + 1] = bad;
                copy
            })
        })
        .collect()
}

const WRONG_TYPES: [&str; 5] = ["1", "true", "null", "[]", "{}"];

/// Malformed events for an event function (CloudEvent or legacy signature).
/// What is bad input to a legacy event function: the event cases, less plain JSON without
/// context fields, which it takes as data sent by hand (`http.rs` tests that), such as the
/// storage data sent without any CloudEvent header.
fn legacy_event_cases() -> Vec<Case> {
    const CONTEXT_KEYS: [&str; 7] = [
        "context",
        "eventId",
        "event_id",
        "eventType",
        "event_type",
        "timestamp",
        "resource",
    ];
    event_cases()
        .into_iter()
        .filter(|case| {
            let text = String::from_utf8_lossy(&case.raw);
            let Some((head, body)) = text.split_once("\r\n\r\n") else {
                return true;
            };
            let head = head.to_ascii_lowercase();
            let event_headers = head.contains("\r\nce-")
                || head.contains("application/cloudevents")
                || !head.starts_with("post ");
            let plain_data = serde_json::from_str::<serde_json::Value>(body).is_ok_and(|json| {
                json.as_object()
                    .is_none_or(|object| !CONTEXT_KEYS.iter().any(|k| object.contains_key(*k)))
            });
            event_headers || !plain_data
        })
        .collect()
}

fn event_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let cloud_event = vector("storage-cloudevent-input.json");
    let structured = cloud_event.to_string();
    let legacy = vector("storage-legacy-input.json").to_string();
    let data = cloud_event["data"].to_string();
    let binary = |skip: &[&str], overrides: &[(&str, &str)], body: &[u8]| {
        let mut headers: Vec<(&str, String)> = Vec::new();
        for (name, value) in [
            ("ce-specversion", "1.0"),
            ("ce-id", "bad-input"),
            ("ce-source", "//storage.googleapis.com/projects/_/buckets/b"),
            ("ce-type", "google.cloud.storage.object.v1.finalized"),
            ("Content-Type", "application/json"),
        ] {
            if skip.contains(&name) {
                continue;
            }
            let value = overrides
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(value, |(_, v)| *v);
            headers.push((name, value.to_owned()));
        }
        for (name, value) in overrides {
            if !headers.iter().any(|(n, _)| n == name) {
                headers.push((name, (*value).to_owned()));
            }
        }
        request("POST", &headers, body)
    };

    // Every proper subset of the required binary-mode headers.
    let required = ["ce-specversion", "ce-id", "ce-source", "ce-type"];
    for mask in 1..16u32 {
        let skip: Vec<&str> = required
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, n)| *n)
            .collect();
        cases.push(case(
            format!("binary CloudEvent without {skip:?}"),
            binary(&skip, &[], data.as_bytes()),
            false,
        ));
    }
    for version in ["0.1", "2.0", "1.0.0", "abc", "1"] {
        cases.push(case(
            format!("ce-specversion {version}"),
            binary(&[], &[("ce-specversion", version)], data.as_bytes()),
            false,
        ));
    }
    for time in [
        "yesterday",
        "2020-13-01T00:00:00Z",
        "2020-01-01",
        "1e9",
        "2020-01-01T25:00:00Z",
    ] {
        cases.push(case(
            format!("ce-time {time}"),
            binary(&[], &[("ce-time", time)], data.as_bytes()),
            false,
        ));
    }
    for schema in ["not a url", "::", "http://[bad"] {
        cases.push(case(
            format!("ce-dataschema {schema}"),
            binary(&[], &[("ce-dataschema", schema)], data.as_bytes()),
            false,
        ));
    }
    for (i, prefix) in truncations(&data, 20).into_iter().enumerate() {
        cases.push(case(
            format!("binary CloudEvent with broken JSON data #{i}"),
            binary(&[], &[], &prefix),
            false,
        ));
    }
    for (i, body) in invalid_utf8(&data).into_iter().enumerate() {
        cases.push(case(
            format!("binary CloudEvent with invalid UTF-8 #{i}"),
            binary(&[], &[], &body),
            false,
        ));
    }
    for kib in [17, 24, 64] {
        let huge = "x".repeat(kib * 1024);
        cases.push(case(
            format!("{kib} KiB extension value"),
            binary(&[], &[("ce-huge", &huge)], data.as_bytes()),
            true,
        ));
    }
    // Structured mode.
    const STRUCTURED: &str = "application/cloudevents+json";
    for (i, prefix) in truncations(&structured, 25).into_iter().enumerate() {
        cases.push(case(
            format!("structured CloudEvent broken JSON #{i}"),
            post_json(&prefix, STRUCTURED),
            false,
        ));
    }
    for (i, body) in invalid_utf8(&structured).into_iter().enumerate() {
        cases.push(case(
            format!("structured CloudEvent invalid UTF-8 #{i}"),
            post_json(&body, STRUCTURED),
            false,
        ));
    }
    for attribute in ["id", "source", "type", "specversion"] {
        for wrong in WRONG_TYPES {
            let mut event = cloud_event.clone();
            event[attribute] = serde_json::from_str(wrong).expect("wrong value");
            cases.push(case(
                format!("structured `{attribute}` = {wrong}"),
                post_json(event.to_string().as_bytes(), STRUCTURED),
                false,
            ));
        }
    }
    for wrong in ["1", "true", "[]", "{}", "\"not a time\""] {
        let mut event = cloud_event.clone();
        event["time"] = serde_json::from_str(wrong).expect("wrong value");
        cases.push(case(
            format!("structured `time` = {wrong}"),
            post_json(event.to_string().as_bytes(), STRUCTURED),
            false,
        ));
    }
    for body in ["[]", "1", "\"event\"", "null"] {
        cases.push(case(
            format!("structured body {body}"),
            post_json(body.as_bytes(), STRUCTURED),
            false,
        ));
    }
    // Legacy events.
    for (i, prefix) in truncations(&legacy, 25).into_iter().enumerate() {
        cases.push(case(
            format!("legacy broken JSON #{i}"),
            post_json(&prefix, "application/json"),
            false,
        ));
    }
    for (i, body) in invalid_utf8(&legacy).into_iter().enumerate() {
        cases.push(case(
            format!("legacy invalid UTF-8 #{i}"),
            post_json(&body, "application/json"),
            false,
        ));
    }
    let flat = json!({
        "eventId": "1", "timestamp": "2020-09-29T11:32:00.000Z",
        "eventType": "google.storage.object.finalize",
        "resource": {"service": "storage.googleapis.com", "name": "projects/_/buckets/b/objects/o", "type": "storage#object"},
        "data": {"bucket": "b", "name": "o"}
    });
    for field in ["eventId", "eventType", "timestamp", "resource"] {
        for wrong in WRONG_TYPES {
            let mut top = flat.clone();
            top[field] = serde_json::from_str(wrong).expect("wrong value");
            cases.push(case(
                format!("legacy top-level `{field}` = {wrong}"),
                post_json(top.to_string().as_bytes(), "application/json"),
                false,
            ));
            let mut nested = json!({"context": {}, "data": flat["data"].clone()});
            for key in ["eventId", "eventType", "timestamp", "resource"] {
                nested["context"][key] = flat[key].clone();
            }
            nested["context"][field] = serde_json::from_str(wrong).expect("wrong value");
            cases.push(case(
                format!("legacy context `{field}` = {wrong}"),
                post_json(nested.to_string().as_bytes(), "application/json"),
                false,
            ));
        }
    }
    for timestamp in ["yesterday", "2020-02-30T00:00:00Z", "2020-09-29 11:32:00"] {
        let mut top = flat.clone();
        top["timestamp"] = json!(timestamp);
        cases.push(case(
            format!("legacy timestamp {timestamp}"),
            post_json(top.to_string().as_bytes(), "application/json"),
            false,
        ));
    }
    for body in [
        "{}",
        "[]",
        "{\"data\": 1}",
        "{\"hello\": \"world\"}",
        "\"x\"",
        "42",
    ] {
        cases.push(case(
            format!("not an event: {body}"),
            post_json(body.as_bytes(), "application/json"),
            false,
        ));
    }
    for method in ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        cases.push(case(
            format!("{method} to an event function"),
            request(method, &[], b""),
            false,
        ));
    }
    cases
}

/// Bad input for the typed function: it must decode `{"message": string}`.
fn typed_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let good = r#"{"message":"Hello world! This is a longer message so that truncations vary."}"#;
    for (i, prefix) in truncations(good, 30).into_iter().enumerate() {
        cases.push(case(
            format!("typed broken JSON #{i}"),
            post_json(&prefix, "application/json"),
            false,
        ));
    }
    for (i, body) in invalid_utf8(good).into_iter().enumerate() {
        cases.push(case(
            format!("typed invalid UTF-8 #{i}"),
            post_json(&body, "application/json"),
            false,
        ));
    }
    for wrong in WRONG_TYPES.iter().chain(&["1.5", "-3"]) {
        let body = format!(r#"{{"message":{wrong}}}"#);
        cases.push(case(
            format!("typed message = {wrong}"),
            post_json(body.as_bytes(), "application/json"),
            false,
        ));
    }
    for body in ["", "[]", "\"x\"", "{}", "{\"msg\":\"x\"}"] {
        cases.push(case(
            format!("typed body {body:?}"),
            post_json(body.as_bytes(), "application/json"),
            false,
        ));
    }
    cases
}

/// A fixture of `tests/fixtures/events`: its headers and its body's bytes.
fn event_fixture(name: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/events")
        .join(format!("{name}.json"));
    let fixture: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON");
    let headers = fixture["headers"]
        .as_object()
        .expect("headers")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    let body = match fixture.get("bodyBase64").and_then(Value::as_str) {
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("base64"),
        None => match &fixture["body"] {
            Value::String(text) => text.clone().into_bytes(),
            other => other.to_string().into_bytes(),
        },
    };
    (headers, body)
}

/// Whether bytes decode as Firestore event data: a cut or a changed byte can still leave a
/// valid message (a cut between two fields), which is not bad input.
fn decodes_as_firestore_event(bytes: &[u8]) -> bool {
    use functions_framework_events::prost::Message as _;
    functions_framework_events::google::events::cloud::firestore::v1::DocumentEventData::decode(
        bytes,
    )
    .is_ok()
}

/// Malformed Firestore events for a function taking `CloudEvent<DocumentEventData>`:
/// protobuf as Firestore triggers send it (truncated, wrong wire types, lengths past the
/// end, garbage), and JSON with the wrong types, in binary and structured mode.
fn firestore_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let (proto_headers, protobuf) = event_fixture("firestore-protobuf");
    let (json_headers, json) = event_fixture("firestore-binary");
    let with = |headers: &[(String, String)], body: &[u8]| {
        let headers: Vec<(&str, String)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        request("POST", &headers, body)
    };
    let mut bad_protobuf: Vec<(String, Vec<u8>)> = Vec::new();
    for cut in (1..protobuf.len()).step_by(7) {
        bad_protobuf.push((format!("truncated at {cut}"), protobuf[..cut].to_vec()));
    }
    // The first byte is the tag of field 1 (`value`, length-delimited): other wire types,
    // including the invalid 6 and 7 and an unmatched end-group.
    for wire_type in [0u8, 1, 3, 4, 5, 6, 7] {
        let mut changed = protobuf.clone();
        changed[0] = (changed[0] & !0x07) | wire_type;
        bad_protobuf.push((format!("field 1 as wire type {wire_type}"), changed));
    }
    // A length that claims 4 GiB, and one just past the end.
    let mut huge = vec![protobuf[0], 0xff, 0xff, 0xff, 0xff, 0x0f];
    huge.extend_from_slice(&protobuf[2..]);
    bad_protobuf.push(("a length of 4 GiB".to_owned(), huge));
    let mut past = protobuf.clone();
    past.push(0x0a);
    past.push(0x7f);
    bad_protobuf.push(("a last field longer than the body".to_owned(), past));
    // Deterministic garbage.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for length in [1usize, 2, 3, 5, 8, 13, 64, 300, 2000] {
        let garbage: Vec<u8> = (0..length)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed.to_le_bytes()[0]
            })
            .collect();
        bad_protobuf.push((format!("{length} bytes of garbage"), garbage));
    }
    let structured_headers: Vec<(String, String)> = vec![(
        "Content-Type".to_owned(),
        "application/cloudevents+json".to_owned(),
    )];
    let attributes = |data: Value| {
        let mut event = json!({"datacontenttype": "application/protobuf"});
        for (name, value) in &proto_headers {
            if let Some(attribute) = name.strip_prefix("ce-") {
                event[attribute] = json!(value);
            }
        }
        if let Some(object) = data.as_object() {
            for (k, v) in object {
                event[k] = v.clone();
            }
        }
        event.to_string().into_bytes()
    };
    for (what, bytes) in bad_protobuf {
        if decodes_as_firestore_event(&bytes) {
            continue;
        }
        cases.push(case(
            format!("firestore protobuf, binary: {what}"),
            with(&proto_headers, &bytes),
            false,
        ));
        let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
        cases.push(case(
            format!("firestore protobuf, structured: {what}"),
            with(
                &structured_headers,
                &attributes(json!({ "data_base64": encoded })),
            ),
            false,
        ));
    }
    for bad in ["!!!", "a", "aGk", "====", "a b c"] {
        cases.push(case(
            format!("firestore structured data_base64 = {bad:?}"),
            with(
                &structured_headers,
                &attributes(json!({ "data_base64": bad })),
            ),
            false,
        ));
    }
    cases.push(case(
        "firestore protobuf given as JSON data in structured mode",
        with(
            &structured_headers,
            &attributes(json!({ "data": {"value": {}} })),
        ),
        false,
    ));
    // JSON data with the wrong types, where the field path must be named.
    let text = String::from_utf8(json.clone()).expect("UTF-8");
    for (i, prefix) in truncations(&text, 20).into_iter().enumerate() {
        cases.push(case(
            format!("firestore JSON broken #{i}"),
            with(&json_headers, &prefix),
            false,
        ));
    }
    for body in [
        r#"{"value": 1}"#,
        r#"{"value": "document"}"#,
        r#"{"value": {"fields": []}}"#,
        r#"{"value": {"fields": {"a": 1}}}"#,
        r#"{"value": {"fields": {"a": {"integerValue": "abc"}}}}"#,
        r#"{"value": {"fields": {"a": {"integerValue": "99999999999999999999"}}}}"#,
        r#"{"value": {"fields": {"a": {"doubleValue": "x"}}}}"#,
        r#"{"value": {"fields": {"a": {"booleanValue": "yes"}}}}"#,
        r#"{"value": {"fields": {"a": {"timestampValue": "yesterday"}}}}"#,
        r#"{"value": {"fields": {"a": {"bytesValue": "!!"}}}}"#,
        r#"{"value": {"fields": {"a": {"geoPointValue": {"latitude": "north"}}}}}"#,
        r#"{"value": {"fields": {"a": {"arrayValue": {"values": {}}}}}}"#,
        r#"{"value": {"fields": {"a": {"stringValue": "x", "integerValue": "1"}}}}"#,
        r#"{"value": {"createTime": "yesterday"}}"#,
        r#"{"value": {"createTime": 12}}"#,
        r#"{"oldValue": []}"#,
        r#"{"updateMask": {"fieldPaths": "name"}}"#,
        r#"{"updateMask": {"fieldPaths": [1, 2]}}"#,
        r#"[]"#,
        r#""document""#,
    ] {
        cases.push(case(
            format!("firestore JSON {body}"),
            with(&json_headers, body.as_bytes()),
            false,
        ));
    }
    cases
}

fn send_raw(port: u16, raw: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    // The server may answer and close before reading everything (413 on a declared size).
    let _ = stream.write_all(raw);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

type Target = InDir;

fn serve(target: &str, signature: &str) -> Target {
    let mut cmd = command();
    cmd.env("PORT", "0")
        .env("FUNCTION_TARGET", target)
        .env("FUNCTION_SIGNATURE_TYPE", signature)
        .env("TEST_BODY_LIMIT", BODY_LIMIT.to_string())
        .env("TEST_BODY_IDLE_TIMEOUT_MS", "300");
    start_in_dir(cmd, "bad-input")
}

/// A good request; returns the marker the function recorded, if it records anything.
fn good_request(target: &Target, name: &str, n: usize) -> String {
    let id = format!("good-{n}");
    let raw = match name {
        "cloudevent" | "legacyevent" => request(
            "POST",
            &[
                ("ce-specversion", "1.0".to_owned()),
                ("ce-id", id.clone()),
                (
                    "ce-source",
                    "//pubsub.googleapis.com/projects/p/topics/t".to_owned(),
                ),
                (
                    "ce-type",
                    "google.cloud.pubsub.topic.v1.messagePublished".to_owned(),
                ),
                ("Content-Type", "application/json".to_owned()),
            ],
            br#"{"message":{"data":"aGk="}}"#,
        ),
        "typed" => post_json(
            format!(r#"{{"message":"{id}"}}"#).as_bytes(),
            "application/json",
        ),
        "firestore_record" => {
            let (headers, body) = event_fixture("firestore-protobuf");
            let headers: Vec<(&str, String)> = headers
                .iter()
                .map(|(k, v)| {
                    let value = if k == "ce-id" { id.clone() } else { v.clone() };
                    (k.as_str(), value)
                })
                .collect();
            request("POST", &headers, &body)
        }
        _ => request("POST", &[], id.as_bytes()),
    };
    let reply = parse(&send_raw(target.server.port, &raw)).expect("good reply");
    assert!(
        (200..300).contains(&reply.status),
        "{name}: good request {n} got {} {}",
        reply.status,
        reply.text()
    );
    // Every target records what it received, so the id shows that this request reached it.
    id
}

fn recorded(target: &Target) -> String {
    std::fs::read_to_string(target.dir.join("function_output.json")).unwrap_or_default()
}

#[test]
fn generated_bad_input_gets_4xx_with_a_message_and_the_server_keeps_serving() {
    let suites: Vec<(&str, &str, Vec<Case>)> = vec![
        (
            "http",
            "http",
            protocol_cases().into_iter().chain(body_cases()).collect(),
        ),
        (
            "cloudevent",
            "cloudevent",
            event_cases().into_iter().chain(body_cases()).collect(),
        ),
        ("legacyevent", "event", legacy_event_cases()),
        (
            "typed",
            "http",
            typed_cases().into_iter().chain(body_cases()).collect(),
        ),
        ("firestore_record", "cloudevent", firestore_cases()),
    ];
    let mut tried = 0;
    let mut failures = Vec::new();
    for (name, signature, cases) in suites {
        let target = serve(name, signature);
        let mut last = good_request(&target, name, 0);
        for (n, case) in cases.iter().enumerate() {
            tried += 1;
            let answer = send_raw(target.server.port, &case.raw);
            match parse(&answer) {
                Ok(reply) if (400..500).contains(&reply.status) => {
                    let head =
                        String::from_utf8_lossy(&answer[..answer.len().min(200)]).into_owned();
                    let reason = head
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .splitn(3, ' ')
                        .nth(2)
                        .unwrap_or_default()
                        .trim()
                        .to_owned();
                    // hyper answers a broken request itself, with a status line and no body:
                    // there the status must be the one for the problem and the reason phrase
                    // its standard one. Past the HTTP layer, the framework's body says why.
                    let message_ok = if case.protocol {
                        let canonical = http::StatusCode::from_u16(reply.status)
                            .ok()
                            .and_then(|s| s.canonical_reason());
                        matches!(reply.status, 400 | 431) && canonical == Some(reason.as_str())
                    } else {
                        !reply.text().trim().is_empty()
                    };
                    if !message_ok {
                        failures.push(format!(
                            "{name}: {}: {} without a message",
                            case.name, reply.status
                        ));
                    }
                }
                Ok(reply) => failures.push(format!(
                    "{name}: {}: status {} {}",
                    case.name,
                    reply.status,
                    reply.text()
                )),
                Err(error) => failures.push(format!(
                    "{name}: {}: no HTTP answer ({error}): {:?}",
                    case.name,
                    String::from_utf8_lossy(&answer)
                )),
            }
            // The function never saw the bad input: what it recorded is still the last good
            // request's.
            let seen = recorded(&target);
            if !seen.contains(last.as_str()) {
                failures.push(format!(
                    "{name}: {}: the function was invoked: {seen}",
                    case.name
                ));
            }
            last = good_request(&target, name, n + 1);
        }
    }
    assert!(tried >= 500, "only {tried} cases");
    assert!(
        failures.is_empty(),
        "{} of {tried} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!("{tried} bad-input cases, all refused with 4xx");
}
