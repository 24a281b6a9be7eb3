DROP TABLE trash;
DROP TABLE trash_versions;
DROP TABLE trash_files;
