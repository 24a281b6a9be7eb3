-- The outbox claims runs; see the PostgreSQL migration of the same name.
CREATE INDEX audit_events_pending_chain_idx ON audit_events (file_id, seq)
    WHERE delivery = 'pending';
