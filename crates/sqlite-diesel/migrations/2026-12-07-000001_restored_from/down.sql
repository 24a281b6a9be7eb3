ALTER TABLE versions DROP COLUMN restored_from;
