//! Test your functions over real HTTP: [`TestServer`] serves [`Functions`] on
//! `127.0.0.1:0` inside the test, and sends requests to it.
//!
//! ```
//! use functions_framework::testing::TestServer;
//! use functions_framework::{Functions, Request};
//!
//! async fn hello(_req: Request) -> &'static str {
//!     "Hello"
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let server = TestServer::start(Functions::new().http("hello", hello)).await?;
//! let response = server.get("/").await?;
//! assert_eq!(response.status, 200);
//! assert_eq!(response.text(), "Hello");
//! # Ok(())
//! # }
//! ```

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Functions;

/// A server running [`Functions`] on a loopback port for the length of a test.
#[derive(Debug)]
pub struct TestServer {
    address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

/// A response received by [`TestServer`].
#[derive(Debug, Clone)]
pub struct TestResponse {
    /// The status code.
    pub status: u16,
    /// The headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl TestResponse {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first header with this name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body decoded as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_slice(&self.body)
    }
}

impl TestServer {
    /// Serves `functions` on a fresh loopback port. With several functions registered, pick
    /// one with [`Functions::target`].
    pub async fn start(functions: Functions) -> io::Result<TestServer> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(error) = functions
                .listener(listener)
                .serve_with(["test-server"], |_| None)
                .await
            {
                tracing::error!(%error, "test server stopped");
            }
        });
        Ok(TestServer { address, task })
    }

    /// The server's base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> io::Result<TestResponse> {
        self.request("GET", path, &[], b"").await
    }

    /// `POST path` with these headers and body.
    pub async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: impl AsRef<[u8]>,
    ) -> io::Result<TestResponse> {
        self.request("POST", path, headers, body.as_ref()).await
    }

    /// Any request, on a fresh connection.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<TestResponse> {
        let mut stream = tokio::net::TcpStream::connect(self.address).await?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.address,
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        parse(&raw)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

fn parse(raw: &[u8]) -> io::Result<TestResponse> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid("response without end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid("response without status"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Ok(TestResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| invalid("bad chunk"))?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size =
            usize::from_str_radix(size_text.split(';').next().unwrap_or_default().trim(), 16)
                .map_err(|_| invalid("bad chunk size"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(rest.get(..size).ok_or_else(|| invalid("short chunk"))?);
        rest = rest.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chunked_and_plain_responses() {
        let plain =
            parse(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\nX-A: b\r\n\r\nok").expect("plain");
        assert_eq!(
            (plain.status, plain.text().as_str(), plain.header("x-a")),
            (201, "ok", Some("b"))
        );
        let chunked = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n",
        )
        .expect("chunked");
        assert_eq!(chunked.text(), "abc");
        assert!(parse(b"garbage").is_err());
    }

    #[tokio::test]
    async fn serves_a_function() {
        let server = TestServer::start(
            Functions::new().http("echo", |req: crate::Request| async move { req.into_body() }),
        )
        .await
        .expect("start");
        let response = server
            .post("/", &[("content-type", "text/plain")], "ping")
            .await
            .expect("post");
        assert_eq!((response.status, response.text().as_str()), (200, "ping"));
        assert!(server.url().starts_with("http://127.0.0.1:"));
    }
}
