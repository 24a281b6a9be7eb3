-- A pinned version carries its label; NULL when not pinned (see the PostgreSQL migration of
-- the same name).
ALTER TABLE versions ADD COLUMN pinned TEXT CHECK (pinned <> '');

-- The retention step reads the checkout tickets naming a file.
CREATE INDEX files_checkout_file_idx ON files (checkout_file_id)
    WHERE checkout_file_id IS NOT NULL;
