-- Back to the delivery state in the audit rows. Delivered events have no outbox row: they
-- come back with a NULL state (like events that never published), not 'delivered'.
ALTER TABLE audit_events
    ADD COLUMN delivery        text CHECK (delivery IN ('pending', 'delivered', 'dead')),
    ADD COLUMN attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    ADD COLUMN next_attempt_at timestamptz,
    ADD COLUMN leased_until    timestamptz,
    ADD COLUMN last_error      text,
    ADD COLUMN acked_sinks     text;
UPDATE audit_events a SET delivery = o.delivery, attempts = o.attempts,
    next_attempt_at = o.next_attempt_at, leased_until = o.leased_until,
    last_error = o.last_error, acked_sinks = o.acked_sinks
FROM event_outbox o WHERE o.event_id = a.id;
CREATE INDEX audit_events_outbox_idx ON audit_events (next_attempt_at) WHERE delivery = 'pending';
CREATE INDEX audit_events_dead_idx ON audit_events (at) WHERE delivery = 'dead';
CREATE INDEX audit_events_pending_chain_idx ON audit_events (file_id, seq)
    WHERE delivery = 'pending';
DROP TABLE event_outbox;
