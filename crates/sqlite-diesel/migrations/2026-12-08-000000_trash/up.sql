-- The trash: trashed files and their versions, row for row as they were in `files` and
-- `versions`, and the trash entries (see the PostgreSQL migration of the same name and
-- docs/decisions.md).
CREATE TABLE trash_files (
    id                TEXT PRIMARY KEY NOT NULL,
    bucket            TEXT NOT NULL CHECK (bucket IN ('users', 'companies', 'projects')),
    path              TEXT NOT NULL,
    created_by        TEXT NOT NULL,
    version           INTEGER NOT NULL CHECK (version >= 1),
    validated_version INTEGER CHECK (validated_version >= 1 AND validated_version <= version),
    status            TEXT NOT NULL
        CHECK (status IN ('draft', 'pending_validation', 'validated', 'archived')),
    tags              TEXT NOT NULL CHECK (json_valid(tags) AND json_type(tags) = 'object'),
    size              INTEGER NOT NULL CHECK (size >= 0),
    content_type      TEXT NOT NULL,
    sha256            TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    checkout_file_id  TEXT,
    checkout_path     TEXT,
    checkout_version  INTEGER CHECK (checkout_version >= 1)
) STRICT;

CREATE TABLE trash_versions (
    id             TEXT PRIMARY KEY NOT NULL,
    file_id        TEXT NOT NULL REFERENCES trash_files (id) ON DELETE CASCADE,
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
    restored_from  INTEGER CHECK (restored_from >= 1)
) STRICT;
CREATE INDEX trash_versions_file_idx ON trash_versions (file_id);

CREATE TABLE trash (
    id            TEXT PRIMARY KEY NOT NULL,
    file_id       TEXT NOT NULL UNIQUE REFERENCES trash_files (id) ON DELETE CASCADE,
    bucket        TEXT NOT NULL CHECK (bucket IN ('users', 'companies', 'projects')),
    path          TEXT NOT NULL,
    version_count INTEGER NOT NULL CHECK (version_count >= 0),
    trashed_by    TEXT NOT NULL,
    trashed_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX trash_bucket_at_idx ON trash (bucket, trashed_at DESC, id DESC);
CREATE INDEX trash_trashed_at_idx ON trash (trashed_at);
