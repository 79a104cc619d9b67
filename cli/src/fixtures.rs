//! The test events `invoke` sends: the repository's `tests/fixtures/events`, built into the
//! tool so that it needs no checkout. Each is `{"description", "headers", "body"}` or, for
//! binary data, `"bodyBase64"`.

use base64::Engine as _;
use serde_json::Value;

macro_rules! fixtures {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../assets/events/", $name, ".json")))),*]
    };
}

/// Every fixture, by name (the file name without `.json`).
pub(crate) const ALL: &[(&str, &str)] = fixtures!(
    "audit-binary",
    "cloudbuild-binary",
    "firebase-alerts-binary",
    "firebase-analytics-binary",
    "firebase-auth-binary",
    "firebase-database-binary",
    "firebase-remoteconfig-binary",
    "firebase-testlab-binary",
    "firestore-binary",
    "firestore-protobuf",
    "firestore-structured",
    "pubsub-binary",
    "pubsub-push",
    "pubsub-structured",
    "scheduler-binary",
    "storage-binary",
    "storage-structured",
);

/// A request to send: headers and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fixture {
    pub(crate) description: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Fixture {
    /// Reads a fixture file's JSON.
    pub(crate) fn parse(text: &str) -> Result<Fixture, String> {
        let json: Value =
            serde_json::from_str(text).map_err(|e| format!("not a fixture (JSON): {e}"))?;
        let headers = json["headers"]
            .as_object()
            .ok_or("not a fixture: no \"headers\" object")?
            .iter()
            .map(|(name, value)| match value {
                Value::String(text) => Ok((name.clone(), text.clone())),
                _ => Err(format!("not a fixture: header {name} is not a string")),
            })
            .collect::<Result<Vec<_>, String>>()?;
        let body = match (json.get("bodyBase64"), json.get("body")) {
            (Some(Value::String(encoded)), _) => base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| format!("not a fixture: bodyBase64: {e}"))?,
            (_, Some(Value::String(text))) => text.clone().into_bytes(),
            (_, Some(other)) => other.to_string().into_bytes(),
            (_, None) => Vec::new(),
        };
        Ok(Fixture {
            description: json["description"].as_str().unwrap_or_default().to_owned(),
            headers,
            body,
        })
    }

    /// A built-in fixture by name.
    pub(crate) fn named(name: &str) -> Option<Fixture> {
        ALL.iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, text)| Fixture::parse(text).ok())
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn is_binary_event(&self) -> bool {
        self.header("ce-specversion").is_some()
    }

    fn is_structured_event(&self) -> bool {
        self.header("content-type")
            .is_some_and(|ct| ct.starts_with("application/cloudevents+json"))
    }

    /// The event as a structured-mode CloudEvent (JSON), whatever its mode; `None` for what
    /// is not a CloudEvent (a Pub/Sub push request, a legacy event).
    pub(crate) fn structured(&self) -> Result<Option<Value>, String> {
        if self.is_structured_event() {
            return serde_json::from_slice(&self.body)
                .map(Some)
                .map_err(|e| format!("the structured event is not JSON: {e}"));
        }
        if !self.is_binary_event() {
            return Ok(None);
        }
        let mut event = serde_json::Map::new();
        for (name, value) in &self.headers {
            if let Some(attribute) = name.to_ascii_lowercase().strip_prefix("ce-") {
                event.insert(attribute.to_owned(), Value::String(value.clone()));
            }
        }
        let content_type = self.header("content-type").unwrap_or("application/json");
        event.insert(
            "datacontenttype".to_owned(),
            Value::String(content_type.to_owned()),
        );
        if !self.body.is_empty() {
            let json = content_type.contains("json");
            match serde_json::from_slice::<Value>(&self.body) {
                Ok(data) if json => {
                    event.insert("data".to_owned(), data);
                }
                _ => {
                    event.insert(
                        "data_base64".to_owned(),
                        Value::String(base64::engine::general_purpose::STANDARD.encode(&self.body)),
                    );
                }
            }
        }
        Ok(Some(Value::Object(event)))
    }

    /// The same event in structured mode.
    pub(crate) fn to_structured(&self) -> Result<Fixture, String> {
        let event = self
            .structured()?
            .ok_or("only a CloudEvent has a structured form")?;
        Ok(Fixture {
            description: format!("{} (structured mode)", self.description),
            headers: vec![(
                "Content-Type".to_owned(),
                "application/cloudevents+json".to_owned(),
            )],
            body: event.to_string().into_bytes(),
        })
    }

    /// The same event in binary mode.
    pub(crate) fn to_binary(&self) -> Result<Fixture, String> {
        let event = self
            .structured()?
            .ok_or("only a CloudEvent has a binary form")?;
        let object = event
            .as_object()
            .ok_or("the structured event is not a JSON object")?;
        let mut headers = Vec::new();
        for (name, value) in object {
            if matches!(name.as_str(), "data" | "data_base64" | "datacontenttype") {
                continue;
            }
            let value = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            headers.push((format!("ce-{name}"), value));
        }
        let content_type = object
            .get("datacontenttype")
            .and_then(Value::as_str)
            .unwrap_or("application/json");
        headers.push(("Content-Type".to_owned(), content_type.to_owned()));
        let body = match (object.get("data_base64"), object.get("data")) {
            (Some(Value::String(encoded)), _) => base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| format!("data_base64: {e}"))?,
            (_, Some(data)) => data.to_string().into_bytes(),
            _ => Vec::new(),
        };
        Ok(Fixture {
            description: format!("{} (binary mode)", self.description),
            headers,
            body,
        })
    }

    /// The same event as the legacy (background) event the Cloud Functions Node.js runtime
    /// sends for it, by the framework's own conversion table.
    pub(crate) fn to_legacy(&self) -> Result<Fixture, String> {
        let event = self
            .structured()?
            .ok_or("only a CloudEvent has a legacy form")?;
        let legacy = functions_framework::convert::cloud_event_to_legacy(&event)
            .map_err(|e| format!("no legacy form: {e}"))?;
        Ok(Fixture {
            description: format!("{} (legacy event)", self.description),
            headers: vec![("Content-Type".to_owned(), "application/json".to_owned())],
            body: legacy.to_string().into_bytes(),
        })
    }

    /// The forms this fixture can be sent in.
    pub(crate) fn forms(&self) -> Vec<&'static str> {
        let mut forms = Vec::new();
        if let Ok(Some(_)) = self.structured() {
            forms.extend(["binary", "structured"]);
            if self.to_legacy().is_ok() {
                forms.push("legacy");
            }
        }
        forms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixture_file_is_built_in_and_parses() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/events");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .expect("fixtures")
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().into_string().ok()?;
                name.strip_suffix(".json").map(str::to_owned)
            })
            .collect();
        files.sort();
        let built_in: Vec<String> = ALL.iter().map(|(n, _)| (*n).to_owned()).collect();
        assert_eq!(built_in, files);
        for (name, text) in ALL {
            Fixture::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn binary_and_structured_forms_are_the_same_event() {
        let binary = Fixture::named("pubsub-binary").expect("fixture");
        let structured = binary.to_structured().expect("structured");
        let back = structured.to_binary().expect("binary");
        assert_eq!(
            binary.structured().expect("event"),
            back.structured().expect("event")
        );
        let protobuf = Fixture::named("firestore-protobuf").expect("fixture");
        let structured = protobuf.to_structured().expect("structured");
        assert!(String::from_utf8_lossy(&structured.body).contains("data_base64"));
        assert_eq!(structured.to_binary().expect("binary").body, protobuf.body);
    }

    #[test]
    fn legacy_forms_where_the_table_has_them() {
        let legacy = Fixture::named("storage-binary")
            .expect("fixture")
            .to_legacy()
            .expect("legacy");
        let body: Value = serde_json::from_slice(&legacy.body).expect("JSON");
        assert_eq!(
            body["context"]["eventType"],
            "google.storage.object.finalize"
        );
        // A push request is not a CloudEvent: it is sent as it is.
        assert!(
            Fixture::named("pubsub-push")
                .expect("fixture")
                .forms()
                .is_empty()
        );
    }
}
