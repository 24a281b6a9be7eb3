-- Events and the tamper-evident audit trail (issue 17); see the PostgreSQL migration of the
-- same name. Times are INTEGER microseconds, as everywhere in this schema.
ALTER TABLE audit_events ADD COLUMN event_type TEXT;
ALTER TABLE audit_events ADD COLUMN data TEXT;
ALTER TABLE audit_events ADD COLUMN seq INTEGER CHECK (seq >= 1);
ALTER TABLE audit_events ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_events ADD COLUMN hash TEXT;
ALTER TABLE audit_events ADD COLUMN delivery TEXT CHECK (delivery IN ('pending', 'delivered', 'dead'));
ALTER TABLE audit_events ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0);
ALTER TABLE audit_events ADD COLUMN next_attempt_at INTEGER;
ALTER TABLE audit_events ADD COLUMN leased_until INTEGER;
ALTER TABLE audit_events ADD COLUMN last_error TEXT;

CREATE UNIQUE INDEX audit_events_chain_idx ON audit_events (file_id, seq) WHERE seq IS NOT NULL;
CREATE INDEX audit_events_outbox_idx ON audit_events (next_attempt_at) WHERE delivery = 'pending';
CREATE INDEX audit_events_dead_idx ON audit_events (at) WHERE delivery = 'dead';
