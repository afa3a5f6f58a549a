-- Patients, cases, care teams, absences and on-call shifts (DOMAIN.md §1–3, §9).
CREATE TABLE patients (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    kana TEXT NOT NULL,
    birth_date DATE NOT NULL,
    sex TEXT NOT NULL CHECK (sex IN ('male', 'female', 'other', 'unknown')),
    municipality_code TEXT NOT NULL CHECK (length(municipality_code) = 6),
    postal_code TEXT,
    address TEXT,
    phone TEXT,
    care_level TEXT CHECK (care_level IN ('none', 'applying', 'support_1', 'support_2', 'care_1', 'care_2',
        'care_3', 'care_4', 'care_5')),
    key_person TEXT,
    devices TEXT NOT NULL DEFAULT '[]',
    consent TEXT NOT NULL,
    registered_by TEXT NOT NULL REFERENCES organizations (id),
    search_text TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX patients_registered_by ON patients (registered_by, id);
CREATE INDEX patients_birth_date ON patients (birth_date, id);

CREATE TABLE cases (
    id TEXT PRIMARY KEY NOT NULL,
    patient_id TEXT NOT NULL REFERENCES patients (id),
    managing_organization_id TEXT NOT NULL REFERENCES organizations (id),
    status TEXT NOT NULL CHECK (status IN ('referred', 'active', 'on_hold', 'closed', 'cancelled')),
    started_on DATE,
    ended_on DATE,
    close_reason TEXT CHECK (close_reason IN ('died_at_home', 'died_in_hospital', 'moved',
        'long_term_admission', 'recovered', 'other')),
    notes TEXT,
    -- Bumped by every care-team change: the row lock that serialises handovers of one case.
    team_version BIGINT NOT NULL DEFAULT 0,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CHECK (status <> 'closed' OR close_reason IS NOT NULL)
);
-- At most one open case per patient per managing organization.
CREATE UNIQUE INDEX cases_one_open ON cases (patient_id, managing_organization_id)
    WHERE status IN ('referred', 'active', 'on_hold');
CREATE INDEX cases_managing_organization ON cases (managing_organization_id, id);
CREATE INDEX cases_patient ON cases (patient_id);
CREATE INDEX cases_status ON cases (status, id);

CREATE TABLE case_status_history (
    id TEXT PRIMARY KEY NOT NULL,
    case_id TEXT NOT NULL REFERENCES cases (id),
    from_status TEXT,
    to_status TEXT NOT NULL,
    close_reason TEXT,
    actor TEXT NOT NULL,
    at TIMESTAMP NOT NULL
);
CREATE INDEX case_status_history_case ON case_status_history (case_id, at);

CREATE TABLE care_team_members (
    id TEXT PRIMARY KEY NOT NULL,
    case_id TEXT NOT NULL REFERENCES cases (id),
    practitioner_id TEXT NOT NULL REFERENCES practitioners (id),
    role TEXT NOT NULL CHECK (role IN ('primary_physician', 'secondary_physician', 'visiting_nurse',
        'care_manager', 'pharmacist', 'dentist', 'msw', 'therapist', 'coordinator', 'other')),
    starts_at TIMESTAMP NOT NULL,
    ends_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    CHECK (ends_at IS NULL OR ends_at > starts_at)
);
-- One open primary and one open secondary assignment per case: handovers end the old one first.
CREATE UNIQUE INDEX care_team_one_open_physician ON care_team_members (case_id, role)
    WHERE ends_at IS NULL AND role IN ('primary_physician', 'secondary_physician');
CREATE INDEX care_team_case ON care_team_members (case_id, role, starts_at);
CREATE INDEX care_team_practitioner ON care_team_members (practitioner_id, case_id);

CREATE TABLE absences (
    id TEXT PRIMARY KEY NOT NULL,
    practitioner_id TEXT NOT NULL REFERENCES practitioners (id),
    starts_at TIMESTAMP NOT NULL,
    ends_at TIMESTAMP NOT NULL,
    reason TEXT,
    cancelled_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    CHECK (ends_at > starts_at)
);
CREATE INDEX absences_practitioner ON absences (practitioner_id, starts_at);

CREATE TABLE on_call_shifts (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    practitioner_id TEXT NOT NULL REFERENCES practitioners (id),
    starts_at TIMESTAMP NOT NULL,
    ends_at TIMESTAMP NOT NULL,
    cancelled_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    CHECK (ends_at > starts_at)
);
CREATE INDEX on_call_shifts_organization ON on_call_shifts (organization_id, starts_at);
