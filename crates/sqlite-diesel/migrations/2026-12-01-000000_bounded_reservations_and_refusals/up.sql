-- Repeated refusals counted on one audit event, and the index counting a user's open
-- presigned uploads (see the PostgreSQL migration of the same name).
ALTER TABLE audit_events ADD COLUMN repeat_count INTEGER NOT NULL DEFAULT 1
    CHECK (repeat_count >= 1);
ALTER TABLE audit_events ADD COLUMN last_repeat_at INTEGER;

CREATE INDEX upload_reservations_open_by_user_idx
    ON upload_reservations (created_by, expires_at)
    WHERE completed_version IS NULL AND kind = 'presigned';
