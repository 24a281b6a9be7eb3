ALTER TABLE audit_events DROP COLUMN acked_sinks;
