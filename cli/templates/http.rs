//! The function `{{name}}`. `cargo run` serves it on http://localhost:8080; `cargo test`
//! runs its tests.

use functions_framework::{Error, Functions, Request};

/// Answers `Hello, <name>!`, the name coming from `?name=` (default `World`).
#[functions_framework::register::http]
pub async fn {{ident}}(req: Request) -> Result<String, Error> {
    let name = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("name=")))
        .unwrap_or("World");
    tracing::info!(%name, "greeting");
    Ok(format!("Hello, {name}!\n"))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    Functions::new().http("{{name}}", {{ident}}).serve().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn greets() {
        let req = functions_framework::http::Request::get("/?name=Ada")
            .body(functions_framework::Bytes::new())
            .expect("request");
        assert_eq!({{ident}}(req).await.ok().as_deref(), Some("Hello, Ada!\n"));
    }
}
