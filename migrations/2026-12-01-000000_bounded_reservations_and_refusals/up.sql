-- A refusal repeated by the same actor, for the same action on the same path, within the
-- window of its first occurrence (`AUDIT_DENIED_WINDOW_SECONDS`) is counted on that event
-- instead of written again: `repeat_count` refusals in all, the last at `last_repeat_at`
-- (NULL until the first repeat). Every other event keeps 1.
ALTER TABLE audit_events
    ADD COLUMN repeat_count   integer NOT NULL DEFAULT 1 CHECK (repeat_count >= 1),
    ADD COLUMN last_repeat_at timestamptz;

-- A user's open presigned uploads, counted against `MAX_OPEN_UPLOADS_PER_USER` when another
-- is reserved: one range of this index.
CREATE INDEX upload_reservations_open_by_user_idx
    ON upload_reservations (created_by, expires_at)
    WHERE completed_version IS NULL AND kind = 'presigned';
