//! The legacy event (background) function `{{name}}`. `cargo run` serves it on
//! http://localhost:8080; CloudEvents sent to it are converted to legacy events.

use functions_framework::{Error, EventContext, Functions};

/// Logs the event. Returning `Err` answers 500, so that the event is delivered again.
#[functions_framework::register::event]
pub async fn {{ident}}(data: serde_json::Value, context: EventContext) -> Result<(), Error> {
    tracing::info!(event_id = %context.event_id, event_type = %context.event_type, "received {data}");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    Functions::new().event("{{name}}", {{ident}}).serve().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepts_an_event() {
        let context = EventContext {
            event_id: "1".into(),
            timestamp: None,
            event_type: "google.pubsub.topic.publish".into(),
            resource: functions_framework::Resource::Name("projects/p/topics/t".into()),
        };
        assert!({{ident}}(serde_json::json!({"a": 1}), context).await.is_ok());
    }
}
