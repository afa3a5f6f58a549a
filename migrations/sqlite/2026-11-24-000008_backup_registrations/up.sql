-- Pre-registration of a home-care patient with one backup hospital (事前登録, DOMAIN.md §5).
CREATE TABLE backup_registrations (
    id TEXT PRIMARY KEY NOT NULL,
    case_id TEXT NOT NULL REFERENCES cases (id),
    patient_id TEXT NOT NULL REFERENCES patients (id),
    hospital_id TEXT NOT NULL REFERENCES organizations (id),
    status TEXT NOT NULL CHECK (status IN ('requested', 'active', 'rejected', 'withdrawn')),
    consent_obtained_on DATE NOT NULL,
    summary TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    reject_reason TEXT,
    last_exchange_on DATE,
    next_exchange_due DATE,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
-- Exactly one backup hospital per patient: the database's last word.
CREATE UNIQUE INDEX backup_registrations_one_active ON backup_registrations (patient_id) WHERE status = 'active';
CREATE INDEX backup_registrations_hospital ON backup_registrations (hospital_id, id);
CREATE INDEX backup_registrations_case ON backup_registrations (case_id, id);
CREATE INDEX backup_registrations_due ON backup_registrations (status, next_exchange_due);

-- The information exchanges between the hospital and the clinic (at least every 3 months).
CREATE TABLE backup_info_exchanges (
    id TEXT PRIMARY KEY NOT NULL,
    registration_id TEXT NOT NULL REFERENCES backup_registrations (id),
    exchanged_on DATE NOT NULL,
    note TEXT,
    recorded_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX backup_info_exchanges_registration ON backup_info_exchanges (registration_id, exchanged_on);
