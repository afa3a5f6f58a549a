-- The patient search index per organization that sees the patient (the one that registered it and
-- every one that manages a case of it): a coordinator's search starts from the pairs of its own
-- organization's patients, so that it costs the organization's matches, not the region's.
-- Kept by the application when a patient is registered or renamed and when a case is opened.
CREATE TABLE patient_org_grams (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    gram TEXT NOT NULL,
    patient_id TEXT NOT NULL REFERENCES patients (id),
    PRIMARY KEY (organization_id, gram, patient_id)
) WITHOUT ROWID;
CREATE INDEX patient_org_grams_patient ON patient_org_grams (patient_id, organization_id);

INSERT OR IGNORE INTO patient_org_grams (organization_id, gram, patient_id)
SELECT o.organization_id, g.gram, g.patient_id
FROM patient_search_grams g
JOIN (
    SELECT id AS patient_id, registered_by AS organization_id FROM patients
    UNION
    SELECT patient_id, managing_organization_id FROM cases
) o ON o.patient_id = g.patient_id;
