ALTER TABLE files DROP COLUMN checkout_version;
ALTER TABLE files DROP COLUMN checkout_path;
ALTER TABLE files DROP COLUMN checkout_file_id;
