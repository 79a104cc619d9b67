//! Resource paths: how a legacy resource splits into a CloudEvent `source` and `subject`,
//! and the Realtime Database location that sources carry and legacy resources do not.

use serde_json::{Map, Value};

use super::table::Segment;
use super::{ConvertError, Side, field, kind, optional_str, preview, required_str};

const DEFAULT_DATABASE_DOMAIN: &str = "firebaseio.com";
pub(super) const DEFAULT_DATABASE_LOCATION: &str = "us-central1";
const REGIONAL_DATABASE_DOMAIN_SUFFIX: &str = ".firebasedatabase.app";

/// Byte index just past the `count`-th `/` of `path`.
pub(super) fn segment_boundary(path: &str, count: usize) -> Option<usize> {
    let mut index = 0;
    for _ in 0..count {
        index += path.get(index..)?.find('/')? + 1;
    }
    Some(index)
}

/// Splits `resource` into (`<prefix>`, `<keyword>/<rest>`) when it follows the
/// layout; every segment matched by the prefix must be non-empty.
pub(super) fn split_resource<'a>(
    resource: &'a str,
    prefix: &[Segment],
    keyword: &str,
    single_segment: bool,
) -> Option<(&'a str, &'a str)> {
    let mut rest = resource;
    for segment in prefix {
        let (head, tail) = rest.split_once('/')?;
        let matches = match segment {
            Segment::Literal(literal) => head == *literal,
            Segment::Any => !head.is_empty(),
        };
        if !matches {
            return None;
        }
        rest = tail;
    }
    let (head, tail) = rest.split_once('/')?;
    if head != keyword || tail.is_empty() || (single_segment && tail.contains('/')) {
        return None;
    }
    let prefix_len = resource.len().checked_sub(rest.len() + 1)?;
    Some((resource.get(..prefix_len)?, rest))
}

/// Human-readable layout, e.g. `projects/*/buckets/*/objects/...`.
pub(super) fn describe_layout(prefix: &[Segment], keyword: &str, single_segment: bool) -> String {
    let mut layout: Vec<&str> = prefix
        .iter()
        .map(|segment| match segment {
            Segment::Literal(literal) => *literal,
            Segment::Any => "*",
        })
        .collect();
    layout.push(keyword);
    layout.push(if single_segment { "*" } else { "..." });
    layout.join("/")
}

pub(super) fn insert_location(path: &str, after: usize, location: &str) -> Option<String> {
    let at = segment_boundary(path, after)?;
    Some(format!(
        "{}locations/{location}/{}",
        path.get(..at)?,
        path.get(at..)?
    ))
}

/// Removes `locations/<location>` when it follows the first `after` segments.
pub(super) fn strip_location(path: &str, after: usize) -> String {
    let parts =
        segment_boundary(path, after).and_then(|at| Some((path.get(..at)?, path.get(at..)?)));
    let Some((head, tail)) = parts else {
        return path.to_owned();
    };
    match tail.strip_prefix("locations/") {
        Some(located) => match located.split_once('/') {
            Some((_, remainder)) => format!("{head}{remainder}"),
            None => head.strip_suffix('/').unwrap_or(head).to_owned(),
        },
        None => path.to_owned(),
    }
}

pub(super) fn location_from_domain(domain: &str) -> Option<&str> {
    if domain == DEFAULT_DATABASE_DOMAIN {
        return Some(DEFAULT_DATABASE_LOCATION);
    }
    let location = domain.strip_suffix(REGIONAL_DATABASE_DOMAIN_SUFFIX)?;
    let valid = !location.is_empty()
        && location
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
    valid.then_some(location)
}

/// The Realtime Database location named by the event's `domain`, which
/// producers put at the top level but which is also honoured inside `context`.
pub(super) fn database_location<'a>(
    body: &'a Map<String, Value>,
    context: &'a Map<String, Value>,
) -> Result<&'a str, ConvertError> {
    let domain = field(body, &["domain"]).or_else(|| field(context, &["domain"]));
    match domain {
        None => Ok(DEFAULT_DATABASE_LOCATION),
        Some(Value::String(domain)) => location_from_domain(domain).ok_or_else(|| {
            Side::Legacy.error(format_args!(
                "`domain` {} is neither {DEFAULT_DATABASE_DOMAIN} nor <location>{REGIONAL_DATABASE_DOMAIN_SUFFIX}",
                preview(domain)
            ))
        }),
        Some(other) => Err(Side::Legacy.error(format_args!(
            "`domain` must be a string, found {}",
            kind(other)
        ))),
    }
}

/// The legacy `resource`, whichever of its two shapes was sent.
pub(super) struct ResourceRef<'a> {
    pub(super) name: &'a str,
    pub(super) service: Option<&'a str>,
}

pub(super) fn legacy_resource(
    context: &Map<String, Value>,
) -> Result<ResourceRef<'_>, ConvertError> {
    let side = Side::Legacy;
    match field(context, &["resource"]) {
        None => Err(side.error(format_args!("missing field `resource`"))),
        Some(Value::String(name)) if name.is_empty() => {
            Err(side.error(format_args!("`resource` must not be empty")))
        }
        Some(Value::String(name)) => Ok(ResourceRef {
            name,
            service: None,
        }),
        Some(Value::Object(resource)) => Ok(ResourceRef {
            name: required_str(resource, &["name"], "resource.name", side)?,
            service: optional_str(resource, "service", side)
                .map_err(|_| side.error(format_args!("`resource.service` must be a string")))?,
        }),
        Some(other) => Err(side.error(format_args!(
            "`resource` must be a string or an object, found {}",
            kind(other)
        ))),
    }
}
