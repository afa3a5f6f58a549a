-- Back to 000003's table: `seq` a separate unique key, every row in the index by purpose.
CREATE TABLE audit_events_rebuilt (
    seq BIGINT PRIMARY KEY NOT NULL,
    id TEXT NOT NULL UNIQUE,
    at TIMESTAMP NOT NULL,
    request_id TEXT NOT NULL,
    actor_sub TEXT NOT NULL,
    actor_org TEXT NOT NULL,
    actor_roles TEXT NOT NULL,
    client_id TEXT,
    action TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT,
    patient_id TEXT,
    outcome TEXT NOT NULL,
    status INTEGER NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('normal', 'break_glass')),
    reason TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_events_rebuilt
    SELECT seq, id, at, request_id, actor_sub, actor_org, actor_roles, client_id, action, resource_type,
           resource_id, patient_id, outcome, status, purpose, reason, prev_hash, hash
    FROM audit_events ORDER BY seq;
DROP TRIGGER audit_events_no_update;
DROP TRIGGER audit_events_no_delete;
DROP TABLE audit_events;
ALTER TABLE audit_events_rebuilt RENAME TO audit_events;
CREATE INDEX audit_events_patient ON audit_events (patient_id, seq);
CREATE INDEX audit_events_actor ON audit_events (actor_sub, seq);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_purpose ON audit_events (purpose, seq);
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit events cannot be changed');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit events cannot be deleted');
END;
