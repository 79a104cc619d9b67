//! The Google CloudEvent types `new --cloudevent --event-type` scaffolds for: each with the
//! generated Rust type of its data and the `functions-framework-events` feature that compiles
//! it, from the events crate's table.

use functions_framework_events::cloud_event_types::ALL;

/// A Google CloudEvent type and its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EventType {
    /// `google.cloud.pubsub.topic.v1.messagePublished`
    pub(crate) ty: &'static str,
    /// `google.events.cloud.pubsub.v1.MessagePublishedData`
    pub(crate) message: &'static str,
    /// `pubsub`
    pub(crate) feature: &'static str,
}

impl EventType {
    /// The data type's module path under `functions_framework::events`
    /// (`google::events::cloud::pubsub::v1`) and its name (`MessagePublishedData`).
    pub(crate) fn rust_path(&self) -> (String, &'static str) {
        let (package, name) = self.message.rsplit_once('.').unwrap_or(("", self.message));
        (package.replace('.', "::"), name)
    }
}

fn all() -> impl Iterator<Item = EventType> {
    ALL.iter().map(|&(ty, message, feature)| EventType {
        ty,
        message,
        feature,
    })
}

/// The type named exactly; otherwise an error naming the closest types.
pub(crate) fn find(ty: &str) -> Result<EventType, String> {
    if let Some(found) = all().find(|e| e.ty == ty) {
        return Ok(found);
    }
    // The types that share the most dot-separated words with what was asked, counting only
    // the words that tell types apart (not `google`, `cloud` or `v1`, which most types have).
    let common =
        |word: &str| all().filter(|e| e.ty.split('.').any(|w| w == word)).count() * 10 > ALL.len();
    let words: Vec<&str> = ty
        .split('.')
        .filter(|w| !w.is_empty() && !common(w))
        .collect();
    let mut scored: Vec<(usize, EventType)> = all()
        .map(|e| {
            let score =
                e.ty.split('.')
                    .filter(|w| words.iter().any(|asked| asked.eq_ignore_ascii_case(w)))
                    .count();
            (score, e)
        })
        .filter(|(score, _)| *score > 0)
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.ty.cmp(b.1.ty)));
    let close: Vec<&str> = scored.iter().take(5).map(|(_, e)| e.ty).collect();
    let hint = if close.is_empty() {
        String::new()
    } else {
        format!("; the closest are:\n  {}", close.join("\n  "))
    };
    Err(format!(
        "{ty:?} is not a Google CloudEvent type (`ff-rust event-types` lists the {} there are){hint}",
        ALL.len()
    ))
}

/// One line per type containing `filter`: the type, its data type and its feature.
pub(crate) fn list(filter: Option<&str>) -> String {
    let mut out = String::new();
    for e in all().filter(|e| filter.is_none_or(|f| e.ty.contains(f))) {
        let (_, name) = e.rust_path();
        out.push_str(&format!("{}  {name}  (feature {})\n", e.ty, e.feature));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_type_has_its_data_type_and_feature() {
        let found = find("google.cloud.firestore.document.v1.written").expect("found");
        assert_eq!(
            found.rust_path(),
            (
                "google::events::cloud::firestore::v1".to_owned(),
                "DocumentEventData"
            )
        );
        assert_eq!(found.feature, "firestore");
    }

    #[test]
    fn an_unknown_type_names_the_closest() {
        let error = find("google.cloud.pubsub.topic.v1.published").expect_err("unknown");
        assert!(
            error.contains("google.cloud.pubsub.topic.v1.messagePublished"),
            "{error}"
        );
        assert!(error.contains("ff-rust event-types"), "{error}");
    }

    #[test]
    fn the_list_filters() {
        let listed = list(Some("pubsub"));
        assert!(listed.contains("MessagePublishedData"), "{listed}");
        assert!(!listed.contains("firestore"), "{listed}");
        assert_eq!(list(None).lines().count(), ALL.len());
    }
}
