//! What production diagnostics need, against `test-functions` as a real process: Error
//! Reporting entries field by field, the context in spawned tasks, log fields as JSON keys,
//! refused logging settings, and the shutdown hook.

mod common;

use std::time::Duration;

use common::{Stream, command, get, run_to_exit, signal};
use serde_json::Value;

fn serve(target: &str, extra: &[(&str, &str)]) -> common::Server {
    common::serve(Some(target), extra)
}

/// The next JSON entry on stdout that `matches`.
fn entry(server: &common::Server, matches: impl Fn(&Value) -> bool) -> Value {
    let line = server.wait_line(Stream::Stdout, |line| {
        serde_json::from_str::<Value>(line).is_ok_and(|value| matches(&value))
    });
    serde_json::from_str(&line).expect("JSON")
}

const REPORTED_ERROR_EVENT: &str =
    "type.googleapis.com/google.devtools.clouderrorreporting.v1beta1.ReportedErrorEvent";

#[test]
fn a_panic_is_one_error_reporting_entry_field_by_field() {
    let server = serve(
        "panic",
        &[
            ("K_SERVICE", "my-service"),
            ("K_REVISION", "my-service-00042"),
        ],
    );
    let reply = common::request(
        server.port,
        "GET",
        "/some/path?x=1",
        &[
            ("user-agent", "diagnostics-test/1.0"),
            ("referer", "https://example.test/from"),
            ("function-execution-id", "exec-panic-1"),
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        ],
        b"",
    )
    .expect("request");
    assert_eq!(reply.status, 500);
    let report = entry(&server, |v| v["@type"] == REPORTED_ERROR_EVENT);
    assert_eq!(report["severity"], "ERROR");
    assert_eq!(report["serviceContext"]["service"], "my-service");
    assert_eq!(report["serviceContext"]["version"], "my-service-00042");
    let http = &report["context"]["httpRequest"];
    assert_eq!(http["method"], "GET");
    assert_eq!(http["url"], "/some/path?x=1");
    assert_eq!(http["userAgent"], "diagnostics-test/1.0");
    assert_eq!(http["referrer"], "https://example.test/from");
    assert_eq!(http["remoteIp"], "127.0.0.1");
    let location = &report["context"]["reportLocation"];
    let function = location["functionName"].as_str().expect("functionName");
    assert!(function.starts_with("test_functions::panic"), "{function}");
    assert!(
        location["filePath"]
            .as_str()
            .is_some_and(|f| f.ends_with("src/main.rs")),
        "{location}"
    );
    assert!(
        location["lineNumber"].as_u64().is_some_and(|l| l > 0),
        "{location}"
    );
    let message = report["message"].as_str().expect("message");
    assert!(
        message.contains("test-functions: deliberate panic"),
        "{message}"
    );
    assert!(message.contains("stack backtrace:"), "{message}");
    assert!(message.contains(" 0: test_functions::panic"), "{message}");
    assert_eq!(
        report["logging.googleapis.com/labels"]["execution_id"],
        "exec-panic-1"
    );
    assert!(
        report["logging.googleapis.com/trace"]
            .as_str()
            .is_some_and(|t| t.ends_with("4bf92f3577b34da6a3ce929d0e0e4736")),
        "{report}"
    );
    // One entry per panic: nothing else of it on either stream.
    assert!(
        server
            .drain_lines()
            .iter()
            .all(|l| !l.text.contains("deliberate panic")),
        "the panic was reported more than once"
    );
}

#[test]
fn a_function_error_is_an_error_reporting_entry_naming_the_function() {
    let server = serve("error", &[("K_SERVICE", "svc")]);
    assert_eq!(get(server.port, "/").expect("request").status, 500);
    let report = entry(&server, |v| v["@type"] == REPORTED_ERROR_EVENT);
    assert_eq!(report["serviceContext"]["service"], "svc");
    assert!(report["serviceContext"].get("version").is_none());
    assert_eq!(report["context"]["reportLocation"]["functionName"], "error");
    assert_eq!(report["context"]["httpRequest"]["method"], "GET");
    assert!(
        report["message"]
            .as_str()
            .is_some_and(|m| m.contains("test-functions: deliberate error")),
        "{report}"
    );
}

#[test]
fn without_k_service_the_service_is_the_function_and_text_mode_is_plain() {
    let server = serve("panic", &[("FUNCTION_LOG_FORMAT", "text")]);
    assert_eq!(get(server.port, "/").expect("request").status, 500);
    let line = server.wait_line(Stream::Stderr, |l| l.contains("function panicked"));
    assert!(line.starts_with("ERROR execution_id="), "{line}");
    assert!(line.contains("deliberate panic"), "{line}");
    // The frames follow on their own lines.
    server.wait_line(Stream::Stderr, |l| l.contains("0: test_functions::panic"));

    let json = serve("error", &[]);
    assert_eq!(get(json.port, "/").expect("request").status, 500);
    let report = entry(&json, |v| v["@type"] == REPORTED_ERROR_EVENT);
    assert_eq!(report["serviceContext"]["service"], "error");
}

#[test]
fn concurrent_invocations_see_their_own_execution_id_in_spawned_tasks() {
    let server = serve("spawned_context", &[]);
    let port = server.port;
    let calls: Vec<_> = (0..8)
        .map(|n| {
            std::thread::spawn(move || {
                let id = format!("exec-{n}");
                let reply = common::request(
                    port,
                    "GET",
                    "/?ms=300",
                    &[("function-execution-id", id.as_str())],
                    b"",
                )
                .expect("request");
                (id, reply.status, reply.text())
            })
        })
        .collect();
    for call in calls {
        let (id, status, body) = call.join().expect("thread");
        assert_eq!((status, body.as_str()), (200, id.as_str()));
    }
    // The task's log line carries the invocation's id too.
    let line = entry(&server, |v| v["message"] == "inside a spawned task");
    assert!(
        line["logging.googleapis.com/labels"]["execution_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("exec-")),
        "{line}"
    );
}

#[test]
fn log_fields_are_json_keys_with_the_source_location() {
    let server = serve("sleep", &[]);
    assert_eq!(get(server.port, "/?ms=7").expect("request").status, 200);
    let line = entry(&server, |v| v["message"] == "sleeping 7 ms");
    assert_eq!(line["ms"], 7);
    assert_eq!(line["severity"], "INFO");
    let location = &line["logging.googleapis.com/sourceLocation"];
    assert!(
        location["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("src/main.rs")),
        "{line}"
    );
    assert!(
        location["line"]
            .as_str()
            .and_then(|l| l.parse::<u32>().ok())
            .is_some_and(|l| l > 0),
        "{line}"
    );
    assert_eq!(location["function"], "test_functions");
}

#[test]
fn bad_log_settings_stop_the_binary_with_a_message() {
    for (name, value) in [("FUNCTION_LOG_FORMAT", "xml"), ("RUST_LOG", "info,[[[")] {
        let mut cmd = command();
        cmd.env("PORT", "0")
            .env("FUNCTION_TARGET", "hello")
            .env(name, value);
        let exited = run_to_exit(cmd);
        assert_ne!(exited.code, Some(0), "{name}={value}");
        assert!(exited.stderr.contains(name), "{name}: {}", exited.stderr);
        assert!(!exited.stdout.contains("serving on"), "{}", exited.stdout);
    }
}

#[test]
fn the_shutdown_hook_runs_after_the_drain_and_before_the_exit() {
    let mut server = serve(
        "sleep",
        &[
            ("TEST_SHUTDOWN_HOOK_MS", "300"),
            ("TEST_SHUTDOWN_TIMEOUT_MS", "5000"),
        ],
    );
    let port = server.port;
    let slow = std::thread::spawn(move || get(port, "/?ms=500"));
    server.wait_line(Stream::Stdout, |l| l.contains("sleeping 500 ms"));
    signal(&server.child, libc::SIGTERM);
    let order = server.wait_lines(Stream::Stdout, 2, Duration::from_secs(10), |l| {
        l.contains("all connections drained") || l.contains("shutdown hook ran")
    });
    assert!(order[0].contains("all connections drained"), "{order:#?}");
    assert!(order[1].contains("shutdown hook ran"), "{order:#?}");
    assert_eq!(slow.join().expect("thread").expect("request").status, 200);
    let status = server.child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));

    // A hook that outlives the shutdown timeout is cut off, and the process still exits.
    let mut stuck = serve(
        "sleep",
        &[
            ("TEST_SHUTDOWN_HOOK_MS", "60000"),
            ("TEST_SHUTDOWN_TIMEOUT_MS", "500"),
        ],
    );
    let started = std::time::Instant::now();
    signal(&stuck.child, libc::SIGTERM);
    stuck.wait_line(Stream::Stdout, |l| l.contains("did not finish within"));
    assert_eq!(stuck.child.wait().expect("wait").code(), Some(0));
    assert!(started.elapsed() < Duration::from_secs(5));
}
