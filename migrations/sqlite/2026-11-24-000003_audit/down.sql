DROP TABLE api_clients;
DROP TRIGGER audit_events_no_delete;
DROP TRIGGER audit_events_no_update;
DROP TABLE audit_chain;
DROP TABLE audit_events;
