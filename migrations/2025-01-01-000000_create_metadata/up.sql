-- Metadata of storage-service: files, versions, locks, upload reservations, audit trail and
-- the queue of objects whose deletion is owed.
--
-- Every path column is `COLLATE "C"`: paths compare byte by byte (UTF-8), which is the order
-- the listing promises, and lets a prefix become a range (`path >= '/a/' AND path < '/a0'`)
-- that a b-tree index answers without scanning.

CREATE TABLE files (
    id                uuid PRIMARY KEY,
    bucket            text NOT NULL CHECK (bucket IN ('users', 'companies', 'projects')),
    path              text COLLATE "C" NOT NULL,
    created_by        text NOT NULL,
    version           integer NOT NULL CHECK (version >= 1),
    validated_version integer CHECK (validated_version >= 1 AND validated_version <= version),
    status            text NOT NULL
        CHECK (status IN ('draft', 'pending_validation', 'validated', 'archived')),
    tags              jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(tags) = 'object'),
    size              bigint NOT NULL CHECK (size >= 0),
    content_type      text NOT NULL,
    sha256            text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    -- Also the index of directory listings: each probe of the loose index scan is one lookup.
    CONSTRAINT files_bucket_path_key UNIQUE (bucket, path)
);

CREATE TABLE versions (
    id             uuid PRIMARY KEY,
    file_id        uuid NOT NULL REFERENCES files (id) ON DELETE CASCADE,
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
    created_at     timestamptz NOT NULL DEFAULT now(),
    object_key     text NOT NULL,
    CONSTRAINT versions_file_number_key UNIQUE (file_id, number)
);

-- At most one row per file. A row whose `expires_at` has passed is a free lock: every read
-- filters on `expires_at > now()`, and the next taker overwrites it. `bucket` and `path` copy
-- the file's (paths never change) so that the locks under a prefix are one index range.
CREATE TABLE locks (
    file_id      uuid PRIMARY KEY REFERENCES files (id) ON DELETE CASCADE,
    bucket       text NOT NULL,
    path         text COLLATE "C" NOT NULL,
    holder       text NOT NULL,
    acquired_at  timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    base_version integer NOT NULL CHECK (base_version >= 1)
);
CREATE INDEX locks_bucket_path_idx ON locks (bucket, path);

-- Open (completed_version IS NULL) or completed reservations. Abandoned and reclaimed ones are
-- deleted, their object queued in pending_deletions.
CREATE TABLE upload_reservations (
    id                uuid PRIMARY KEY,
    kind              text NOT NULL CHECK (kind IN ('presigned', 'proxy', 'copy')),
    bucket            text NOT NULL,
    path              text COLLATE "C" NOT NULL,
    created_by        text NOT NULL,
    version_id        uuid NOT NULL UNIQUE,
    object_key        text NOT NULL,
    content_type      text NOT NULL,
    expected_size     bigint CHECK (expected_size >= 0),
    expected_sha256   text,
    max_bytes         bigint NOT NULL CHECK (max_bytes >= 0),
    expires_at        timestamptz NOT NULL,
    created_at        timestamptz NOT NULL,
    completed_version uuid,
    completed_at      timestamptz,
    CHECK ((completed_version IS NULL) = (completed_at IS NULL))
);
CREATE INDEX upload_reservations_open_expiry_idx
    ON upload_reservations (expires_at) WHERE completed_version IS NULL;
CREATE INDEX upload_reservations_completed_idx
    ON upload_reservations (completed_at) WHERE completed_version IS NOT NULL;

-- The audit trail outlives the files it mentions: no foreign key to files.
CREATE TABLE audit_events (
    id         uuid PRIMARY KEY,
    actor      text NOT NULL,
    action     text NOT NULL,
    bucket     text NOT NULL,
    path       text COLLATE "C" NOT NULL,
    file_id    uuid,
    version    integer CHECK (version >= 1),
    outcome    text NOT NULL CHECK (outcome IN ('success', 'denied')),
    request_id text NOT NULL,
    detail     text,
    at         timestamptz NOT NULL DEFAULT now()
);
-- A file's events, newest first (keyset on (at, id)).
CREATE INDEX audit_events_file_idx ON audit_events (bucket, path, at DESC, id DESC);
-- A subtree's events, newest first: walk the bucket's events by time, filtered by prefix.
CREATE INDEX audit_events_bucket_at_idx ON audit_events (bucket, at DESC, id DESC);

-- Objects whose deletion is owed. A janitor claims a row by setting `leased_until`; the row
-- stays until the object is confirmed gone (forget), and a lapsed lease makes it claimable again.
CREATE TABLE pending_deletions (
    id           uuid PRIMARY KEY,
    bucket       text NOT NULL CHECK (bucket IN ('users', 'companies', 'projects')),
    object_key   text NOT NULL,
    attempts     integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    leased_until timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pending_deletions_claim_idx ON pending_deletions (leased_until NULLS FIRST, created_at);
