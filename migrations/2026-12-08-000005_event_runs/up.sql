-- The outbox claims runs (issue 17, delivery): a file's pending events in chain order, found
-- from each file's first pending event. Without this index, asking "is an earlier event of this
-- file pending?" walks the file's whole delivered history first (the chain index holds every
-- event); with it, pending events only, so a claim costs the same on a file with a long past.
CREATE INDEX audit_events_pending_chain_idx ON audit_events (file_id, seq)
    WHERE delivery = 'pending';
