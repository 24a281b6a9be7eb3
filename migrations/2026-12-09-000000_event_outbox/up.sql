-- The outbox leaves the audit trail (issue 17, delivery cost): an audited change that publishes
-- writes its event in `audit_events` (append-only from now on: no row of it is ever updated
-- by delivery) and a row here in the same transaction; the dispatcher claims and settles the
-- rows here, and deletes each one once every sink took its event. Before, a claim and a
-- settlement updated the audit row itself, and since `delivery` is in partial-index
-- predicates, every settlement was a non-HOT update that wrote a new entry into every index of
-- `audit_events` (its chain index included, which the next change of the file then walks
-- past); this table holds only the events still to deliver and the dead letters.
--
-- `file_id` and `seq` are the event's (its file and position in the file's chain), copied so
-- that a claim finds a file's first pending event without reading the audit trail.
-- `delivery` is 'pending' or 'dead' (a delivered event has no row); `next_attempt_at` is when
-- a pending event is due (NULL once dead); `leased_until` the claim's lease; `acked_sinks` the
-- sinks that acknowledged it (a JSON array of names, NULL for none).
CREATE TABLE event_outbox (
    event_id        uuid PRIMARY KEY,
    file_id         uuid,
    seq             bigint,
    delivery        text NOT NULL CHECK (delivery IN ('pending', 'dead')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz,
    leased_until    timestamptz,
    last_error      text,
    acked_sinks     text
);
-- The pending events by due time (the claim's heads).
CREATE INDEX event_outbox_due_idx ON event_outbox (next_attempt_at) WHERE delivery = 'pending';
-- A file's pending events in chain order (is an earlier one pending? the run after a head).
CREATE INDEX event_outbox_chain_idx ON event_outbox (file_id, seq) WHERE delivery = 'pending';

INSERT INTO event_outbox
    (event_id, file_id, seq, delivery, attempts, next_attempt_at, leased_until, last_error,
     acked_sinks)
SELECT id, file_id, seq, delivery, attempts, next_attempt_at, leased_until, last_error, acked_sinks
FROM audit_events WHERE delivery IN ('pending', 'dead');

DROP INDEX audit_events_pending_chain_idx;
DROP INDEX audit_events_dead_idx;
DROP INDEX audit_events_outbox_idx;
ALTER TABLE audit_events
    DROP COLUMN acked_sinks,
    DROP COLUMN last_error,
    DROP COLUMN leased_until,
    DROP COLUMN next_attempt_at,
    DROP COLUMN attempts,
    DROP COLUMN delivery;
