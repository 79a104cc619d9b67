//! The smallest HTTP function: `GET /?name=Ada` answers `Hello, Ada!`.
//!
//! Run it: `FUNCTION_TARGET=hello cargo run -p example-hello-http`, then
//! `curl 'localhost:8080/?name=Ada'`.

use functions_framework::{Error, Functions, Request};

/// Greets the `name` query parameter, or the world.
async fn hello(req: Request) -> Result<String, Error> {
    let name = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("name=")))
        .unwrap_or("World");
    Ok(format!("Hello, {name}!"))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    Functions::new().http("hello", hello).serve().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use functions_framework::testing::TestServer;

    #[tokio::test]
    async fn called_directly() {
        let req = functions_framework::http::Request::get("/?name=Ada")
            .body(functions_framework::Bytes::new())
            .expect("request");
        assert_eq!(hello(req).await.ok().as_deref(), Some("Hello, Ada!"));
    }

    #[tokio::test]
    async fn over_http() {
        let server = TestServer::start(Functions::new().http("hello", hello))
            .await
            .expect("server");
        let response = server.get("/").await.expect("response");
        assert_eq!(
            (response.status, response.text().as_str()),
            (200, "Hello, World!")
        );
    }
}
