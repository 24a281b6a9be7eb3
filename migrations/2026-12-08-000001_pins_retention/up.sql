-- A pinned version (`POST /versions/{id}/pin`, issue 16) carries its label; NULL when not
-- pinned. The retention rules never prune a pinned version. The label's rule (1 to 128 bytes,
-- no control character) is the domain's (rules::retention::check_pin_label); the CHECK only
-- refuses an empty one.
ALTER TABLE versions ADD COLUMN pinned text CHECK (pinned <> '');

-- The retention step reads the checkout tickets naming a file (their base versions are kept).
CREATE INDEX files_checkout_file_idx ON files (checkout_file_id)
    WHERE checkout_file_id IS NOT NULL;
