//! Starting `test-functions` as a real process and talking HTTP to it over loopback with
//! hyper's client. What the process writes is kept per stream, so a test can tell a line on
//! stdout from one on stderr.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;

/// Which stream of the process a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line the process wrote.
#[derive(Debug, Clone)]
pub struct Line {
    pub stream: Stream,
    pub text: String,
}

/// A running `test-functions` process, killed when dropped.
pub struct Server {
    pub child: Child,
    pub port: u16,
    /// The lines written up to and including the "serving on" line.
    pub startup: Vec<Line>,
    /// Every later line the process writes.
    pub lines: mpsc::Receiver<Line>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Waits until `count` lines of `stream` satisfy `matches`, and returns them; fails the
    /// test after `within`. Lines that do not match are dropped.
    pub fn wait_lines(
        &self,
        stream: Stream,
        count: usize,
        within: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut found = Vec::new();
        let mut seen = Vec::new();
        while found.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.stream == stream && matches(&line.text) => found.push(line.text),
                Ok(line) => seen.push(line.text),
                Err(_) => panic!(
                    "{} of {count} expected lines on {stream:?} within {within:?}; found {found:#?}, other lines {seen:#?}",
                    found.len()
                ),
            }
        }
        found
    }

    /// Waits for one line of `stream` that satisfies `matches`.
    pub fn wait_line(&self, stream: Stream, matches: impl Fn(&str) -> bool) -> String {
        self.wait_lines(stream, 1, Duration::from_secs(20), matches)
            .remove(0)
    }

    /// Every line written so far, without waiting.
    pub fn drain_lines(&self) -> Vec<Line> {
        self.lines.try_iter().collect()
    }
}

/// A server working in a directory of its own (where the `http`, `typed`, `cloudevent` and
/// `legacyevent` targets write `function_output.json`), removed when dropped.
pub struct InDir {
    pub server: Server,
    pub dir: std::path::PathBuf,
}

impl Drop for InDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `command` in a fresh temporary directory.
pub fn start_in_dir(mut command: Command, label: &str) -> InDir {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ff-{label}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    command.current_dir(&dir);
    InDir {
        server: start(command),
        dir,
    }
}

/// A command for the binary with a clean function environment.
pub fn command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_test-functions"));
    for name in [
        "PORT",
        "FUNCTION_TARGET",
        "FUNCTION_SIGNATURE_TYPE",
        "CLOUD_RUN_TIMEOUT_SECONDS",
        "CONFORMANCE_SLEEP_MS",
        "K_SERVICE",
        "TEST_SHUTDOWN_TIMEOUT_MS",
        "TEST_HEADER_TIMEOUT_MS",
        "TEST_BODY_IDLE_TIMEOUT_MS",
        "TEST_BODY_LIMIT",
        "TEST_SHUTDOWN_HOOK_MS",
        "FUNCTION_LOG_FORMAT",
        "K_REVISION",
    ] {
        command.env_remove(name);
    }
    command.env("RUST_LOG", "info");
    command
}

fn forward(stream: impl Read + Send + 'static, which: Stream, to: mpsc::Sender<Line>) {
    std::thread::spawn(move || {
        for text in BufReader::new(stream).lines().map_while(Result::ok) {
            if to
                .send(Line {
                    stream: which,
                    text,
                })
                .is_err()
            {
                break;
            }
        }
    });
}

/// Serves `target` (every registered function, each at its name, when `None`) on a fresh
/// port, with these extra variables.
pub fn serve(target: Option<&str>, extra: &[(&str, &str)]) -> Server {
    let mut cmd = command();
    cmd.env("PORT", "0");
    if let Some(target) = target {
        cmd.env("FUNCTION_TARGET", target);
    }
    for (name, value) in extra {
        cmd.env(name, value);
    }
    start(cmd)
}

/// Starts `command` and waits for its "serving on" line to learn the port.
pub fn start(command: Command) -> Server {
    match try_start(command) {
        Ok(server) => server,
        Err(seen) => panic!("test-functions did not start serving; output: {seen:#?}"),
    }
}

/// Starts `command`; the lines it wrote when it exits (or stalls) before serving.
fn try_start(mut command: Command) -> Result<Server, Vec<Line>> {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn test-functions");
    let (tx, rx) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        forward(stdout, Stream::Stdout, tx.clone());
    }
    if let Some(stderr) = child.stderr.take() {
        forward(stderr, Stream::Stderr, tx);
    }
    let mut seen = Vec::new();
    loop {
        // Both pipes closing (the process exited) ends the wait as surely as the timeout.
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => {
                let port = serving_port(&line.text);
                seen.push(line);
                if let Some(port) = port {
                    return Ok(Server {
                        child,
                        port,
                        startup: seen,
                        lines: rx,
                    });
                }
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(seen);
            }
        }
    }
}

/// Starts the command `make` builds for a port that was free a moment before; when something
/// took the port in between (the binary then exits with "cannot listen on port"), it tries
/// again with another.
pub fn start_on_free_port(make: impl Fn(u16) -> Command) -> (Server, u16) {
    for _ in 0..5 {
        let port = free_port();
        match try_start(make(port)) {
            Ok(server) => return (server, port),
            Err(seen)
                if seen
                    .iter()
                    .any(|l| l.text.contains("cannot listen on port")) => {}
            Err(seen) => panic!("test-functions did not start serving; output: {seen:#?}"),
        }
    }
    panic!("no free port could be bound in 5 tries");
}

/// The port in a line like `... serving on [::]:8080 (bound)`.
pub fn serving_port(line: &str) -> Option<u16> {
    let rest = &line[line.find("serving on ")? + "serving on ".len()..];
    let address = rest.split([' ', ',']).next()?;
    address.rsplit(':').next()?.parse().ok()
}

/// How a process that was expected to exit ended, and what it wrote where.
#[derive(Debug)]
pub struct Exited {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` to its exit; a process still running after 30 s is killed and fails the
/// test (it was expected to exit).
pub fn run_to_exit(mut command: Command) -> Exited {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("run test-functions");
    let read = |stream: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut stream) = stream {
                let _ = stream.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = read(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let stderr = read(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the process did not exit within 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Exited {
        code: status.code(),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// A response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn from_response(response: http::Response<Bytes>) -> Reply {
        let (parts, body) = response.into_parts();
        Reply {
            status: parts.status.as_u16(),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn io_error(error: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(error.to_string())
}

fn build(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<http::Request<Full<Bytes>>> {
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(io_error)
}

async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    request: http::Request<Full<Bytes>>,
) -> std::io::Result<Reply> {
    let response = sender.send_request(request).await.map_err(io_error)?;
    let (parts, body) = response.into_parts();
    let body = tokio::time::timeout(Duration::from_secs(30), body.collect())
        .await
        .map_err(io_error)?
        .map_err(io_error)?
        .to_bytes();
    Ok(Reply::from_response(http::Response::from_parts(
        parts, body,
    )))
}

/// One request on a fresh connection.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Reply> {
    let request = build(method, path, headers, body)?;
    runtime().block_on(async move {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(io_error)?;
        let driver = tokio::spawn(connection);
        let reply = tokio::time::timeout(Duration::from_secs(60), exchange(&mut sender, request))
            .await
            .map_err(io_error)?;
        driver.abort();
        reply
    })
}

pub fn get(port: u16, path: &str) -> std::io::Result<Reply> {
    request(port, "GET", path, &[], b"")
}

/// Parses a response read off the wire by a test that sent raw bytes: the head with
/// `httparse`, the body by its `Content-Length` (the framework sends no chunked answer to a
/// request it refuses).
pub fn parse(raw: &[u8]) -> std::io::Result<Reply> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(raw).map_err(io_error)? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return Err(io_error("incomplete response head")),
    };
    let status = response.code.ok_or_else(|| io_error("no status"))?;
    let headers: Vec<(String, String)> = response
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_owned(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let rest = &raw[head_len..];
    let reply = Reply {
        status,
        headers,
        body: Vec::new(),
    };
    if reply
        .header("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        return Err(io_error("unexpected chunked answer"));
    }
    let length = match reply.header("content-length") {
        Some(value) => value.trim().parse::<usize>().map_err(io_error)?,
        None => rest.len(),
    };
    let body = rest
        .get(..length)
        .ok_or_else(|| io_error("body shorter than Content-Length"))?
        .to_vec();
    Ok(Reply { body, ..reply })
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub fn signal(child: &Child, signal: i32) {
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) on our own child's pid.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill failed");
}

/// A keep-alive HTTP/1.1 connection for many requests in a row.
pub struct Conn {
    runtime: tokio::runtime::Runtime,
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    pub fn open(port: u16) -> std::io::Result<Conn> {
        let runtime = runtime();
        let sender = runtime.block_on(async {
            let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
            stream.set_nodelay(true)?;
            let (sender, connection) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(io_error)?;
            tokio::spawn(connection);
            Ok::<_, std::io::Error>(sender)
        })?;
        Ok(Conn { runtime, sender })
    }

    /// Sends a request on this connection and reads the response.
    pub fn send(&mut self, method: &str, path: &str, body: &[u8]) -> std::io::Result<Reply> {
        let request = build(method, path, &[], body)?;
        let Conn { runtime, sender } = self;
        runtime.block_on(async {
            sender.ready().await.map_err(io_error)?;
            exchange(sender, request).await
        })
    }
}

/// Resident memory of a process in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .expect("VmRSS")
}

/// Raises this process's open-file limit to the hard limit (for tests holding many sockets).
pub fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit on a struct we own.
    #[allow(unsafe_code)]
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
