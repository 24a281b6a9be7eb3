DROP INDEX audit_events_refusal_window_idx;
ALTER TABLE audit_events DROP COLUMN refusal_window;
