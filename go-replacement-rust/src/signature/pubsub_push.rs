//! A raw Pub/Sub push request, what a push subscription (or the Pub/Sub emulator) POSTs to
//! the function's URL: `{"message": {...}, "subscription": "projects/P/subscriptions/S"}`.
//! Event functions take it as the Pub/Sub event it carries, as the Node.js, Go and Python
//! frameworks do.

use cloudevents::Event;
use serde_json::{Map, Value, json};

use crate::error::Rejection;

/// The CloudEvent type of a published message.
const MESSAGE_PUBLISHED: &str = "google.cloud.pubsub.topic.v1.messagePublished";

/// Whether `body` is a push request: an object with a `message` object and a `subscription`
/// string, and nothing but those and `deliveryAttempt`.
pub(crate) fn is_push(body: &Value) -> bool {
    let Some(object) = body.as_object() else {
        return false;
    };
    object.get("message").is_some_and(Value::is_object)
        && object.get("subscription").is_some_and(Value::is_string)
        && object
            .keys()
            .all(|key| matches!(key.as_str(), "message" | "subscription" | "deliveryAttempt"))
}

/// The CloudEvent of a push request sent to `path`. The topic comes from a
/// `projects/P/topics/T` in the path (where push endpoints are often pointed), else the
/// source names the subscription; the message id and publish time become the event's id and
/// time (now, when the emulator leaves the time out).
pub(crate) fn to_cloud_event(path: &str, body: Value) -> Result<Event, Rejection> {
    let Value::Object(mut envelope) = body else {
        return Err(Rejection::bad_request(
            "a Pub/Sub push body must be a JSON object",
        ));
    };
    let subscription = envelope
        .get("subscription")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let Some(Value::Object(mut message)) = envelope.remove("message") else {
        return Err(Rejection::bad_request(
            "a Pub/Sub push body needs a `message` object",
        ));
    };
    let id = text(&message, &["messageId", "message_id"])
        .ok_or_else(|| Rejection::bad_request("the Pub/Sub push message has no `messageId`"))?;
    let time = text(&message, &["publishTime", "publish_time"]).unwrap_or_else(|| {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        message.insert("publishTime".to_owned(), Value::from(now.clone()));
        now
    });
    let source = match topic_in(path) {
        Some(topic) => format!("//pubsub.googleapis.com/{topic}"),
        None => format!("//pubsub.googleapis.com/{subscription}"),
    };
    let mut data = Map::new();
    data.insert("message".to_owned(), Value::Object(message));
    data.insert("subscription".to_owned(), Value::from(subscription));
    if let Some(attempt) = envelope.remove("deliveryAttempt") {
        data.insert("deliveryAttempt".to_owned(), attempt);
    }
    let event = json!({
        "specversion": "1.0",
        "id": id,
        "source": source,
        "type": MESSAGE_PUBLISHED,
        "time": time,
        "datacontenttype": "application/json",
        "data": Value::Object(data),
    });
    serde_json::from_value(event).map_err(|e| {
        Rejection::bad_request(format!(
            "the Pub/Sub push request does not make an event: {e}"
        ))
    })
}

/// The first of `keys` holding a string.
fn text(object: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|key| object.get(*key).and_then(Value::as_str))
        .map(str::to_owned)
}

/// `projects/P/topics/T` within a request path.
fn topic_in(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split('/').filter(|part| !part.is_empty()).collect();
    parts.windows(4).find_map(|window| match window {
        ["projects", project, "topics", topic] => {
            Some(format!("projects/{project}/topics/{topic}"))
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use cloudevents::AttributesReader;

    use super::*;

    fn push(message: &Value) -> Value {
        json!({"message": message, "subscription": "projects/p/subscriptions/s"})
    }

    #[test]
    fn a_push_body_is_recognised_and_nothing_else() {
        assert!(is_push(&push(&json!({"data": "aGk=", "messageId": "1"}))));
        assert!(!is_push(&json!({"message": "text", "subscription": "s"})));
        assert!(!is_push(
            &json!({"message": {}, "subscription": "s", "context": {}})
        ));
        assert!(!is_push(&json!({"data": {}})));
    }

    #[test]
    fn the_topic_comes_from_the_path_and_the_time_from_the_message() {
        let body = push(
            &json!({"data": "aGk=", "messageId": "42", "publishTime": "2024-01-02T03:04:05Z"}),
        );
        let event = to_cloud_event("/projects/p/topics/orders", body).expect("event");
        assert_eq!(event.id(), "42");
        assert_eq!(
            event.source().to_string(),
            "//pubsub.googleapis.com/projects/p/topics/orders"
        );
        assert_eq!(event.ty(), MESSAGE_PUBLISHED);
        assert_eq!(
            event.time().map(|t| t.to_rfc3339()).as_deref(),
            Some("2024-01-02T03:04:05+00:00")
        );
    }

    #[test]
    fn without_a_topic_the_subscription_is_the_source_and_now_the_time() {
        let event = to_cloud_event("/", push(&json!({"message_id": "7"}))).expect("event");
        assert_eq!(
            event.source().to_string(),
            "//pubsub.googleapis.com/projects/p/subscriptions/s"
        );
        assert!(event.time().is_some());
        let missing = to_cloud_event("/", push(&json!({"data": "aGk="})));
        assert!(missing.is_err());
    }
}
