-- A trashed version keeps its pin (see the PostgreSQL migration of the same name).
ALTER TABLE trash_versions ADD COLUMN pinned TEXT CHECK (pinned <> '');
