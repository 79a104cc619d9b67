//! The CloudEvent function `{{name}}`. `cargo run` serves it on http://localhost:8080;
//! send it an event in binary or structured mode (or a legacy event, converted).

use functions_framework::{CloudEvent, Error, Functions};

/// Logs the event. Returning `Err` answers 500, so that the event is delivered again.
#[functions_framework::register::cloud_event]
pub async fn {{ident}}(event: CloudEvent<serde_json::Value>) -> Result<(), Error> {
    tracing::info!(id = %event.id(), r#type = %event.ty(), "received {}", event.data);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    Functions::new().cloud_event("{{name}}", {{ident}}).serve().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepts_an_event() {
        let event = CloudEvent { event: functions_framework::Event::default(), data: serde_json::json!({"a": 1}) };
        assert!({{ident}}(event).await.is_ok());
    }
}
