//! A Pub/Sub-triggered CloudEvent function. The message's `data` arrives decoded from
//! base64; an `Err` answers 500, so Pub/Sub redelivers the message.
//!
//! Deploy: `gcloud functions deploy on_message --runtime nodejs22 --trigger-topic TOPIC ...`
//! Try it locally: `make dev FUNCTION_DIR=examples/pubsub FUNCTION_BIN=example-pubsub` serves it,
//! then `make invoke FIXTURE=pubsub-binary` sends it a message.

use functions_framework::events::MessagePublishedData;
use functions_framework::{CloudEvent, Error, Functions};

/// Logs the message; refuses empty ones so that they are retried and show up in the logs.
async fn on_message(event: CloudEvent<MessagePublishedData>) -> Result<(), Error> {
    let message = event.data.message();
    let text = message.text().ok_or("the message is not UTF-8 text")?;
    if text.is_empty() {
        return Err("empty message".into());
    }
    tracing::info!(message_id = %message.message_id, "received: {text}");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    Functions::new()
        .cloud_event("on_message", on_message)
        .serve()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use functions_framework::events::PubsubMessage;
    use functions_framework::testing::TestServer;

    #[tokio::test]
    async fn called_directly() {
        let event = CloudEvent {
            event: functions_framework::Event::default(),
            data: MessagePublishedData {
                message: Some(PubsubMessage {
                    data: b"hello".to_vec(),
                    ..PubsubMessage::default()
                }),
                ..MessagePublishedData::default()
            },
        };
        assert!(on_message(event).await.is_ok());
    }

    #[tokio::test]
    async fn over_http_in_binary_mode() {
        let server = TestServer::start(Functions::new().cloud_event("on_message", on_message))
            .await
            .expect("server");
        let headers = [
            ("ce-specversion", "1.0"),
            ("ce-id", "1"),
            ("ce-source", "//pubsub.googleapis.com/projects/p/topics/t"),
            ("ce-type", "google.cloud.pubsub.topic.v1.messagePublished"),
            ("content-type", "application/json"),
        ];
        let ok = server
            .post(
                "/",
                &headers,
                r#"{"message":{"data":"aGVsbG8=","messageId":"1"}}"#,
            )
            .await
            .expect("post");
        assert_eq!(ok.status(), 204);
        let empty = server
            .post("/", &headers, r#"{"message":{"data":"","messageId":"2"}}"#)
            .await
            .expect("post");
        assert_eq!(empty.status(), 500, "an error must not ack the message");
        let bad = server
            .post("/", &headers, r#"{"message":{"data":"%%%"}}"#)
            .await
            .expect("post");
        assert_eq!(bad.status(), 400);
        assert!(
            // The field whose base64 does not decode is named.
            String::from_utf8_lossy(bad.body()).contains("message.data"),
            "{}",
            String::from_utf8_lossy(bad.body())
        );
    }
}
