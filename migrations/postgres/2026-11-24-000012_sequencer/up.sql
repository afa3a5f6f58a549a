-- Deferred sequencing (PostgreSQL; docs/DESIGN.md §13). A change or a read writes its access-log
-- rows and its events here, in its own transaction, without taking the chain's or the feed's head
-- lock; the sequencer moves them into audit_events / events in batches, numbering and chaining
-- them under the head locks. Changes from many connections and instances then commit together
-- instead of one at a time. On SQLite (one writer) rows are still chained in the change's own
-- transaction and these tables stay empty.
CREATE TABLE audit_pending (
    pending_id BIGSERIAL PRIMARY KEY,
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
    reason TEXT
);

CREATE TABLE event_outbox (
    pending_id BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    case_id TEXT,
    org_a TEXT,
    org_b TEXT,
    occurred_at TIMESTAMP NOT NULL,
    data TEXT NOT NULL
);
