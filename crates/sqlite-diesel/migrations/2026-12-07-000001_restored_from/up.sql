-- A restored version names the version of the same file whose bytes it holds again (see the
-- PostgreSQL migration of the same name); NULL for every other version.
ALTER TABLE versions ADD COLUMN restored_from INTEGER CHECK (restored_from >= 1);
