-- Delivery state per sink; see the PostgreSQL migration of the same name.
ALTER TABLE audit_events ADD COLUMN acked_sinks TEXT;
