DROP INDEX upload_reservations_open_by_user_idx;
ALTER TABLE audit_events DROP COLUMN last_repeat_at, DROP COLUMN repeat_count;
