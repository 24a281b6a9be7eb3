-- Repeated refusals counted in fixed windows (issue 14): a refusal's window
-- (`rules::store::refusal_window`, NULL for every other event) and a unique index on the
-- refusals' (actor, action, bucket, path, window), the conflict target of the one statement
-- that records a refusal or counts it on the event of its window
-- (`INSERT … ON CONFLICT … DO UPDATE`). The refusals recorded before keep NULL.
ALTER TABLE audit_events ADD COLUMN refusal_window bigint;

CREATE UNIQUE INDEX audit_events_refusal_window_idx
    ON audit_events (actor, action, bucket, path, refusal_window)
    WHERE refusal_window IS NOT NULL;
