-- As the PostgreSQL down migration: delivered events come back with a NULL state.
ALTER TABLE audit_events ADD COLUMN delivery TEXT CHECK (delivery IN ('pending', 'delivered', 'dead'));
ALTER TABLE audit_events ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0);
ALTER TABLE audit_events ADD COLUMN next_attempt_at INTEGER;
ALTER TABLE audit_events ADD COLUMN leased_until INTEGER;
ALTER TABLE audit_events ADD COLUMN last_error TEXT;
ALTER TABLE audit_events ADD COLUMN acked_sinks TEXT;
UPDATE audit_events SET
    delivery = (SELECT o.delivery FROM event_outbox o WHERE o.event_id = audit_events.id),
    attempts = coalesce((SELECT o.attempts FROM event_outbox o WHERE o.event_id = audit_events.id), 0),
    next_attempt_at = (SELECT o.next_attempt_at FROM event_outbox o WHERE o.event_id = audit_events.id),
    leased_until = (SELECT o.leased_until FROM event_outbox o WHERE o.event_id = audit_events.id),
    last_error = (SELECT o.last_error FROM event_outbox o WHERE o.event_id = audit_events.id),
    acked_sinks = (SELECT o.acked_sinks FROM event_outbox o WHERE o.event_id = audit_events.id);
CREATE INDEX audit_events_outbox_idx ON audit_events (next_attempt_at) WHERE delivery = 'pending';
CREATE INDEX audit_events_dead_idx ON audit_events (at) WHERE delivery = 'dead';
CREATE INDEX audit_events_pending_chain_idx ON audit_events (file_id, seq)
    WHERE delivery = 'pending';
DROP TABLE event_outbox;
