DROP INDEX files_checkout_file_idx;
ALTER TABLE trash_versions DROP COLUMN pinned;
ALTER TABLE versions DROP COLUMN pinned;
