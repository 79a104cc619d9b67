//! A Cloud Storage-triggered CloudEvent function: the object's metadata arrives typed.
//!
//! Deploy (gen2): `gcloud functions deploy on_upload --gen2 --runtime nodejs22
//! --trigger-event-filters=type=google.cloud.storage.object.v1.finalized
//! --trigger-event-filters=bucket=BUCKET ...`

use functions_framework::events::StorageObjectData;
use functions_framework::{CloudEvent, Error, Functions};

/// What the function does with an upload: here, a summary line.
fn describe(object: &StorageObjectData) -> String {
    format!(
        "gs://{}/{} ({} bytes, {})",
        object.bucket,
        object.name,
        object.size,
        if object.content_type.is_empty() {
            "unknown type"
        } else {
            &object.content_type
        }
    )
}

async fn on_upload(event: CloudEvent<StorageObjectData>) -> Result<(), Error> {
    tracing::info!(event_id = %event.id(), "{}", describe(&event.data));
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    Functions::new()
        .cloud_event("on_upload", on_upload)
        .serve()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use functions_framework::testing::TestServer;

    #[tokio::test]
    async fn called_directly() {
        let object = StorageObjectData {
            bucket: "b".into(),
            name: "a.txt".into(),
            size: 3,
            content_type: "text/plain".into(),
            ..StorageObjectData::default()
        };
        assert_eq!(describe(&object), "gs://b/a.txt (3 bytes, text/plain)");
        let event = CloudEvent {
            event: functions_framework::Event::default(),
            data: object,
        };
        assert!(on_upload(event).await.is_ok());
    }

    #[tokio::test]
    async fn over_http_in_structured_mode_and_as_a_legacy_event() {
        let server = TestServer::start(Functions::new().cloud_event("on_upload", on_upload))
            .await
            .expect("server");
        let structured = r#"{"specversion":"1.0","id":"1","source":"//storage.googleapis.com/projects/_/buckets/b","subject":"objects/a.txt","type":"google.cloud.storage.object.v1.finalized","datacontenttype":"application/json","data":{"bucket":"b","name":"a.txt","size":"3"}}"#;
        let response = server
            .post(
                "/",
                &[("content-type", "application/cloudevents+json")],
                structured,
            )
            .await
            .expect("post");
        assert_eq!(
            response.status(),
            204,
            "{}",
            String::from_utf8_lossy(response.body())
        );
        let legacy = r#"{"context":{"eventId":"2","timestamp":"2020-09-29T11:32:00.000Z","eventType":"google.storage.object.finalize","resource":{"service":"storage.googleapis.com","name":"projects/_/buckets/b/objects/a.txt","type":"storage#object"}},"data":{"bucket":"b","name":"a.txt"}}"#;
        let response = server
            .post("/", &[("content-type", "application/json")], legacy)
            .await
            .expect("post");
        assert_eq!(
            response.status(),
            204,
            "{}",
            String::from_utf8_lossy(response.body())
        );
        let wrong = server
            .post(
                "/",
                &[("content-type", "application/cloudevents+json")],
                structured.replace("\"size\":\"3\"", "\"size\":\"big\""),
            )
            .await
            .expect("post");
        assert_eq!(wrong.status(), 400);
        assert!(
            String::from_utf8_lossy(wrong.body()).contains("size"),
            "{}",
            String::from_utf8_lossy(wrong.body())
        );
    }
}
