DROP INDEX files_checkout_file_idx;
ALTER TABLE versions DROP COLUMN pinned;
