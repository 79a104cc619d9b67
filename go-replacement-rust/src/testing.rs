//! Test your functions over real HTTP: [`TestServer`] serves [`Functions`] on
//! `127.0.0.1:0` inside the test and sends requests to it with hyper's client; responses are
//! `http::Response<Bytes>`. [`in_invocation`] runs code as if inside an invocation, for unit
//! tests of code that reads [`Context::current`].
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
//! # async fn main() -> Result<(), functions_framework::Error> {
//! let server = TestServer::start(Functions::new().http("hello", hello)).await?;
//! let response = server.get("/").await?;
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.body(), "Hello");
//! # Ok(())
//! # }
//! ```

use std::io;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use crate::{Context, Error, Functions};

/// A server running [`Functions`] on a loopback port for the length of a test.
#[derive(Debug)]
pub struct TestServer {
    address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
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
    pub async fn get(&self, path: &str) -> Result<http::Response<Bytes>, Error> {
        self.request(http::Request::get(path).body(Bytes::new())?)
            .await
    }

    /// `POST path` with these headers and body.
    pub async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<http::Response<Bytes>, Error> {
        let mut request = http::Request::post(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.request(request.body(body.into())?).await
    }

    /// Sends any request on a fresh connection and reads the whole response. The `Host`
    /// header is added when missing; the URI is the path (and query) only.
    pub async fn request(
        &self,
        mut request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, Error> {
        if !request.headers().contains_key(http::header::HOST) {
            let host = http::HeaderValue::from_str(&self.address.to_string())?;
            request.headers_mut().insert(http::header::HOST, host);
        }
        let stream = tokio::net::TcpStream::connect(self.address).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        let driver = tokio::spawn(connection);
        let response = sender.send_request(request.map(Full::new)).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        driver.abort();
        Ok(http::Response::from_parts(parts, body))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs `future` as code inside an invocation with this execution id would run: there,
/// [`Context::current`] is that invocation's context.
///
/// ```
/// use functions_framework::{Context, testing};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let id = testing::in_invocation("exec-1", async {
///     Context::current().map(|ctx| ctx.execution_id().to_owned())
/// })
/// .await;
/// assert_eq!(id.as_deref(), Some("exec-1"));
/// # }
/// ```
pub async fn in_invocation<F: Future>(execution_id: &str, future: F) -> F::Output {
    Context::new(Some(execution_id.to_owned()), None, None)
        .scope(future)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(response.status(), 200);
        assert_eq!(response.body(), "ping");
        assert!(server.url().starts_with("http://127.0.0.1:"));
    }
}
