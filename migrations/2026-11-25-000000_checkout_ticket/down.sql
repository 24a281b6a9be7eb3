ALTER TABLE files
    DROP CONSTRAINT files_checkout_whole,
    DROP COLUMN checkout_version,
    DROP COLUMN checkout_path,
    DROP COLUMN checkout_file_id;
