-- The regional directory: organizations and practitioners (DOMAIN.md §6).
-- Ids are UUID v7 text; times are UTC; code lists are checked here as well as in the code.
CREATE TABLE organizations (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('clinic', 'hospital', 'visiting_nursing_station',
        'care_management_office', 'pharmacy', 'dental_clinic', 'regional_comprehensive_support_center',
        'municipality', 'physicians_association')),
    name TEXT NOT NULL,
    kana TEXT,
    medical_institution_code TEXT UNIQUE CHECK (length(medical_institution_code) = 10),
    municipality_code TEXT NOT NULL CHECK (length(municipality_code) = 6),
    postal_code TEXT,
    address TEXT,
    phone TEXT,
    services TEXT NOT NULL DEFAULT '[]',
    active BOOLEAN NOT NULL DEFAULT TRUE,
    search_text TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX organizations_kind_id ON organizations (kind, id);
CREATE INDEX organizations_municipality_id ON organizations (municipality_code, id);

CREATE TABLE practitioners (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    kana TEXT NOT NULL,
    profession TEXT NOT NULL CHECK (profession IN ('physician', 'dentist', 'nurse', 'pharmacist',
        'care_manager', 'msw', 'therapist', 'dental_hygienist', 'dietitian', 'care_worker',
        'coordinator', 'other')),
    registration_number TEXT,
    phone TEXT,
    email TEXT,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    search_text TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CHECK (profession NOT IN ('physician', 'dentist') OR registration_number IS NOT NULL)
);
CREATE INDEX practitioners_organization_id ON practitioners (organization_id, id);
CREATE INDEX practitioners_profession_id ON practitioners (profession, id);
-- A national registration number names one person: never two directory entries for them.
CREATE UNIQUE INDEX practitioners_registration ON practitioners (profession, registration_number)
    WHERE registration_number IS NOT NULL;
