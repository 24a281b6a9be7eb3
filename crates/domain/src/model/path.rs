//! Buckets, owners and logical paths (spec §1).
//!
//! A logical path is `/<bucket>/<owner_id>/<rest>`. Every rule is checked here, once, before any
//! storage call; a value of [`FilePath`] or [`DirPath`] is always valid and NFC-normalised.

use std::fmt;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use crate::error::{PathError, StorageError};

/// Longest logical path, in bytes of its NFC form.
pub const MAX_PATH_BYTES: usize = 1024;
/// Longest path segment, in bytes of its NFC form.
pub const MAX_SEGMENT_BYTES: usize = 255;

/// One of the three buckets of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BucketKind {
    Users,
    Companies,
    Projects,
}

impl BucketKind {
    pub const ALL: [BucketKind; 3] = [
        BucketKind::Users,
        BucketKind::Companies,
        BucketKind::Projects,
    ];

    /// Parses the API name of a bucket.
    ///
    /// # Errors
    /// [`StorageError::BucketNotFound`] for any other name.
    pub fn parse(raw: &str) -> Result<Self, StorageError> {
        match raw {
            "users" => Ok(BucketKind::Users),
            "companies" => Ok(BucketKind::Companies),
            "projects" => Ok(BucketKind::Projects),
            other => Err(StorageError::BucketNotFound(truncate_for_message(other))),
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            BucketKind::Users => "users",
            BucketKind::Companies => "companies",
            BucketKind::Projects => "projects",
        }
    }
}

impl fmt::Display for BucketKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn truncate_for_message(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// The owner of a bucket subtree: a user id (`users`), a company id (`companies`) or a project
/// id (`projects`). One non-empty segment of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OwnerId(String);

impl OwnerId {
    /// # Errors
    /// [`PathError::InvalidOwner`] unless `raw` is 1..=255 bytes of `[A-Za-z0-9_-]`.
    pub fn new(raw: &str) -> Result<Self, PathError> {
        if raw.is_empty()
            || raw.len() > MAX_SEGMENT_BYTES
            || !raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(PathError::InvalidOwner);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OwnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The parts every logical path shares.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Parsed {
    normalized: String,
    bucket: BucketKind,
    owner: OwnerId,
    /// Segments after the owner.
    rest: Vec<String>,
}

/// Checks every rule of spec §1 on `raw` and returns its NFC form split into parts.
/// `trailing_slash` says whether the path names a directory.
fn parse(bucket: BucketKind, raw: &str, directory: bool) -> Result<Parsed, PathError> {
    // Most paths are NFC already (every ASCII one is): the quick check spares them the
    // normalisation's decomposition and recomposition, a path being parsed on every request and
    // again for every row read back from the store.
    let normalized: String = match unicode_normalization::is_nfc_quick(raw.chars()) {
        unicode_normalization::IsNormalized::Yes => raw.to_owned(),
        _ => raw.nfc().collect(),
    };
    if !normalized.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if normalized.contains('\\') {
        return Err(PathError::Backslash);
    }
    if normalized.chars().any(char::is_control) {
        return Err(PathError::ControlCharacter);
    }
    if normalized.len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong {
            max: MAX_PATH_BYTES,
        });
    }
    let ends_with_slash = normalized.ends_with('/');
    let body = &normalized[1..];
    let body = if ends_with_slash {
        &body[..body.len().saturating_sub(1)]
    } else {
        body
    };
    let segments: Vec<&str> = body.split('/').collect();
    for segment in &segments {
        if segment.is_empty() {
            return Err(PathError::EmptySegment);
        }
        if *segment == "." || *segment == ".." {
            return Err(PathError::DotSegment);
        }
        if segment.len() > MAX_SEGMENT_BYTES {
            return Err(PathError::SegmentTooLong {
                max: MAX_SEGMENT_BYTES,
            });
        }
    }
    let path_bucket = segments.first().copied().unwrap_or_default();
    if path_bucket != bucket.as_str() {
        return Err(PathError::BucketMismatch {
            bucket: bucket.as_str().to_owned(),
            path_bucket: truncate_for_message(path_bucket),
        });
    }
    let owner = OwnerId::new(segments.get(1).copied().unwrap_or_default())?;
    let rest: Vec<String> = segments.iter().skip(2).map(|s| (*s).to_owned()).collect();
    if directory {
        if !ends_with_slash {
            return Err(PathError::NotADirectory);
        }
    } else {
        if ends_with_slash {
            return Err(PathError::NotAFile);
        }
        if rest.is_empty() {
            return Err(PathError::NoFileName);
        }
    }
    Ok(Parsed {
        normalized,
        bucket,
        owner,
        rest,
    })
}

/// The logical path of a file: `/<bucket>/<owner>/<dir…>/<name>`, NFC, every rule checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(into = "String")]
pub struct FilePath {
    path: String,
    bucket: BucketKind,
    owner: OwnerId,
    /// Byte offset of the name (after the last `/`).
    name_at: usize,
}

impl From<FilePath> for String {
    fn from(value: FilePath) -> Self {
        value.path
    }
}

impl FilePath {
    /// Parses a file path that must live in `bucket`.
    ///
    /// # Errors
    /// [`PathError`] naming the first rule broken.
    pub fn parse(bucket: BucketKind, raw: &str) -> Result<Self, PathError> {
        let parsed = parse(bucket, raw, false)?;
        let name_at = parsed.normalized.rfind('/').map_or(0, |i| i + 1);
        Ok(Self {
            path: parsed.normalized,
            bucket: parsed.bucket,
            owner: parsed.owner,
            name_at,
        })
    }

    /// Parses the textual bucket and path of a request together: an unknown bucket is
    /// `bucket_not_found`, anything wrong with the path `invalid_path`.
    ///
    /// # Errors
    /// [`StorageError::BucketNotFound`] or [`StorageError::InvalidPath`].
    pub fn parse_request(bucket: &str, raw: &str) -> Result<Self, StorageError> {
        let bucket = BucketKind::parse(bucket)?;
        Ok(Self::parse(bucket, raw)?)
    }

    pub fn as_str(&self) -> &str {
        &self.path
    }

    pub fn bucket(&self) -> BucketKind {
        self.bucket
    }

    pub fn owner(&self) -> &OwnerId {
        &self.owner
    }

    /// The last segment: the file's name.
    pub fn name(&self) -> &str {
        &self.path[self.name_at..]
    }

    /// The directory holding the file (ends with `/`).
    pub fn parent(&self) -> DirPath {
        DirPath {
            path: self.path[..self.name_at].to_owned(),
            bucket: self.bucket,
            owner: self.owner.clone(),
        }
    }
}

impl fmt::Display for FilePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)
    }
}

/// The logical path of a directory: `/<bucket>/<owner>/` or `/<bucket>/<owner>/<dir…>/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub struct DirPath {
    path: String,
    bucket: BucketKind,
    owner: OwnerId,
}

impl From<DirPath> for String {
    fn from(value: DirPath) -> Self {
        value.path
    }
}

impl DirPath {
    /// Parses a directory path (must end with `/`) that must live in `bucket`.
    ///
    /// # Errors
    /// [`PathError`] naming the first rule broken.
    pub fn parse(bucket: BucketKind, raw: &str) -> Result<Self, PathError> {
        let parsed = parse(bucket, raw, true)?;
        Ok(Self {
            path: parsed.normalized,
            bucket: parsed.bucket,
            owner: parsed.owner,
        })
    }

    /// As [`FilePath::parse_request`], for a directory.
    ///
    /// # Errors
    /// [`StorageError::BucketNotFound`] or [`StorageError::InvalidPath`].
    pub fn parse_request(bucket: &str, raw: &str) -> Result<Self, StorageError> {
        let bucket = BucketKind::parse(bucket)?;
        Ok(Self::parse(bucket, raw)?)
    }

    pub fn as_str(&self) -> &str {
        &self.path
    }

    pub fn bucket(&self) -> BucketKind {
        self.bucket
    }

    pub fn owner(&self) -> &OwnerId {
        &self.owner
    }

    /// True when `file` lies somewhere under this directory.
    pub fn contains(&self, file: &FilePath) -> bool {
        file.as_str().starts_with(&self.path)
    }

    /// The path of a direct child entry named `name` (a file when `directory` is false).
    pub fn child(&self, name: &str, directory: bool) -> String {
        if directory {
            format!("{}{name}/", self.path)
        } else {
            format!("{}{name}", self.path)
        }
    }
}

impl fmt::Display for DirPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(raw: &str) -> Result<FilePath, PathError> {
        FilePath::parse(BucketKind::Projects, raw)
    }

    #[test]
    fn accepts_ordinary_paths() {
        for raw in [
            "/projects/5678/docs/spec.pdf",
            "/projects/5678/a",
            "/projects/a_b-C9/x y/z.tar.gz",
            "/projects/5678/.hidden",
            "/projects/5678/...",
            "/projects/5678/na\u{ef}ve/\u{65e5}\u{672c}.txt",
        ] {
            let p = file(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(p.as_str(), raw);
        }
        let p = file("/projects/5678/docs/spec.pdf").unwrap();
        assert_eq!(p.bucket(), BucketKind::Projects);
        assert_eq!(p.owner().as_str(), "5678");
        assert_eq!(p.name(), "spec.pdf");
        assert_eq!(p.parent().as_str(), "/projects/5678/docs/");
        assert_eq!(
            file("/projects/5678/a").unwrap().parent().as_str(),
            "/projects/5678/"
        );
    }

    #[test]
    fn refuses_each_broken_rule() {
        let cases: &[(&str, PathError)] = &[
            ("projects/5678/a", PathError::NotAbsolute),
            ("", PathError::NotAbsolute),
            ("/projects/5678//a", PathError::EmptySegment),
            ("//projects/5678/a", PathError::EmptySegment),
            ("/projects/5678/../a", PathError::DotSegment),
            ("/projects/5678/./a", PathError::DotSegment),
            ("/projects/5678/a/..", PathError::DotSegment),
            ("/projects/5678/a\\b", PathError::Backslash),
            ("/projects/5678/a\u{0}b", PathError::ControlCharacter),
            ("/projects/5678/a\nb", PathError::ControlCharacter),
            ("/projects/5678/a\u{7f}", PathError::ControlCharacter),
            ("/projects/5678/a\u{85}", PathError::ControlCharacter),
            ("/projects/56.78/a", PathError::InvalidOwner),
            ("/projects/56 78/a", PathError::InvalidOwner),
            ("/projects/5678", PathError::NoFileName),
            ("/projects/5678/", PathError::NotAFile),
            ("/projects/5678/docs/", PathError::NotAFile),
            ("/projects", PathError::InvalidOwner),
        ];
        for (raw, expected) in cases {
            assert_eq!(file(raw).as_ref().err(), Some(expected), "{raw:?}");
        }
    }

    #[test]
    fn bucket_must_match_the_first_segment() {
        assert_eq!(
            file("/users/5678/a"),
            Err(PathError::BucketMismatch {
                bucket: "projects".into(),
                path_bucket: "users".into()
            })
        );
        assert!(matches!(
            FilePath::parse_request("projects", "/users/1/a"),
            Err(StorageError::InvalidPath(_))
        ));
        assert!(matches!(
            FilePath::parse_request("nope", "/nope/1/a"),
            Err(StorageError::BucketNotFound(_))
        ));
    }

    #[test]
    fn nfd_and_nfc_spellings_are_one_path() {
        let nfc = file("/projects/1/caf\u{e9}.txt").unwrap();
        let nfd = file("/projects/1/cafe\u{301}.txt").unwrap();
        assert_eq!(nfc, nfd);
        assert_eq!(nfd.as_str(), "/projects/1/caf\u{e9}.txt");
        assert_eq!(nfd.name(), "caf\u{e9}.txt");
    }

    #[test]
    fn segment_limit_is_255_bytes() {
        let ok = format!("/projects/1/{}", "a".repeat(255));
        let too_long = format!("/projects/1/{}", "a".repeat(256));
        assert!(file(&ok).is_ok());
        assert_eq!(file(&too_long), Err(PathError::SegmentTooLong { max: 255 }));
        // Counted in bytes, not characters: 128 two-byte characters are 256 bytes.
        let multibyte = format!("/projects/1/{}", "\u{e9}".repeat(128));
        assert_eq!(
            file(&multibyte),
            Err(PathError::SegmentTooLong { max: 255 })
        );
        // Owner segments obey the same limit.
        assert_eq!(
            file(&format!("/projects/{}/a", "o".repeat(256))),
            Err(PathError::SegmentTooLong { max: 255 })
        );
    }

    #[test]
    fn path_limit_is_1024_bytes() {
        let prefix = "/projects/1/"; // 12 bytes
        let mut exact = String::from(prefix);
        while exact.len() < 1024 {
            let room = 1024 - exact.len();
            if room > 201 {
                exact.push_str(&"d".repeat(200));
                exact.push('/');
            } else {
                exact.push_str(&"f".repeat(room));
            }
        }
        assert_eq!(exact.len(), 1024);
        assert!(file(&exact).is_ok());
        let over = format!("{exact}g");
        assert_eq!(over.len(), 1025);
        assert_eq!(file(&over), Err(PathError::TooLong { max: 1024 }));
    }

    #[test]
    fn limits_apply_to_the_nfc_form() {
        // 'e' + combining acute is 3 bytes in NFD, 2 in NFC: 85 of them are 255 bytes in NFD
        // but 170 in NFC, so the NFC form is what gets measured.
        let nfd_segment = "e\u{301}".repeat(85);
        assert_eq!(nfd_segment.len(), 255);
        assert!(file(&format!("/projects/1/{nfd_segment}")).is_ok());
        let nfd_long = "e\u{301}".repeat(100); // 300 bytes NFD, 200 NFC
        assert!(file(&format!("/projects/1/{nfd_long}")).is_ok());
    }

    #[test]
    fn directories_end_with_a_slash() {
        let root = DirPath::parse(BucketKind::Projects, "/projects/5678/").unwrap();
        assert_eq!(root.owner().as_str(), "5678");
        let docs = DirPath::parse(BucketKind::Projects, "/projects/5678/docs/").unwrap();
        assert!(docs.contains(&file("/projects/5678/docs/a/b.pdf").unwrap()));
        assert!(!docs.contains(&file("/projects/5678/docsx/b.pdf").unwrap()));
        assert_eq!(docs.child("a", true), "/projects/5678/docs/a/");
        assert_eq!(
            DirPath::parse(BucketKind::Projects, "/projects/5678/docs"),
            Err(PathError::NotADirectory)
        );
        assert_eq!(
            DirPath::parse(BucketKind::Projects, "/projects/5678//"),
            Err(PathError::EmptySegment)
        );
        assert_eq!(
            DirPath::parse(BucketKind::Projects, "/projects/"),
            Err(PathError::InvalidOwner)
        );
    }

    #[test]
    fn bucket_names() {
        for b in BucketKind::ALL {
            assert_eq!(BucketKind::parse(b.as_str()).unwrap(), b);
        }
        assert!(matches!(
            BucketKind::parse("Users"),
            Err(StorageError::BucketNotFound(_))
        ));
    }
}
