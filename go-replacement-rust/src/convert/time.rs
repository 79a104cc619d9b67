//! Timestamps: RFC 3339 date-times rewritten in UTC with a `Z` suffix, parsed by chrono.

use chrono::{Datelike, Utc};

use super::{ConvertError, Side, preview};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TimestampError {
    Malformed,
    /// Valid, but before 0000-01-01 or after 9999-12-31 once moved to UTC, which RFC 3339
    /// cannot write.
    OutOfRange,
}

/// Rewrites an RFC 3339 date-time in UTC with a `Z` suffix. Offsets are whole minutes, so
/// the seconds and their fraction are kept exactly as written (chrono keeps at most nine
/// digits; the digits come from the input), and a leap second (`:60`) stays one.
pub(super) fn normalize_timestamp(raw: &str) -> Result<String, TimestampError> {
    // chrono also takes a space between date and time; RFC 3339's `date-time` does not.
    if !matches!(raw.as_bytes().get(10), Some(b'T' | b't')) {
        return Err(TimestampError::Malformed);
    }
    let time = chrono::DateTime::parse_from_rfc3339(raw)
        .map_err(|_| TimestampError::Malformed)?
        .with_timezone(&Utc);
    if !(0..=9999).contains(&time.year()) {
        return Err(TimestampError::OutOfRange);
    }
    // A successful parse means `raw` starts with the 19 ASCII bytes of
    // `YYYY-MM-DDTHH:MM:SS`; a fraction, if any, follows.
    let fraction = raw
        .get(19..)
        .and_then(|rest| rest.strip_prefix('.'))
        .map(|rest| &rest[..rest.bytes().take_while(u8::is_ascii_digit).count()])
        .unwrap_or_default();
    let point = if fraction.is_empty() { "" } else { "." };
    Ok(format!(
        "{}{point}{fraction}Z",
        time.format("%Y-%m-%dT%H:%M:%S")
    ))
}

pub(super) fn normalized_time(raw: &str, label: &str, side: Side) -> Result<String, ConvertError> {
    normalize_timestamp(raw).map_err(|error| match error {
        TimestampError::Malformed => side.error(format_args!(
            "`{label}` must be an RFC 3339 date-time, found {}",
            preview(raw)
        )),
        TimestampError::OutOfRange => side.error(format_args!(
            "`{label}` {} is outside years 0000-9999 in UTC",
            preview(raw)
        )),
    })
}
