-- The trash (issue 16): a trashed file leaves `files` and `versions` for `trash_files` and
-- `trash_versions`, row for row (same columns, ids, numbers, object keys, tags, review state),
-- so that no read of the live namespace (listings, `/metadata`, `/versions/{id}`, the review
-- queue, locks) can see it and its path is free at once; a restore moves the rows back. The
-- `trash` row is the entry: its `id` is the `trash_id` (a file trashed, restored and trashed
-- again gets a new one), `path` the path the file had, `version_count` the versions it took
-- along. The purge date is not stored: it is `trashed_at` + `TRASH_RETENTION_DAYS` as
-- configured now. See docs/decisions.md.
CREATE TABLE trash_files (
    id                uuid PRIMARY KEY,
    bucket            text NOT NULL CHECK (bucket IN ('users', 'companies', 'projects')),
    path              text COLLATE "C" NOT NULL,
    created_by        text NOT NULL,
    version           integer NOT NULL CHECK (version >= 1),
    validated_version integer CHECK (validated_version >= 1 AND validated_version <= version),
    status            text NOT NULL
        CHECK (status IN ('draft', 'pending_validation', 'validated', 'archived')),
    tags              jsonb NOT NULL CHECK (jsonb_typeof(tags) = 'object'),
    size              bigint NOT NULL CHECK (size >= 0),
    content_type      text NOT NULL,
    sha256            text NOT NULL,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    checkout_file_id  uuid,
    checkout_path     text COLLATE "C",
    checkout_version  integer CHECK (checkout_version >= 1)
);

CREATE TABLE trash_versions (
    id             uuid PRIMARY KEY,
    file_id        uuid NOT NULL REFERENCES trash_files (id) ON DELETE CASCADE,
    number         integer NOT NULL CHECK (number >= 1),
    size           bigint NOT NULL CHECK (size >= 0),
    sha256         text NOT NULL,
    content_type   text NOT NULL,
    author         text NOT NULL,
    message        text,
    status         text NOT NULL
        CHECK (status IN ('draft', 'pending_validation', 'validated', 'rejected')),
    reviewed_by    text,
    reviewed_at    timestamptz,
    review_comment text,
    created_at     timestamptz NOT NULL,
    object_key     text NOT NULL,
    restored_from  integer CHECK (restored_from >= 1)
);
CREATE INDEX trash_versions_file_idx ON trash_versions (file_id);

CREATE TABLE trash (
    id            uuid PRIMARY KEY,
    file_id       uuid NOT NULL UNIQUE REFERENCES trash_files (id) ON DELETE CASCADE,
    bucket        text NOT NULL CHECK (bucket IN ('users', 'companies', 'projects')),
    path          text COLLATE "C" NOT NULL,
    version_count integer NOT NULL CHECK (version_count >= 0),
    trashed_by    text NOT NULL,
    trashed_at    timestamptz NOT NULL
);
-- A directory's trash, newest first (keyset on (trashed_at, id)), filtered by path prefix.
CREATE INDEX trash_bucket_at_idx ON trash (bucket, trashed_at DESC, id DESC);
-- The janitor's purge: the entries trashed before the cutoff, oldest first.
CREATE INDEX trash_trashed_at_idx ON trash (trashed_at);
