//! A newcomer's flow, end to end: scaffold a function with `ff-rust new`, build it with
//! plain cargo, serve it, call it, and see the answer and a Cloud Logging JSON line; then
//! the same for function code turned into an app by `ff-rust convert`, and packaged by
//! `make`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds outside the workspace's own target folder: the outer `cargo test` holds its lock.
fn target_dir() -> PathBuf {
    workspace().join("target").join("newcomer")
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("ff-newcomer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `ff-rust ARGS`; `new` and `convert` depend on this checkout (the crates are not
/// published).
fn ff_rust(args: &[&str]) -> String {
    let framework = workspace().join("go-replacement-rust");
    let mut command = Command::new(env!("CARGO_BIN_EXE_ff-rust"));
    command.args(args);
    if matches!(args.first(), Some(&"new" | &"convert")) {
        command.arg("--framework-path").arg(&framework);
    }
    let output = command.output().expect("ff-rust");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "ff-rust {args:?} failed: {text}");
    text
}

fn cargo_build(manifest: &Path, bin: &str) -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--manifest-path"])
        .arg(manifest)
        .args(["--bin", bin])
        .env("CARGO_TARGET_DIR", target_dir())
        .status()
        .expect("cargo");
    assert!(
        status.success(),
        "plain cargo build of {} failed",
        manifest.display()
    );
    target_dir().join("debug").join(bin)
}

struct Served {
    child: Child,
    port: u16,
    lines: mpsc::Receiver<String>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(binary: &Path, target: Option<&str>) -> Served {
    let mut command = Command::new(binary);
    command
        .env("PORT", "0")
        .env("FUNCTION_LOG_FORMAT", "json")
        .env_remove("FUNCTION_TARGET")
        .env_remove("K_SERVICE")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(target) = target {
        command.env("FUNCTION_TARGET", target);
    }
    let mut child = command.spawn().expect("spawn the function");
    let stdout = child.stdout.take();
    let (tx, lines) = mpsc::channel();
    // From here on the process is killed when `served` drops, whatever fails.
    let mut served = Served {
        child,
        port: 0,
        lines,
    };
    if let Some(stdout) = stdout {
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    while served.port == 0 {
        let line = served
            .lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the function did not start");
        let json: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        let message = json["message"].as_str().unwrap_or_default();
        if let Some(rest) = message.strip_prefix("serving on ") {
            let address = rest.split(' ').next().unwrap_or_default();
            served.port = address
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .expect("port");
        }
    }
    served
}

fn get(port: u16, path: &str) -> (u16, String) {
    send(port, "GET", path, &[], "")
}

/// One request with `Connection: close`; the status and what follows the head (the
/// framework answers these with a `Content-Length` body).
fn send(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    send_bytes(port, method, path, headers, body.as_bytes())
}

/// [`send`] with a body that need not be text (protobuf).
fn send_bytes(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nFunction-Execution-Id: newcomer-1\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    write!(stream, "{head}\r\n").expect("write");
    stream.write_all(body).expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The next JSON log line whose message contains `needle`.
fn log_line(served: &Served, needle: &str) -> serde_json::Value {
    loop {
        let line = served
            .lines
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("no log line with {needle:?}"));
        let json: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if json["message"].as_str().is_some_and(|m| m.contains(needle)) {
            return json;
        }
    }
}

#[test]
fn scaffold_build_serve_call_and_log() {
    let dir = TempDir::new("new");
    let said = ff_rust(&[
        "new",
        "hello-newcomer",
        "--http",
        "--dir",
        dir.0.to_str().expect("utf-8"),
    ]);
    assert!(said.contains("ff-rust dev"), "{said}");
    let project = dir.0.join("hello-newcomer");
    let binary = cargo_build(&project.join("Cargo.toml"), "function");
    let served = serve(&binary, None);
    assert_eq!(
        get(served.port, "/?name=Newcomer"),
        (200, "Hello, Newcomer!\n".to_owned())
    );
    let entry = log_line(&served, "greeting");
    assert_eq!(entry["severity"], "INFO");
    assert_eq!(
        entry["logging.googleapis.com/labels"]["execution_id"],
        "newcomer-1"
    );

    // Every template builds, serves and runs its function on a request of its kind.
    let cloud_event = [
        ("ce-specversion", "1.0"),
        ("ce-id", "newcomer-event"),
        ("ce-source", "//pubsub.googleapis.com/projects/p/topics/t"),
        ("ce-type", "google.cloud.pubsub.topic.v1.messagePublished"),
        ("Content-Type", "application/json"),
    ];
    for kind in ["--cloudevent", "--event", "--typed"] {
        let name = format!("fn{}", kind.trim_start_matches('-'));
        ff_rust(&["new", &name, kind, "--dir", dir.0.to_str().expect("utf-8")]);
        let binary = cargo_build(&dir.0.join(&name).join("Cargo.toml"), "function");
        let served = serve(&binary, None);
        match kind {
            "--typed" => {
                let json = [("Content-Type", "application/json")];
                let (status, body) = send(served.port, "POST", "/", &json, r#"{"message":"hi"}"#);
                assert_eq!(
                    (status, body.as_str()),
                    (200, r#"{"payload":"hi"}"#),
                    "{kind}"
                );
                let (status, body) = send(served.port, "POST", "/", &json, r#"{"msg":"hi"}"#);
                assert_eq!(status, 400, "{kind}: {body}");
                assert!(body.contains("message"), "{kind}: {body}");
            }
            _ => {
                let (status, body) = send(
                    served.port,
                    "POST",
                    "/",
                    &cloud_event,
                    r#"{"message":{"data":"aGk="}}"#,
                );
                assert_eq!(status, 204, "{kind}: {body}");
                let entry = log_line(&served, "received");
                assert!(
                    entry["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("aGk=")),
                    "{kind}: {entry}"
                );
            }
        }
    }
}

/// `new --cloudevent --event-type`: the data arrives decoded into the generated type, here a
/// Firestore event in protobuf as Firestore triggers send it (the fixture Google's Python
/// library encoded); an unknown type is refused with the closest ones named.
#[test]
fn scaffold_for_a_google_event_type() {
    use base64::Engine as _;
    let dir = TempDir::new("event-type");
    let dir_arg = dir.0.to_str().expect("utf-8");
    let output = Command::new(env!("CARGO_BIN_EXE_ff-rust"))
        .args(["new", "nope", "--cloudevent", "--event-type"])
        .args([
            "google.cloud.firestore.document.v1.create",
            "--dir",
            dir_arg,
        ])
        .arg("--framework-path")
        .arg(workspace().join("go-replacement-rust"))
        .output()
        .expect("ff-rust");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{said}");
    assert!(
        said.contains("google.cloud.firestore.document.v1.created"),
        "{said}"
    );
    assert!(!dir.0.join("nope").exists());

    let listed = ff_rust(&["event-types", "firestore.document"]);
    assert!(listed.contains("DocumentEventData"), "{listed}");

    ff_rust(&[
        "new",
        "on-document",
        "--cloudevent",
        "--event-type",
        "google.cloud.firestore.document.v1.created",
        "--dir",
        dir_arg,
    ]);
    let project = dir.0.join("on-document");
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).expect("manifest");
    assert!(
        manifest.contains("functions-framework-events") && manifest.contains("\"firestore\""),
        "{manifest}"
    );
    let binary = cargo_build(&project.join("Cargo.toml"), "function");
    let served = serve(&binary, None);
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(workspace().join("tests/fixtures/events/firestore-protobuf.json"))
            .expect("fixture"),
    )
    .expect("JSON");
    let body = base64::engine::general_purpose::STANDARD
        .decode(fixture["bodyBase64"].as_str().expect("bodyBase64"))
        .expect("base64");
    let headers: Vec<(&str, &str)> = fixture["headers"]
        .as_object()
        .expect("headers")
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default()))
        .collect();
    let (status, answer) = send_bytes(served.port, "POST", "/", &headers, &body);
    assert_eq!(status, 204, "{answer}");
    let entry = log_line(&served, "received");
    let message = entry["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("DocumentEventData") && message.contains("IH75dRdeYJKd4uuQiqch"),
        "{entry}"
    );
    // Data that is not a Firestore event is refused before the function runs.
    let (status, answer) = send_bytes(served.port, "POST", "/", &headers, b"\xff\xff\xff");
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("DocumentEventData"), "{answer}");
}

#[test]
fn convert_function_code_into_an_app_then_package_it() {
    let dir = TempDir::new("convert");
    let source = dir.0.join("greetings.rs");
    std::fs::write(
        &source,
        r#"use functions_framework::{Error, Request};

#[functions_framework::register::http]
pub async fn hello(_req: Request) -> Result<String, Error> {
    tracing::info!("saying hello");
    Ok("hello from converted code".to_owned())
}

#[functions_framework::register::http(name = "goodbye")]
pub async fn bye(_req: Request) -> &'static str {
    "goodbye"
}
"#,
    )
    .expect("write source");
    let app = dir.0.join("app");
    let said = ff_rust(&[
        "convert",
        source.to_str().expect("utf-8"),
        "--out",
        app.to_str().expect("utf-8"),
    ]);
    assert!(
        said.contains("hello (http)") && said.contains("goodbye (http)"),
        "{said}"
    );
    let binary = cargo_build(&app.join("Cargo.toml"), "function");
    let served = serve(&binary, Some("goodbye"));
    assert_eq!(get(served.port, "/"), (200, "goodbye".to_owned()));
    drop(served);
    let served = serve(&binary, Some("hello"));
    assert_eq!(
        get(served.port, "/"),
        (200, "hello from converted code".to_owned())
    );
    assert_eq!(log_line(&served, "saying hello")["severity"], "INFO");

    // A library crate converted in place.
    let library = dir.0.join("lib-crate");
    std::fs::create_dir_all(library.join("src")).expect("mkdir");
    std::fs::write(library.join("Cargo.toml"), "[package]\nname = \"lib-crate\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\n\n[workspace]\n").expect("write");
    std::fs::write(
        library.join("src/lib.rs"),
        "pub fn register(functions: functions_framework::Functions) -> functions_framework::Functions {\n    functions.http(\"lib\", |_req: functions_framework::Request| async { \"from a library\" })\n}\n",
    )
    .expect("write");
    ff_rust(&["convert", library.to_str().expect("utf-8")]);
    let binary = cargo_build(&library.join("Cargo.toml"), "function");
    let served = serve(&binary, None);
    assert_eq!(get(served.port, "/"), (200, "from a library".to_owned()));

    // And `make` packages the app.
    let zip = dir.0.join("app.zip");
    let status = Command::new("make")
        .current_dir(workspace())
        .arg("-s")
        .arg(format!("FUNCTION_ZIP={}", zip.display()))
        .arg(format!("FUNCTION_DIR={}", app.display()))
        .arg(format!("PACKAGE={}", dir.0.join("package").display()))
        .status()
        .expect("make");
    assert!(status.success(), "make could not package the converted app");
    let listing = Command::new("unzip")
        .arg("-Z1")
        .arg(&zip)
        .output()
        .expect("unzip");
    let mut entries: Vec<String> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    entries.sort();
    assert_eq!(
        entries,
        [
            "functions-framework-rust/",
            "functions-framework-rust/function-server",
            "functions-framework-rust/launcher.js",
            "functions-framework-rust/package.json",
            "functions-framework-rust/shim.node",
            "index.js",
            "package-lock.json",
            "package.json",
        ]
    );
    let manifest =
        std::fs::read_to_string(dir.0.join("package/package.json")).expect("package.json");
    assert!(
        manifest.contains("\"goodbye\"") && manifest.contains("\"hello\""),
        "{manifest}"
    );
}
