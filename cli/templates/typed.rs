//! The typed function `{{name}}`: JSON in, JSON out. `cargo run` serves it on
//! http://localhost:8080.

use functions_framework::{Error, Functions};
use serde::{Deserialize, Serialize};

/// The request body.
#[derive(Debug, Deserialize)]
pub struct Request {
    pub message: String,
}

/// The response body.
#[derive(Debug, Serialize, PartialEq)]
pub struct Response {
    pub payload: String,
}

/// Echoes the message. A body that does not fit `Request` gets 400 naming the field.
#[functions_framework::register::typed]
pub async fn {{ident}}(request: Request) -> Result<Response, Error> {
    tracing::info!(message = %request.message, "echo");
    Ok(Response { payload: request.message })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    Functions::new().typed("{{name}}", {{ident}}).serve().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn echoes() {
        let response = {{ident}}(Request { message: "hi".into() }).await.ok();
        assert_eq!(response, Some(Response { payload: "hi".into() }));
    }
}
