-- Metadata of storage-service on SQLite: the same tables and columns as the PostgreSQL schema
-- (`migrations/` at the repository root), so that both adapters share their rows.
--
-- Encodings (see storage_diesel_common::sql_types): ids are hyphenated lower-case UUID text
-- (which sorts as the UUID's bytes); times are INTEGER microseconds since the Unix epoch, UTC
-- (which sort as time does); tags are a JSON object as TEXT. Paths use SQLite's default BINARY
-- collation: byte order of the UTF-8 text, the order the listing promises, so that a prefix is
-- an index range (`path >= '/a/' AND path < '/a0'`). STRICT tables refuse a value of the wrong
-- type.

CREATE TABLE files (
    id                TEXT PRIMARY KEY NOT NULL,
    bucket            TEXT NOT NULL CHECK (bucket IN ('users', 'companies', 'projects')),
    path              TEXT NOT NULL,
    created_by        TEXT NOT NULL,
    version           INTEGER NOT NULL CHECK (version >= 1),
    validated_version INTEGER CHECK (validated_version >= 1 AND validated_version <= version),
    status            TEXT NOT NULL
        CHECK (status IN ('draft', 'pending_validation', 'validated', 'archived')),
    tags              TEXT NOT NULL DEFAULT '{}'
        CHECK (json_valid(tags) AND json_type(tags) = 'object'),
    size              INTEGER NOT NULL CHECK (size >= 0),
    content_type      TEXT NOT NULL,
    sha256            TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    -- Also the index of directory listings: each probe of the loose index scan is one lookup.
    CONSTRAINT files_bucket_path_key UNIQUE (bucket, path)
) STRICT;

CREATE TABLE versions (
    id             TEXT PRIMARY KEY NOT NULL,
    file_id        TEXT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    number         INTEGER NOT NULL CHECK (number >= 1),
    size           INTEGER NOT NULL CHECK (size >= 0),
    sha256         TEXT NOT NULL,
    content_type   TEXT NOT NULL,
    author         TEXT NOT NULL,
    message        TEXT,
    status         TEXT NOT NULL
        CHECK (status IN ('draft', 'pending_validation', 'validated', 'rejected')),
    reviewed_by    TEXT,
    reviewed_at    INTEGER,
    review_comment TEXT,
    created_at     INTEGER NOT NULL,
    object_key     TEXT NOT NULL,
    CONSTRAINT versions_file_number_key UNIQUE (file_id, number)
) STRICT;

-- At most one row per file. A row whose `expires_at` has passed is a free lock: every read
-- filters on `expires_at > now`, and the next taker overwrites it. `bucket` and `path` copy
-- the file's (paths never change) so that the locks under a prefix are one index range.
CREATE TABLE locks (
    file_id      TEXT PRIMARY KEY NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    bucket       TEXT NOT NULL,
    path         TEXT NOT NULL,
    holder       TEXT NOT NULL,
    acquired_at  INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    base_version INTEGER NOT NULL CHECK (base_version >= 1)
) STRICT;
CREATE INDEX locks_bucket_path_idx ON locks (bucket, path);

-- Open (completed_version IS NULL) or completed reservations. Abandoned and reclaimed ones are
-- deleted, their object queued in pending_deletions.
CREATE TABLE upload_reservations (
    id                TEXT PRIMARY KEY NOT NULL,
    kind              TEXT NOT NULL CHECK (kind IN ('presigned', 'proxy', 'copy')),
    bucket            TEXT NOT NULL,
    path              TEXT NOT NULL,
    created_by        TEXT NOT NULL,
    version_id        TEXT NOT NULL UNIQUE,
    object_key        TEXT NOT NULL,
    content_type      TEXT NOT NULL,
    expected_size     INTEGER CHECK (expected_size >= 0),
    expected_sha256   TEXT,
    max_bytes         INTEGER NOT NULL CHECK (max_bytes >= 0),
    expires_at        INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    completed_version TEXT,
    completed_at      INTEGER,
    CHECK ((completed_version IS NULL) = (completed_at IS NULL))
) STRICT;
CREATE INDEX upload_reservations_open_expiry_idx
    ON upload_reservations (expires_at) WHERE completed_version IS NULL;
CREATE INDEX upload_reservations_completed_idx
    ON upload_reservations (completed_at) WHERE completed_version IS NOT NULL;

-- The audit trail outlives the files it mentions: no foreign key to files.
CREATE TABLE audit_events (
    id         TEXT PRIMARY KEY NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    bucket     TEXT NOT NULL,
    path       TEXT NOT NULL,
    file_id    TEXT,
    version    INTEGER CHECK (version >= 1),
    outcome    TEXT NOT NULL CHECK (outcome IN ('success', 'denied')),
    request_id TEXT NOT NULL,
    detail     TEXT,
    at         INTEGER NOT NULL
) STRICT;
-- A file's events, newest first (keyset on (at, id)).
CREATE INDEX audit_events_file_idx ON audit_events (bucket, path, at DESC, id DESC);
-- A subtree's events, newest first: walk the bucket's events by time, filtered by prefix.
CREATE INDEX audit_events_bucket_at_idx ON audit_events (bucket, at DESC, id DESC);

-- Objects whose deletion is owed. A janitor claims a row by setting `leased_until`; the row
-- stays until the object is confirmed gone (forget), and a lapsed lease makes it claimable again.
-- (SQLite sorts NULL first in ascending order, as the claim wants.)
CREATE TABLE pending_deletions (
    id           TEXT PRIMARY KEY NOT NULL,
    bucket       TEXT NOT NULL CHECK (bucket IN ('users', 'companies', 'projects')),
    object_key   TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    leased_until INTEGER,
    created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX pending_deletions_claim_idx ON pending_deletions (leased_until, created_at);
