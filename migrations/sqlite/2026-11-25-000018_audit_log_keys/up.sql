-- The access log's indexes by patient and by actor took two b-tree pages at random places for
-- every row (one row per read): each commit of the group commit rewrote a page of each for
-- nearly every row it carried, most of the bytes the writer sent to the WAL (round 12 of
-- docs/PERFORMANCE.md). The rows are now found by patient and by actor through two key tables
-- filled in bulk, some rows at a time and sorted, behind the log (`crate::audit::key_rows`);
-- `audit_keys_head.keyed_seq` says how far. Rows after it are found by walking the log's tail by
-- `seq` (`db::audit_keys`). The keys are derived from the log: nothing here is the only copy.
CREATE TABLE audit_patient_keys (
    patient_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (patient_id, seq)
) WITHOUT ROWID;
CREATE TABLE audit_actor_keys (
    actor_sub TEXT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (actor_sub, seq)
) WITHOUT ROWID;
CREATE TABLE audit_keys_head (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    keyed_seq BIGINT NOT NULL
);
-- The head first, from the chain's head: every row up to it is committed (the chain's head commits with its
-- rows), so the keys below are exactly those rows', whatever instances chain meanwhile (on PostgreSQL each
-- statement here sees what was committed when it started; rows chained after the first are the passes' work).
INSERT INTO audit_keys_head (id, keyed_seq) SELECT 1, last_seq FROM audit_chain WHERE id = 1;
INSERT INTO audit_patient_keys (patient_id, seq)
    SELECT patient_id, seq FROM audit_events
    WHERE patient_id IS NOT NULL AND seq <= (SELECT keyed_seq FROM audit_keys_head WHERE id = 1)
    ORDER BY patient_id, seq;
INSERT INTO audit_actor_keys (actor_sub, seq)
    SELECT actor_sub, seq FROM audit_events WHERE seq <= (SELECT keyed_seq FROM audit_keys_head WHERE id = 1)
    ORDER BY actor_sub, seq;
-- A key removed would hide a row from a patient's access history without breaking the chain.
CREATE TRIGGER audit_patient_keys_no_update BEFORE UPDATE ON audit_patient_keys
BEGIN
    SELECT RAISE(ABORT, 'audit keys cannot be changed');
END;
CREATE TRIGGER audit_patient_keys_no_delete BEFORE DELETE ON audit_patient_keys
BEGIN
    SELECT RAISE(ABORT, 'audit keys cannot be deleted');
END;
CREATE TRIGGER audit_actor_keys_no_update BEFORE UPDATE ON audit_actor_keys
BEGIN
    SELECT RAISE(ABORT, 'audit keys cannot be changed');
END;
CREATE TRIGGER audit_actor_keys_no_delete BEFORE DELETE ON audit_actor_keys
BEGIN
    SELECT RAISE(ABORT, 'audit keys cannot be deleted');
END;
DROP INDEX audit_events_patient;
DROP INDEX audit_events_actor;
