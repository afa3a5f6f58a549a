-- The patient search index: every pair of neighbouring characters of a patient's search text
-- (folded name and reading). A search for a key of two or more characters starts from the
-- patients that have the key's pairs, instead of a LIKE over every patient; LIKE still decides.
-- Kept by the application on every insert and update of a patient.
CREATE TABLE patient_search_grams (
    gram TEXT NOT NULL,
    patient_id TEXT NOT NULL REFERENCES patients (id),
    PRIMARY KEY (gram, patient_id)
) WITHOUT ROWID;
CREATE INDEX patient_search_grams_patient ON patient_search_grams (patient_id);

WITH RECURSIVE pos (id, t, i) AS (
    SELECT id, search_text, 1 FROM patients WHERE length(search_text) >= 2
    UNION ALL
    SELECT id, t, i + 1 FROM pos WHERE i < length(t) - 1
)
INSERT OR IGNORE INTO patient_search_grams (gram, patient_id) SELECT substr(t, i, 2), id FROM pos;
