-- Events and the tamper-evident audit trail (issue 17). An audited change's audit event is its
-- outbox record: written in the change's transaction with its event type and data, then
-- published by the dispatcher (docs/events.md).
--
-- The chain: each change's event is linked into its file's chain (`seq` 1, 2, … per file_id,
-- `prev_hash` the previous event's `hash`); a refusal is sealed alone (`seq` NULL, `prev_hash`
-- ''). Events recorded before this migration keep NULL and are not verified.
--
-- Delivery: `delivery` is 'pending' until every sink took the event ('delivered') or the
-- dispatcher gave up after EVENTS_MAX_ATTEMPTS ('dead'); NULL for events that publish nothing
-- (refusals, older events). A dispatcher claims a pending event due at `next_attempt_at` by
-- setting `leased_until`.
ALTER TABLE audit_events
    ADD COLUMN event_type      text,
    ADD COLUMN data            text,
    ADD COLUMN seq             bigint CHECK (seq >= 1),
    ADD COLUMN prev_hash       text,
    ADD COLUMN hash            text,
    ADD COLUMN delivery        text CHECK (delivery IN ('pending', 'delivered', 'dead')),
    ADD COLUMN attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    ADD COLUMN next_attempt_at timestamptz,
    ADD COLUMN leased_until    timestamptz,
    ADD COLUMN last_error      text;

-- A file's chain in order; unique, so two links at one position can never both commit.
CREATE UNIQUE INDEX audit_events_chain_idx ON audit_events (file_id, seq) WHERE seq IS NOT NULL;
-- The outbox: the pending events by due time.
CREATE INDEX audit_events_outbox_idx ON audit_events (next_attempt_at) WHERE delivery = 'pending';
-- Dead letters, for `storage-server events list|retry`.
CREATE INDEX audit_events_dead_idx ON audit_events (at) WHERE delivery = 'dead';
