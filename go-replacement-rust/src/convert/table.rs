//! The conversion table: each legacy event type and the CloudEvent type it pairs with, and
//! the rules of each event family (service, how the resource splits into `source` and
//! `subject`, how `data` differs).

const PUBSUB_MESSAGE_TYPE: &str = "type.googleapis.com/google.pubsub.v1.PubsubMessage";
pub(super) const STORAGE_OBJECT_TYPE: &str = "storage#object";

/// One `/`-separated segment of a resource layout.
#[derive(Debug, Clone, Copy)]
pub(super) enum Segment {
    Literal(&'static str),
    Any,
}

/// Where the CloudEvent `subject` comes from.
#[derive(Debug, Clone, Copy)]
pub(super) enum Subject {
    /// No subject: the whole legacy resource is the source path.
    None,
    /// The legacy resource is `<prefix>/<keyword>/<rest>`: `<prefix>` is the
    /// source path and `<keyword>/<rest>` the subject. `single_segment` limits
    /// `<rest>` to one segment.
    Path {
        prefix: &'static [Segment],
        keyword: &'static str,
        single_segment: bool,
    },
    /// `users/<uid>` from `data.uid`; the whole legacy resource is the source path.
    UserId,
}

/// How `data` differs between the two forms.
#[derive(Debug, Clone, Copy)]
pub(super) enum Payload {
    Same,
    /// CloudEvents wrap the message as `{"message": ...}` with `messageId` and
    /// `publishTime` inside; legacy events carry the bare message.
    PubSubMessage,
    /// `metadata` field names differ (see `AUTH_METADATA_RENAMES`).
    AuthUser,
}

/// Shape of the legacy `resource` written by the reverse conversion.
#[derive(Debug, Clone, Copy)]
pub(super) enum LegacyResource {
    /// A string: the resource path.
    Path,
    /// `{"service", "name", "type"}`; `type` is read from `data[type_field]`
    /// when present, else `default_type`.
    Object {
        type_field: Option<&'static str>,
        default_type: &'static str,
    },
}

/// The rules shared by every event type of one Google service.
#[derive(Debug)]
pub(super) struct Family {
    pub(super) service: &'static str,
    /// Legacy type prefixes of this family; they give unknown legacy types a service.
    pub(super) legacy_prefixes: &'static [&'static str],
    pub(super) subject: Subject,
    /// CloudEvent sources carry `locations/<location>` after this many segments;
    /// legacy resources do not.
    pub(super) location_after: Option<usize>,
    pub(super) payload: Payload,
    pub(super) legacy_resource: LegacyResource,
}

/// One legacy type <-> CloudEvent type pairing.
#[derive(Debug)]
pub(super) struct Row {
    pub(super) legacy_type: &'static str,
    pub(super) cloud_event_type: &'static str,
    pub(super) family: &'static Family,
    /// Alias rows are accepted as legacy input only; the reverse conversion
    /// produces the canonical row's legacy type.
    pub(super) canonical: bool,
}

const PUBSUB: Family = Family {
    service: "pubsub.googleapis.com",
    legacy_prefixes: &["google.pubsub.", "providers/cloud.pubsub/"],
    subject: Subject::None,
    location_after: None,
    payload: Payload::PubSubMessage,
    legacy_resource: LegacyResource::Object {
        type_field: None,
        default_type: PUBSUB_MESSAGE_TYPE,
    },
};

const STORAGE: Family = Family {
    service: "storage.googleapis.com",
    legacy_prefixes: &["google.storage.", "providers/cloud.storage/"],
    subject: Subject::Path {
        prefix: &[
            Segment::Literal("projects"),
            Segment::Any,
            Segment::Literal("buckets"),
            Segment::Any,
        ],
        keyword: "objects",
        single_segment: false,
    },
    location_after: None,
    payload: Payload::Same,
    legacy_resource: LegacyResource::Object {
        type_field: Some("kind"),
        default_type: STORAGE_OBJECT_TYPE,
    },
};

const FIRESTORE: Family = Family {
    service: "firestore.googleapis.com",
    legacy_prefixes: &["providers/cloud.firestore/"],
    subject: Subject::Path {
        prefix: &[
            Segment::Literal("projects"),
            Segment::Any,
            Segment::Literal("databases"),
            Segment::Any,
        ],
        keyword: "documents",
        single_segment: false,
    },
    location_after: None,
    payload: Payload::Same,
    legacy_resource: LegacyResource::Path,
};

const FIREBASE_AUTH: Family = Family {
    service: "firebaseauth.googleapis.com",
    legacy_prefixes: &["providers/firebase.auth/"],
    subject: Subject::UserId,
    location_after: None,
    payload: Payload::AuthUser,
    legacy_resource: LegacyResource::Path,
};

const FIREBASE_ANALYTICS: Family = Family {
    service: "firebaseanalytics.googleapis.com",
    legacy_prefixes: &["providers/google.firebase.analytics/"],
    subject: Subject::Path {
        prefix: &[Segment::Literal("projects"), Segment::Any],
        keyword: "events",
        single_segment: true,
    },
    location_after: None,
    payload: Payload::Same,
    legacy_resource: LegacyResource::Path,
};

const FIREBASE_DATABASE: Family = Family {
    service: "firebasedatabase.googleapis.com",
    legacy_prefixes: &["providers/google.firebase.database/"],
    subject: Subject::Path {
        prefix: &[
            Segment::Literal("projects"),
            Segment::Any,
            Segment::Literal("instances"),
            Segment::Any,
        ],
        keyword: "refs",
        single_segment: false,
    },
    location_after: Some(2),
    payload: Payload::Same,
    legacy_resource: LegacyResource::Path,
};

/// The single source of truth for which types convert and how: one row per pairing, as
/// `row` (canonical both ways) or `alias` (accepted as legacy input only).
#[rustfmt::skip]
pub(super) static ROWS: &[Row] = &[
    row("google.pubsub.topic.publish",                                "google.cloud.pubsub.topic.v1.messagePublished",  &PUBSUB),
    alias("providers/cloud.pubsub/eventTypes/topic.publish",          "google.cloud.pubsub.topic.v1.messagePublished",  &PUBSUB),
    row("google.storage.object.finalize",                             "google.cloud.storage.object.v1.finalized",       &STORAGE),
    row("google.storage.object.delete",                               "google.cloud.storage.object.v1.deleted",         &STORAGE),
    row("google.storage.object.archive",                              "google.cloud.storage.object.v1.archived",        &STORAGE),
    row("google.storage.object.metadataUpdate",                       "google.cloud.storage.object.v1.metadataUpdated", &STORAGE),
    alias("providers/cloud.storage/eventTypes/object.change",         "google.cloud.storage.object.v1.finalized",       &STORAGE),
    row("providers/cloud.firestore/eventTypes/document.write",        "google.cloud.firestore.document.v1.written",     &FIRESTORE),
    row("providers/cloud.firestore/eventTypes/document.create",       "google.cloud.firestore.document.v1.created",     &FIRESTORE),
    row("providers/cloud.firestore/eventTypes/document.update",       "google.cloud.firestore.document.v1.updated",     &FIRESTORE),
    row("providers/cloud.firestore/eventTypes/document.delete",       "google.cloud.firestore.document.v1.deleted",     &FIRESTORE),
    row("providers/firebase.auth/eventTypes/user.create",             "google.firebase.auth.user.v1.created",           &FIREBASE_AUTH),
    row("providers/firebase.auth/eventTypes/user.delete",             "google.firebase.auth.user.v1.deleted",           &FIREBASE_AUTH),
    row("providers/google.firebase.analytics/eventTypes/event.log",   "google.firebase.analytics.log.v1.written",       &FIREBASE_ANALYTICS),
    row("providers/google.firebase.database/eventTypes/ref.create",   "google.firebase.database.ref.v1.created",        &FIREBASE_DATABASE),
    row("providers/google.firebase.database/eventTypes/ref.write",    "google.firebase.database.ref.v1.written",        &FIREBASE_DATABASE),
    row("providers/google.firebase.database/eventTypes/ref.update",   "google.firebase.database.ref.v1.updated",        &FIREBASE_DATABASE),
    row("providers/google.firebase.database/eventTypes/ref.delete",   "google.firebase.database.ref.v1.deleted",        &FIREBASE_DATABASE),
];

const fn row(
    legacy_type: &'static str,
    cloud_event_type: &'static str,
    family: &'static Family,
) -> Row {
    Row {
        legacy_type,
        cloud_event_type,
        family,
        canonical: true,
    }
}

const fn alias(
    legacy_type: &'static str,
    cloud_event_type: &'static str,
    family: &'static Family,
) -> Row {
    Row {
        legacy_type,
        cloud_event_type,
        family,
        canonical: false,
    }
}

pub(super) fn row_for_legacy_type(legacy_type: &str) -> Option<&'static Row> {
    ROWS.iter().find(|row| row.legacy_type == legacy_type)
}

pub(super) fn row_for_cloud_event_type(cloud_event_type: &str) -> Option<&'static Row> {
    ROWS.iter()
        .find(|row| row.canonical && row.cloud_event_type == cloud_event_type)
}

pub(super) fn service_for_legacy_prefix(legacy_type: &str) -> Option<&'static str> {
    ROWS.iter()
        .map(|row| row.family)
        .find(|family| {
            family
                .legacy_prefixes
                .iter()
                .any(|prefix| legacy_type.starts_with(prefix))
        })
        .map(|family| family.service)
}
