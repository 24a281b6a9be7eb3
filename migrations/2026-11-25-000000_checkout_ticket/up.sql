-- The checkout ticket lives with the workspace copy a checkout made: the file it was checked
-- out from (its id and path) and the version the copy holds. Nothing that happens to the lock
-- (expiry, another holder, an unlock) can lose or move it; a commit from the copy compares the
-- target's latest version with it. No foreign key: the ticket outlives its source, and a
-- recreated path is another file.
ALTER TABLE files
    ADD COLUMN checkout_file_id uuid,
    ADD COLUMN checkout_path    text COLLATE "C",
    ADD COLUMN checkout_version integer CHECK (checkout_version >= 1),
    ADD CONSTRAINT files_checkout_whole CHECK (
        (checkout_file_id IS NULL) = (checkout_path IS NULL)
        AND (checkout_file_id IS NULL) = (checkout_version IS NULL));

-- `pending_deletions.leased_until` also defers a deletion: a row queued with `leased_until` set
-- (a staging object a presigned URL may still write until its reservation expires, or the key
-- of a copy the store might finish after the service gave up on it) is not claimed before then.
