-- The checkout ticket of a workspace copy (see the PostgreSQL migration of the same name):
-- the file it was checked out from (id, path) and the version the copy holds; all three or
-- none. `pending_deletions.leased_until` also defers a deletion (not claimed before then).
ALTER TABLE files ADD COLUMN checkout_file_id TEXT;
ALTER TABLE files ADD COLUMN checkout_path TEXT
    CHECK ((checkout_path IS NULL) = (checkout_file_id IS NULL));
ALTER TABLE files ADD COLUMN checkout_version INTEGER
    CHECK (checkout_version >= 1 AND (checkout_version IS NULL) = (checkout_file_id IS NULL));
