//! Page sizes and opaque cursors.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

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

/// Reads back a cursor made by [`encode_cursor`] for the same `kind`.
///
/// # Errors
/// [`StorageError::InvalidRequest`] for anything else.
pub fn decode_cursor(kind: &str, cursor: &str) -> Result<String, StorageError> {
    let malformed = || StorageError::invalid("malformed cursor");
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| malformed())?;
    let text = String::from_utf8(bytes).map_err(|_| malformed())?;
    text.strip_prefix(kind)
        .and_then(|rest| rest.strip_prefix(':'))
        .map(str::to_owned)
        .ok_or_else(malformed)
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
}
