-- Back to the indexes on the log itself; the key tables are derived, so nothing is lost.
CREATE INDEX audit_events_patient ON audit_events (patient_id, seq);
CREATE INDEX audit_events_actor ON audit_events (actor_sub, seq);
DROP TABLE audit_keys_head;
DROP TABLE audit_actor_keys;
DROP TABLE audit_patient_keys;
DROP FUNCTION audit_keys_immutable();
