//! HTTP the way Cloud Run serves it, against `test-functions` as a real process with real
//! clients: HTTP/2 with prior knowledge (curl, h2load) on the same port as HTTP/1.1, its
//! limits, WebSockets through `.service`, streamed responses, errors with a status, the
//! ignored routes, several functions by name, the bind address and the signature precedence.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use common::{Stream, command, get, run_to_exit};

use common::serve;

/// `curl --http2-prior-knowledge`: the status, the HTTP version and the body.
fn curl_h2(port: u16, path: &str, extra: &[&str]) -> (u16, String, String) {
    let output = Command::new("curl")
        .args([
            "-sS",
            "--http2-prior-knowledge",
            "-o",
            "-",
            "-w",
            "\n%{http_code} %{http_version}",
        ])
        .args(extra)
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("curl (with HTTP/2 support) is needed: apt-get install curl");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').unwrap_or(("", &text));
    let mut tail = tail.split_whitespace();
    let status = tail.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let version = tail.next().unwrap_or_default().to_owned();
    (status, version, body.to_owned())
}

#[test]
fn http2_with_prior_knowledge_and_http1_on_the_same_port() {
    let server = serve(Some("echo"), &[]);
    let (status, version, body) = curl_h2(server.port, "/", &["-d", "over h2c"]);
    assert_eq!(
        (status, version.as_str(), body.as_str()),
        (200, "2", "over h2c")
    );
    let reply = common::request(server.port, "POST", "/", &[], b"over http/1.1").expect("h1");
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (200, "over http/1.1")
    );
}

/// One request over HTTP/2 with prior knowledge, with hyper's client: unlike curl, it keeps
/// a response that arrives while the request body is still being sent (the server may
/// answer 413 first and then reset the stream with NO_ERROR, as RFC 9113 allows).
fn h2_post(port: u16, body: Vec<u8>) -> (u16, String) {
    use http_body_util::{BodyExt, Full};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let (mut sender, connection) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .expect("h2 handshake");
        tokio::spawn(connection);
        let request = http::Request::post(format!("http://127.0.0.1:{port}/"))
            .body(Full::new(bytes::Bytes::from(body)))
            .expect("request");
        let response = sender.send_request(request).await.expect("response");
        assert_eq!(response.version(), http::Version::HTTP_2);
        let status = response.status().as_u16();
        let text = response
            .into_body()
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        (status, text)
    })
}

#[test]
fn http2_keeps_the_limits_panics_and_deadline() {
    let limited = serve(Some("echo"), &[("TEST_BODY_LIMIT", "1000")]);
    let (status, body) = h2_post(limited.port, vec![b'x'; 5000]);
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("limit of 1000 bytes"), "{body}");
    let huge_header = format!("x-big: {}", "h".repeat(20 * 1024));
    let (status, _, _) = curl_h2(limited.port, "/", &["-H", &huge_header]);
    assert_eq!(status, 431, "headers over 16 KiB");

    let panics = serve(Some("panic"), &[]);
    let (status, version, body) = curl_h2(panics.port, "/", &[]);
    assert_eq!((status, version.as_str()), (500, "2"));
    assert!(!body.contains("deliberate"), "{body}");
    let (status, _, _) = curl_h2(panics.port, "/", &["-D", "-"]);
    assert_eq!(status, 500, "the server keeps serving over HTTP/2");

    let late = serve(Some("sleep"), &[("CLOUD_RUN_TIMEOUT_SECONDS", "1")]);
    let (status, version, _) = curl_h2(late.port, "/?ms=5000", &[]);
    assert_eq!((status, version.as_str()), (504, "2"));
}

#[test]
fn h2load_drives_many_streams_without_a_failure() {
    let server = serve(Some("hello"), &[]);
    let output = Command::new("h2load")
        .args(["-n", "2000", "-c", "4", "-m", "20"])
        .arg(format!("http://127.0.0.1:{}/", server.port))
        .output()
        .expect("h2load is needed: apt-get install nghttp2-client (make check installs it)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("2000 succeeded, 0 failed, 0 errored"),
        "{text}"
    );
    assert!(text.contains("status codes: 2000 2xx"), "{text}");
}

#[test]
fn a_websocket_route_of_a_service_upgrades_and_echoes() {
    let server = serve(Some("websocket"), &[]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let url = format!("ws://127.0.0.1:{}/any/path", server.port);
        let (mut socket, response) = tokio_tungstenite::connect_async(url)
            .await
            .expect("upgrade");
        assert_eq!(response.status(), 101);
        for text in ["hello", "second message"] {
            socket.send(Message::text(text)).await.expect("send");
            let echo = socket.next().await.expect("echo").expect("frame");
            assert_eq!(echo, Message::text(text));
        }
        socket
            .send(Message::binary(vec![0_u8, 1, 2, 255]))
            .await
            .expect("send");
        let echo = socket.next().await.expect("echo").expect("frame");
        assert_eq!(echo, Message::binary(vec![0_u8, 1, 2, 255]));
        socket.close(None).await.expect("close");
    });
    // Plain requests still reach the service.
    assert!(get(server.port, "/").is_ok());
}

#[test]
fn server_sent_events_reach_the_client_as_they_are_produced() {
    let server = serve(Some("stream"), &[]);
    let mut curl = Command::new("curl")
        .args(["-sSN", "--http1.1"])
        .arg(format!("http://127.0.0.1:{}/?n=4&ms=400", server.port))
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl");
    let started = Instant::now();
    let mut lines = BufReader::new(curl.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a line").expect("read");
    let first_at = started.elapsed();
    assert_eq!(first, "data: event 0");
    let rest: Vec<String> = lines
        .map_while(Result::ok)
        .filter(|l| !l.is_empty())
        .collect();
    let all_at = started.elapsed();
    assert_eq!(rest, ["data: event 1", "data: event 2", "data: event 3"]);
    let _ = curl.wait();
    // The last event is produced 1.2 s after the first; the first arrived long before that.
    assert!(
        first_at < Duration::from_millis(800),
        "first event after {first_at:?}"
    );
    assert!(
        all_at >= Duration::from_millis(1200),
        "all events after {all_at:?}"
    );

    // And over HTTP/2.
    let (status, version, body) = curl_h2(server.port, "/?n=2&ms=10", &[]);
    assert_eq!((status, version.as_str()), (200, "2"));
    assert_eq!(body, "data: event 0\n\ndata: event 1\n\n");
}

#[test]
fn an_error_with_a_status_answers_it_and_only_5xx_says_error() {
    let server = serve(Some("reject"), &[]);
    let reply = get(server.port, "/").expect("request");
    assert_eq!(reply.status, 422);
    assert_eq!(
        reply.text(),
        "test-functions: this request is refused on purpose\n"
    );
    assert_eq!(reply.header("x-google-status"), None);
    let error = serve(Some("error"), &[]);
    let reply = get(error.port, "/").expect("request");
    assert_eq!(reply.status, 500);
    assert_eq!(reply.header("x-google-status"), Some("error"));
}

#[test]
fn ignored_routes_follow_ignored_routes() {
    let default = serve(Some("echo"), &[]);
    assert_eq!(get(default.port, "/robots.txt").expect("r").status, 404);
    assert_eq!(get(default.port, "/favicon.ico").expect("r").status, 404);
    let custom = serve(Some("echo"), &[("IGNORED_ROUTES", "/health,/x")]);
    assert_eq!(get(custom.port, "/health").expect("r").status, 404);
    assert_eq!(get(custom.port, "/favicon.ico").expect("r").status, 200);
    let none = serve(Some("echo"), &[("IGNORED_ROUTES", "")]);
    assert_eq!(get(none.port, "/robots.txt").expect("r").status, 200);
}

#[test]
fn without_a_target_every_function_is_served_at_its_name() {
    let server = serve(None, &[]);
    let reply = get(server.port, "/sleep?ms=1").expect("request");
    assert_eq!((reply.status, reply.text().as_str()), (200, "slept 1ms"));
    let reply = get(server.port, "/hello/deeper").expect("request");
    assert_eq!((reply.status, reply.text().as_str()), (200, "OK"));
    let reply = get(server.port, "/cloudevent").expect("request");
    assert_eq!(reply.status, 405, "an event function there");
    let reply = get(server.port, "/nowhere").expect("request");
    assert_eq!(reply.status, 404);
    assert!(reply.text().contains("/sleep"), "{}", reply.text());
}

#[test]
fn host_chooses_the_address() {
    let server = serve(Some("hello"), &[("HOST", "127.0.0.1")]);
    assert!(
        server
            .startup
            .iter()
            .any(|l| l.text.contains("serving on 127.0.0.1:")),
        "{:?}",
        server.startup
    );
    assert_eq!(get(server.port, "/").expect("request").status, 200);
    let mut bad = command();
    bad.env("PORT", "0")
        .env("FUNCTION_TARGET", "hello")
        .arg("--host=not-an-address");
    let exited = run_to_exit(bad);
    assert_eq!(exited.code, Some(2), "{}", exited.stderr);
    assert!(exited.stderr.contains("--host"), "{}", exited.stderr);
}

#[test]
fn the_registered_signature_wins_over_the_environment_with_a_warning() {
    let server = serve(Some("echo"), &[("FUNCTION_SIGNATURE_TYPE", "cloudevent")]);
    assert!(
        server
            .startup
            .iter()
            .any(|l| l.stream == Stream::Stdout && l.text.contains("serving it as registered")),
        "{:?}",
        server.startup
    );
    let reply = common::request(server.port, "POST", "/", &[], b"still http").expect("request");
    assert_eq!((reply.status, reply.text().as_str()), (200, "still http"));
}

#[test]
fn gzip_bodies_are_decompressed_within_the_limit() {
    use std::io::Write;
    let gzip = |data: &[u8]| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).expect("write");
        encoder.finish().expect("finish")
    };
    let server = serve(Some("echo"), &[("TEST_BODY_LIMIT", "100000")]);
    let reply = common::request(
        server.port,
        "POST",
        "/",
        &[("content-encoding", "gzip"), ("content-type", "text/plain")],
        &gzip(b"squeezed and restored"),
    )
    .expect("request");
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (200, "squeezed and restored")
    );
    // A bomb: 1 MiB of zeros in about a kilobyte, over the limit once decompressed.
    let bomb = gzip(&vec![0; 1024 * 1024]);
    assert!(bomb.len() < 100_000);
    let reply = common::request(
        server.port,
        "POST",
        "/",
        &[("content-encoding", "gzip")],
        &bomb,
    )
    .expect("request");
    assert_eq!(reply.status, 413, "{}", reply.text());
    let reply = common::request(
        server.port,
        "POST",
        "/",
        &[("content-encoding", "br")],
        b"x",
    )
    .expect("request");
    assert_eq!(reply.status, 415);
    assert!(
        reply.text().contains("Content-Encoding"),
        "{}",
        reply.text()
    );
    assert_eq!(get(server.port, "/").expect("still serving").status, 200);
}

#[test]
fn legacy_event_functions_take_data_sent_by_hand() {
    let mut cmd = command();
    cmd.env("PORT", "0").env("FUNCTION_TARGET", "legacyevent");
    let target = common::start_in_dir(cmd, "by-hand");
    let (server, dir) = (&target.server, &target.dir);
    for (body, data) in [
        (
            &br#"{"data":{"order":7}}"#[..],
            serde_json::json!({"order": 7}),
        ),
        (br#"{"order":8}"#, serde_json::json!({"order": 8})),
    ] {
        let reply = common::request(
            server.port,
            "POST",
            "/",
            &[
                ("content-type", "application/json"),
                ("function-execution-id", "by-hand"),
            ],
            body,
        )
        .expect("request");
        assert_eq!(reply.status, 204, "{}", reply.text());
        let recorded: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.join("function_output.json")).expect("recorded"),
        )
        .expect("JSON");
        assert_eq!(recorded["data"], data);
        assert_eq!(recorded["context"]["eventId"], "by-hand");
    }
    // A broken event is still refused.
    let reply = common::request(
        server.port,
        "POST",
        "/",
        &[("content-type", "application/json")],
        br#"{"eventType":"t","data":{}}"#,
    )
    .expect("request");
    assert_eq!(reply.status, 400, "{}", reply.text());
    drop(target);
}

/// Raw HTTP/2 frames, for junk no client library would send.
mod h2_frames {
    pub(crate) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    pub(crate) fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = u32::try_from(payload.len()).expect("small frame");
        let mut out = len.to_be_bytes()[1..].to_vec();
        out.push(kind);
        out.push(flags);
        out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    pub(crate) fn settings() -> Vec<u8> {
        frame(4, 0, 0, &[])
    }

    /// An HPACK integer with an `n`-bit prefix.
    fn integer(first: u8, n: u32, value: usize, out: &mut Vec<u8>) {
        let max = (1usize << n) - 1;
        if value < max {
            out.push(first | u8::try_from(value).expect("fits"));
            return;
        }
        out.push(first | u8::try_from(max).expect("fits"));
        let mut rest = value - max;
        while rest >= 128 {
            out.push(u8::try_from(rest % 128).expect("fits") | 0x80);
            rest /= 128;
        }
        out.push(u8::try_from(rest).expect("fits"));
    }

    /// `GET /` for `localhost`, plus an extra header when given: HEADERS with END_STREAM.
    pub(crate) fn get(stream: u32, extra: Option<(&str, usize)>) -> Vec<u8> {
        // :method GET, :scheme http, :path / from the static table.
        let mut block = vec![0x82, 0x86, 0x84];
        // :authority localhost, literal without indexing, indexed name 1.
        integer(0x00, 4, 1, &mut block);
        integer(0x00, 7, 9, &mut block);
        block.extend_from_slice(b"localhost");
        if let Some((name, size)) = extra {
            block.push(0x00);
            integer(0x00, 7, name.len(), &mut block);
            block.extend_from_slice(name.as_bytes());
            integer(0x00, 7, size, &mut block);
            block.extend(std::iter::repeat_n(b'v', size));
        }
        frame(1, 0x4 | 0x1, stream, &block)
    }

    pub(crate) fn reset(stream: u32) -> Vec<u8> {
        frame(3, 0, stream, &8_u32.to_be_bytes())
    }
}

/// Sends `bytes` on a fresh connection and reads what comes back for a moment.
fn raw_exchange(port: u16, bytes: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .expect("timeout");
    let _ = stream.write_all(bytes);
    let mut answer = Vec::new();
    let mut buffer = [0_u8; 65536];
    while let Ok(n) = stream.read(&mut buffer) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buffer[..n]);
    }
    answer
}

/// The frame types in an HTTP/2 byte stream from the server (after its SETTINGS).
fn frame_types(mut bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    while bytes.len() >= 9 {
        let len = usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        types.push(bytes[3]);
        bytes = bytes.get(9 + len..).unwrap_or_default();
    }
    types
}

#[test]
fn http2_junk_gets_no_crash_and_a_good_request_follows_each() {
    use h2_frames::{PREFACE, reset, settings};
    let mut server = serve(Some("hello"), &[]);
    let port = server.port;
    let good = |what: &str| {
        let (status, version, body) = curl_h2(port, "/", &[]);
        assert_eq!(
            (status, version.as_str(), body.as_str()),
            (200, "2", "OK"),
            "after {what}"
        );
        assert_eq!(get(port, "/").expect("h1").status, 200, "after {what}");
    };
    good("nothing");

    // A broken preface: the connection is closed.
    let answer = raw_exchange(
        port,
        b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n\x00\x00\x00\x04\x00",
    );
    assert!(!answer.starts_with(b"HTTP/2"), "{answer:?}");
    good("a broken preface");

    // Headers over the 16 KiB list limit: refused (a 431 response or a reset), not served.
    let mut bytes = PREFACE.to_vec();
    bytes.extend(settings());
    bytes.extend(h2_frames::get(1, Some(("x-huge", 20 * 1024))));
    let answer = raw_exchange(port, &bytes);
    let types = frame_types(&answer);
    assert!(
        types.contains(&1) || types.contains(&3) || types.contains(&7),
        "HEADERS (a 431), RST_STREAM or GOAWAY expected: {types:?}"
    );
    good("oversized headers");

    // A flood of streams, more than may be open at once.
    let mut bytes = PREFACE.to_vec();
    bytes.extend(settings());
    for n in 0..2000_u32 {
        bytes.extend(h2_frames::get(2 * n + 1, None));
    }
    raw_exchange(port, &bytes);
    good("a stream flood");

    // Rapid reset: every stream cancelled as soon as it is opened.
    let mut bytes = PREFACE.to_vec();
    bytes.extend(settings());
    for n in 0..2000_u32 {
        bytes.extend(h2_frames::get(2 * n + 1, None));
        bytes.extend(reset(2 * n + 1));
    }
    let answer = raw_exchange(port, &bytes);
    assert!(
        frame_types(&answer).contains(&7),
        "the rapid reset ends in GOAWAY"
    );
    good("rapid resets");

    assert!(
        server.child.try_wait().expect("wait").is_none(),
        "the server is alive"
    );
}

#[test]
fn a_streaming_function_reads_an_upload_past_the_body_limit_as_it_arrives() {
    use std::io::{Read, Write};
    let server = serve(Some("upload"), &[("TEST_BODY_LIMIT", "1048576")]);
    let total: usize = 8 * 1024 * 1024;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n"
    )
    .expect("head");
    let chunk = vec![b'x'; 64 * 1024];
    stream.write_all(&chunk).expect("first chunk");
    // The function has the first bytes while most of the body is still to be sent.
    server.wait_lines(Stream::Stdout, 1, Duration::from_secs(10), |l| {
        l.contains("first chunk")
    });
    for _ in 1..total / chunk.len() {
        stream.write_all(&chunk).expect("chunk");
    }
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("answer");
    let reply = common::parse(&answer).expect("reply");
    assert_eq!(
        (reply.status, reply.text()),
        (200, format!("{total} bytes"))
    );

    // The same upload to a buffered function of the same binary is refused.
    drop(server);
    let buffered = serve(Some("echo"), &[("TEST_BODY_LIMIT", "1048576")]);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", buffered.port)).expect("connect");
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n"
    )
    .expect("head");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("answer");
    assert_eq!(common::parse(&answer).expect("reply").status, 413);
}

#[test]
fn a_client_that_goes_away_does_not_cancel_the_function_which_sees_it() {
    use std::io::Write;
    let server = serve(Some("sleep"), &[]);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    stream
        .write_all(b"GET /?ms=600 HTTP/1.1\r\nHost: x\r\nFunction-Execution-Id: gone-1\r\n\r\n")
        .expect("request");
    server.wait_lines(Stream::Stdout, 1, Duration::from_secs(10), |l| {
        l.contains("sleeping 600 ms")
    });
    drop(stream);
    let lines = server.wait_lines(Stream::Stdout, 3, Duration::from_secs(10), |l| {
        l.contains("gone-1")
            && (l.contains("client went away")
                || l.contains("slept 600 ms")
                || l.contains("finished after"))
    });
    assert!(lines[0].contains("the client went away"), "{lines:#?}");
    assert!(
        lines[1].contains("slept 600 ms") && lines[1].contains(r#""client_gone":true"#),
        "{lines:#?}"
    );
    assert!(
        lines[2].contains("the function finished after its client went away"),
        "{lines:#?}"
    );

    // A client that stays sees its function finish with the client present.
    assert_eq!(get(server.port, "/?ms=1").expect("reply").status, 200);
    server.wait_lines(Stream::Stdout, 1, Duration::from_secs(10), |l| {
        l.contains("slept 1 ms") && l.contains(r#""client_gone":false"#)
    });
}

#[test]
fn a_client_that_half_closes_after_its_request_still_gets_the_response() {
    use std::io::{Read, Write};
    let server = serve(Some("sleep"), &[]);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    stream
        .write_all(b"GET /?ms=200 HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("request");
    stream
        .shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("answer");
    let reply = common::parse(&answer).expect("reply");
    assert_eq!(
        (reply.status, reply.text()),
        (200, "slept 200ms".to_owned())
    );
    // The function saw the half-close as the client going away, and answered anyway.
    server.wait_lines(Stream::Stdout, 1, Duration::from_secs(10), |l| {
        l.contains("slept 200 ms") && l.contains(r#""client_gone":true"#)
    });
}
