-- Repeated refusals counted in fixed windows (see the PostgreSQL migration of the same name).
-- The unique index is not partial here: an upsert on a partial index must repeat its WHERE in
-- the conflict target, which diesel does not write for SQLite; the NULL window of every other
-- event never conflicts.
ALTER TABLE audit_events ADD COLUMN refusal_window INTEGER;

CREATE UNIQUE INDEX audit_events_refusal_window_idx
    ON audit_events (actor, action, bucket, path, refusal_window);
