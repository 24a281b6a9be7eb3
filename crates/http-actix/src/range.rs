//! `Range`, `If-None-Match` and `If-Range` of downloads (RFC 9110 §13–14).

use storage_domain::ports::ByteRange;

/// Parses a single byte range. Several ranges, another unit or a malformed value give `None`:
/// the whole file is then sent (RFC 9110 §14.2 allows ignoring `Range`).
pub(crate) fn parse_range(raw: &str) -> Option<ByteRange> {
    let raw = raw.trim();
    let (unit, spec) = raw.split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return None;
    }
    let (first, last) = spec.trim().split_once('-')?;
    let number = |s: &str| {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (first.trim().is_empty(), last.trim().is_empty()) {
        (true, true) => None,
        (true, false) => Some(ByteRange::Suffix { len: number(last)? }),
        (false, true) => Some(ByteRange::From {
            first: number(first)?,
        }),
        (false, false) => {
            let (first, last) = (number(first)?, number(last)?);
            (first <= last).then_some(ByteRange::FromTo { first, last })
        }
    }
}

/// The entity tag of a version: its SHA-256, quoted (a strong validator: versions never change).
pub(crate) fn etag_of(sha256: &str) -> String {
    format!("\"{sha256}\"")
}

/// True when `If-None-Match` matches `etag` (weak comparison, `*` matches anything).
pub(crate) fn none_match_hits(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

/// True when `If-Range` allows the range: it names this exact (strong) entity tag. A date or
/// another tag means "send the whole file".
pub(crate) fn if_range_allows(if_range: &str, etag: &str) -> bool {
    if_range.trim() == etag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(
            parse_range("bytes=0-9"),
            Some(ByteRange::FromTo { first: 0, last: 9 })
        );
        assert_eq!(
            parse_range("Bytes = 5-"),
            Some(ByteRange::From { first: 5 })
        );
        assert_eq!(
            parse_range("bytes=-20"),
            Some(ByteRange::Suffix { len: 20 })
        );
        for ignored in [
            "bytes=0-1,5-6",
            "bytes=9-0",
            "bytes=-",
            "bytes=a-b",
            "bytes=+1-2",
            "items=0-1",
            "0-1",
            "bytes=1",
            "bytes=99999999999999999999999-",
        ] {
            assert_eq!(parse_range(ignored), None, "{ignored}");
        }
    }

    #[test]
    fn validators() {
        let tag = etag_of("abc");
        assert_eq!(tag, "\"abc\"");
        assert!(none_match_hits("\"abc\"", &tag));
        assert!(none_match_hits("\"x\", W/\"abc\"", &tag));
        assert!(none_match_hits("*", &tag));
        assert!(!none_match_hits("\"abcd\"", &tag));
        assert!(if_range_allows(" \"abc\" ", &tag));
        assert!(!if_range_allows("W/\"abc\"", &tag));
        assert!(!if_range_allows("Wed, 21 Oct 2015 07:28:00 GMT", &tag));
    }
}
