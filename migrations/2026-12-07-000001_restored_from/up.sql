-- A restored version (`POST /versions/{id}/restore`, issue 16) names the version of the same
-- file whose bytes it holds again; NULL for every other version. A number, not a reference:
-- versions are never renumbered.
ALTER TABLE versions ADD COLUMN restored_from integer CHECK (restored_from >= 1);
