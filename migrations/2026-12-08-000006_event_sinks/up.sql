-- Delivery state per sink (issue 17, delivery): the sinks that acknowledged an event, a JSON
-- array of their names (a webhook's URL without its query, `nats:<stream>`), sorted; NULL for
-- none yet. A retry, and a dead letter re-queued by `storage-server events retry`, goes only
-- to the sinks that want the event and are not named here (docs/decisions.md, Events).
ALTER TABLE audit_events ADD COLUMN acked_sinks text;
