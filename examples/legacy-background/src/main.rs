//! A legacy background function, `(data, context)`, as Cloud Functions' 1st gen event
//! triggers call it. CloudEvents are converted to this form too.

use functions_framework::{Error, EventContext, Functions};
use serde::Deserialize;

/// A Firestore document change, the parts this function reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Change {
    #[serde(default)]
    update_mask: Option<Mask>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Mask {
    field_paths: Vec<String>,
}

fn summary(change: &Change, context: &EventContext) -> String {
    let fields = change
        .update_mask
        .as_ref()
        .map(|m| m.field_paths.join(","))
        .unwrap_or_default();
    format!(
        "{} on {} changed [{fields}]",
        context.event_type,
        context.resource.name().unwrap_or("?")
    )
}

async fn on_write(change: Change, context: EventContext) -> Result<(), Error> {
    tracing::info!(event_id = %context.event_id, "{}", summary(&change, &context));
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    Functions::new().event("on_write", on_write).serve().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use functions_framework::Resource;
    use functions_framework::testing::TestServer;

    const BODY: &str = r#"{"eventId":"1","timestamp":"2020-09-29T11:32:00.000Z","eventType":"providers/cloud.firestore/eventTypes/document.write","resource":"projects/p/databases/(default)/documents/users/ada","data":{"updateMask":{"fieldPaths":["name"]}}}"#;

    #[tokio::test]
    async fn called_directly() {
        let context = EventContext {
            event_id: "1".into(),
            timestamp: None,
            event_type: "providers/cloud.firestore/eventTypes/document.write".into(),
            resource: Resource::Name("projects/p/databases/(default)/documents/users/ada".into()),
        };
        let change = Change {
            update_mask: Some(Mask {
                field_paths: vec!["name".into()],
            }),
        };
        assert_eq!(
            summary(&change, &context),
            "providers/cloud.firestore/eventTypes/document.write on projects/p/databases/(default)/documents/users/ada changed [name]"
        );
        assert!(on_write(change, context).await.is_ok());
    }

    #[tokio::test]
    async fn over_http() {
        let server = TestServer::start(Functions::new().event("on_write", on_write))
            .await
            .expect("server");
        let response = server
            .post("/", &[("content-type", "application/json")], BODY)
            .await
            .expect("post");
        assert_eq!(
            response.status(),
            204,
            "{}",
            String::from_utf8_lossy(response.body())
        );
        assert_eq!(server.get("/").await.expect("get").status(), 405);
    }
}
