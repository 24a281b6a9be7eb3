-- The outbox leaves the audit trail (issue 17, delivery cost): as migrations/
-- 2026-12-09-000000_event_outbox/up.sql (PostgreSQL), which says why. Identifiers TEXT,
-- times INTEGER microseconds, as in every table of this store.
CREATE TABLE event_outbox (
    event_id        TEXT PRIMARY KEY NOT NULL,
    file_id         TEXT,
    seq             INTEGER,
    delivery        TEXT NOT NULL CHECK (delivery IN ('pending', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at INTEGER,
    leased_until    INTEGER,
    last_error      TEXT,
    acked_sinks     TEXT
) STRICT;
CREATE INDEX event_outbox_due_idx ON event_outbox (next_attempt_at) WHERE delivery = 'pending';
CREATE INDEX event_outbox_chain_idx ON event_outbox (file_id, seq) WHERE delivery = 'pending';

INSERT INTO event_outbox
    (event_id, file_id, seq, delivery, attempts, next_attempt_at, leased_until, last_error,
     acked_sinks)
SELECT id, file_id, seq, delivery, attempts, next_attempt_at, leased_until, last_error, acked_sinks
FROM audit_events WHERE delivery IN ('pending', 'dead');

DROP INDEX audit_events_pending_chain_idx;
DROP INDEX audit_events_dead_idx;
DROP INDEX audit_events_outbox_idx;
ALTER TABLE audit_events DROP COLUMN acked_sinks;
ALTER TABLE audit_events DROP COLUMN last_error;
ALTER TABLE audit_events DROP COLUMN leased_until;
ALTER TABLE audit_events DROP COLUMN next_attempt_at;
ALTER TABLE audit_events DROP COLUMN attempts;
ALTER TABLE audit_events DROP COLUMN delivery;
