DROP TABLE api_clients;
DROP TABLE audit_chain;
DROP TABLE audit_events;
DROP FUNCTION audit_events_immutable();
