DROP TABLE pending_deletions;
DROP TABLE audit_events;
DROP TABLE upload_reservations;
DROP TABLE locks;
DROP TABLE versions;
DROP TABLE files;
