//! Conveniences on the Pub/Sub types: the message's data as text or JSON.

use std::sync::OnceLock;

use serde::de::DeserializeOwned;

use crate::google::events::cloud::pubsub::v1::{MessagePublishedData, PubsubMessage};

impl PubsubMessage {
    /// The data as UTF-8 text, when it is.
    ///
    /// ```
    /// use functions_framework_events::google::events::cloud::pubsub::v1::PubsubMessage;
    ///
    /// let message = PubsubMessage { data: b"hello".to_vec(), ..PubsubMessage::default() };
    /// assert_eq!(message.text(), Some("hello"));
    /// ```
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.data).ok()
    }

    /// The data decoded as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.data)
    }
}

impl MessagePublishedData {
    /// The published message; an empty one when the event carries none.
    pub fn message(&self) -> &PubsubMessage {
        static EMPTY: OnceLock<PubsubMessage> = OnceLock::new();
        self.message
            .as_ref()
            .unwrap_or_else(|| EMPTY.get_or_init(PubsubMessage::default))
    }
}
