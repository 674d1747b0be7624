-- The WAL relay (src/events/wal-relay.ts) streams outbox INSERTs only: its marking UPDATEs and the purge's DELETEs are not events.
CREATE PUBLICATION outbox_relay FOR TABLE outbox WITH (publish = 'insert');
