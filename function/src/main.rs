//! An HTTP function: `GET /?name=Ada` answers `Hello, Ada!`. `cargo run` serves it on
//! http://localhost:8080 and `cargo test` tests it. Register your functions by name in
//! `main`; `FUNCTION_TARGET` (or `--target`) picks the one to serve.

use functions_framework::{Error, Functions, Request, RequestExt};

/// Answers `Hello, <name>!`, the name coming from `?name=` (percent-decoded; default `World`).
async fn hello(req: Request) -> Result<String, Error> {
    let name = req
        .query_param("name")
        .filter(|name| !name.is_empty())
        .unwrap_or("World".into());
    tracing::info!(%name, "greeting");
    Ok(format!("Hello, {name}!\n"))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    Functions::new().http("hello", hello).serve().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use functions_framework::testing::TestServer;

    fn request(uri: &str) -> Request {
        functions_framework::http::Request::get(uri)
            .body(functions_framework::Bytes::new())
            .expect("request")
    }

    #[tokio::test]
    async fn greets_the_world_by_default() {
        assert_eq!(
            hello(request("/")).await.ok().as_deref(),
            Some("Hello, World!\n")
        );
    }

    #[tokio::test]
    async fn greets_by_name_percent_decoded() {
        assert_eq!(
            hello(request("/execute?x=1&name=Ada%20L"))
                .await
                .ok()
                .as_deref(),
            Some("Hello, Ada L!\n")
        );
    }

    #[tokio::test]
    async fn over_http() {
        let server = TestServer::start(Functions::new().http("hello", hello))
            .await
            .expect("server");
        let response = server.get("/?name=Ada").await.expect("response");
        assert_eq!(response.status(), 200);
        assert_eq!(response.body(), "Hello, Ada!\n");
    }
}
