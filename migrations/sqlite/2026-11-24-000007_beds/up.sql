-- Backup beds and bed requests (DOMAIN.md §5).
CREATE TABLE beds (
    id TEXT PRIMARY KEY NOT NULL,
    hospital_id TEXT NOT NULL REFERENCES organizations (id),
    ward TEXT NOT NULL,
    label TEXT NOT NULL,
    kinds TEXT NOT NULL,
    tags TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    -- Bumped by every allocation of the bed: the row lock that serialises them.
    alloc_version BIGINT NOT NULL DEFAULT 0,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX beds_label ON beds (hospital_id, ward, label);
CREATE INDEX beds_hospital ON beds (hospital_id, id);

-- A hospital's rules for respite admissions (レスパイト入院).
CREATE TABLE respite_policies (
    hospital_id TEXT PRIMARY KEY NOT NULL REFERENCES organizations (id),
    max_stay_days INTEGER NOT NULL CHECK (max_stay_days >= 1),
    min_notice_days INTEGER NOT NULL CHECK (min_notice_days >= 0),
    admission_weekdays TEXT NOT NULL,
    yearly_limit_days INTEGER CHECK (yearly_limit_days >= 1),
    version BIGINT NOT NULL DEFAULT 1,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE bed_requests (
    id TEXT PRIMARY KEY NOT NULL,
    case_id TEXT NOT NULL REFERENCES cases (id),
    patient_id TEXT NOT NULL REFERENCES patients (id),
    hospital_id TEXT NOT NULL REFERENCES organizations (id),
    kind TEXT NOT NULL CHECK (kind IN ('emergency', 'urgent', 'respite')),
    needs TEXT NOT NULL,
    starts_at TIMESTAMP NOT NULL,
    ends_at TIMESTAMP,
    reason TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'declined', 'cancelled', 'expired', 'admitted',
        'discharged')),
    response_due_at TIMESTAMP NOT NULL,
    requested_by TEXT NOT NULL,
    previous_request_id TEXT REFERENCES bed_requests (id),
    decline_reason TEXT,
    decline_note TEXT,
    disposition TEXT,
    answered_by TEXT,
    answered_at TIMESTAMP,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX bed_requests_hospital ON bed_requests (hospital_id, id);
CREATE INDEX bed_requests_case ON bed_requests (case_id, id);
CREATE INDEX bed_requests_pending_due ON bed_requests (status, response_due_at);
-- A declined or expired request is re-targeted once.
CREATE UNIQUE INDEX bed_requests_one_successor ON bed_requests (previous_request_id);

-- A bed given to a request for a half-open period [starts_at, ends_at). Released allocations
-- (cancelled, discharged early) keep their row with released_at set and no longer count.
CREATE TABLE bed_allocations (
    id TEXT PRIMARY KEY NOT NULL,
    bed_id TEXT NOT NULL REFERENCES beds (id),
    request_id TEXT NOT NULL REFERENCES bed_requests (id),
    patient_id TEXT NOT NULL REFERENCES patients (id),
    starts_at TIMESTAMP NOT NULL,
    ends_at TIMESTAMP NOT NULL,
    released_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    CHECK (starts_at < ends_at)
);
CREATE UNIQUE INDEX bed_allocations_request ON bed_allocations (request_id);
CREATE INDEX bed_allocations_bed ON bed_allocations (bed_id, starts_at);

-- Never one bed twice for overlapping periods: the database's last word (the code locks the bed
-- row and checks first, for a good message).
CREATE TRIGGER bed_allocations_no_overlap BEFORE INSERT ON bed_allocations
    WHEN EXISTS (
        SELECT 1 FROM bed_allocations a
        WHERE a.bed_id = NEW.bed_id AND a.released_at IS NULL
          AND a.starts_at < NEW.ends_at AND NEW.starts_at < a.ends_at
    )
BEGIN
    SELECT RAISE(ABORT, 'rule: the bed is already allocated for an overlapping period');
END;
