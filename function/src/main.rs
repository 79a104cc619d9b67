//! The function this repository deploys. Edit this file: register your functions by name,
//! then `make` packages them into `function.zip` and `make test` serves them locally the
//! way Cloud Functions' Node.js runtime loads them.

use functions_framework::{Error, Functions, Request};

/// Answers `Hello, <name>!`, the name coming from `?name=` (default `World`).
async fn hello(req: Request) -> Result<String, Error> {
    let name = req
        .uri()
        .query()
        .and_then(|query| query.split('&').find_map(|pair| pair.strip_prefix("name=")))
        .filter(|name| !name.is_empty())
        .unwrap_or("World");
    Ok(format!("Hello, {name}!\n"))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    Functions::new().http("hello", hello).serve().await
}

#[cfg(test)]
mod tests {
    use super::*;

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
    async fn greets_by_name() {
        assert_eq!(
            hello(request("/execute?x=1&name=Ada"))
                .await
                .ok()
                .as_deref(),
            Some("Hello, Ada!\n")
        );
    }
}
