//! Rows and their conversion to the domain's values: shared with the SQLite adapter
//! (`storage_diesel_common::rows`); only the live-lock join is PostgreSQL's.

pub(crate) use storage_diesel_common::rows::*;

/// The `FROM` of a [`FileRow`]: only a live lock joins.
pub(crate) const FILE_FROM: &str =
    "files f LEFT JOIN locks l ON l.file_id = f.id AND l.expires_at > now()";
