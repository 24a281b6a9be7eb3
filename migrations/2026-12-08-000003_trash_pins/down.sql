ALTER TABLE trash_versions DROP COLUMN pinned;
