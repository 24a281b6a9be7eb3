//! Page sizes and opaque cursors.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Datelike, Utc};

use crate::error::StorageError;

/// A page size: 1..=1000, 100 by default (spec §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(u32);

impl Limit {
    pub const DEFAULT: u32 = 100;
    pub const MAX: u32 = 1000;

    /// # Errors
    /// [`StorageError::InvalidRequest`] outside 1..=1000.
    pub fn new(requested: Option<u32>) -> Result<Self, StorageError> {
        match requested {
            None => Ok(Self(Self::DEFAULT)),
            Some(n) if (1..=Self::MAX).contains(&n) => Ok(Self(n)),
            Some(_) => Err(StorageError::invalid(format!(
                "limit must be between 1 and {}",
                Self::MAX
            ))),
        }
    }

    pub const fn get(self) -> u32 {
        self.0
    }
}

/// Makes an opaque cursor of a position (`kind` guards against a cursor of one listing being
/// used with another).
pub fn encode_cursor(kind: &str, position: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}:{position}"))
}

/// Longest cursor accepted, in bytes: the longest position any listing writes (a path of
/// 1024 bytes), its kind, in base64, with room to spare.
pub const MAX_CURSOR_BYTES: usize = 2048;

/// The answer to every cursor that is not one the service made for this listing.
pub(crate) fn malformed_cursor() -> StorageError {
    StorageError::invalid("malformed cursor")
}

/// Reads back a cursor made by [`encode_cursor`] for the same `kind`. Whatever a client sends,
/// the position returned is at most [`MAX_CURSOR_BYTES`] of text without control characters;
/// each listing checks the rest of its own position's shape before any store sees it.
///
/// # Errors
/// [`StorageError::InvalidRequest`] for anything else.
pub fn decode_cursor(kind: &str, cursor: &str) -> Result<String, StorageError> {
    let cursor = cursor.trim();
    if cursor.len() > MAX_CURSOR_BYTES {
        return Err(malformed_cursor());
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| malformed_cursor())?;
    let text = String::from_utf8(bytes).map_err(|_| malformed_cursor())?;
    text.strip_prefix(kind)
        .and_then(|rest| rest.strip_prefix(':'))
        .filter(|position| !position.chars().any(char::is_control))
        .map(str::to_owned)
        .ok_or_else(malformed_cursor)
}

/// A cursor of a listing in time order: the last item's time and id, `<RFC 3339>|<id>`.
pub(crate) fn encode_time_cursor(
    kind: &str,
    at: DateTime<Utc>,
    id: impl std::fmt::Display,
) -> String {
    encode_cursor(kind, &format!("{}|{id}", at.to_rfc3339()))
}

/// Reads back a cursor of [`encode_time_cursor`]: the time (a year the stores hold alike, 1970
/// to 9999) and the id, parsed by `parse_id`.
///
/// # Errors
/// [`StorageError::InvalidRequest`] for any other cursor.
pub(crate) fn decode_time_cursor<I, E>(
    kind: &str,
    cursor: &str,
    parse_id: impl FnOnce(&str) -> Result<I, E>,
) -> Result<(DateTime<Utc>, I), StorageError> {
    let raw = decode_cursor(kind, cursor)?;
    let (at, id) = raw.split_once('|').ok_or_else(malformed_cursor)?;
    let at = DateTime::parse_from_rfc3339(at)
        .map_err(|_| malformed_cursor())?
        .with_timezone(&Utc);
    if !(1970..=9999).contains(&at.year()) {
        return Err(malformed_cursor());
    }
    let id = parse_id(id).map_err(|_| malformed_cursor())?;
    Ok((at, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert_eq!(Limit::new(None).unwrap().get(), 100);
        assert_eq!(Limit::new(Some(1000)).unwrap().get(), 1000);
        assert!(Limit::new(Some(0)).is_err());
        assert!(Limit::new(Some(1001)).is_err());
    }

    #[test]
    fn cursors_round_trip_and_are_typed() {
        let c = encode_cursor("list", "caf\u{e9}/x");
        assert_eq!(decode_cursor("list", &c).unwrap(), "caf\u{e9}/x");
        assert!(decode_cursor("audit", &c).is_err());
        assert!(decode_cursor("list", "***").is_err());
    }

    #[test]
    fn hostile_cursors_are_malformed() {
        for position in ["a\u{0}b", "\u{7f}", "x\ny", "\u{85}"] {
            let c = encode_cursor("list", position);
            assert!(decode_cursor("list", &c).is_err(), "{position:?}");
        }
        assert!(decode_cursor("list", &"A".repeat(MAX_CURSOR_BYTES + 4)).is_err());
        // Not UTF-8.
        assert!(decode_cursor("list", &URL_SAFE_NO_PAD.encode([b'l', 0xff, 0xfe])).is_err());
        let long = encode_cursor("list", &"n".repeat(1000));
        assert_eq!(decode_cursor("list", &long).unwrap().len(), 1000);
    }
}
