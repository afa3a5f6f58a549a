DROP TABLE event_outbox;
DROP TABLE audit_pending;
