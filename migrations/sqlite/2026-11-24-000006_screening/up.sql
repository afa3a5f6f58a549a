-- Discharge screening (DOMAIN.md §4): versioned templates and the sheets hospitals send.
CREATE TABLE screening_templates (
    id TEXT PRIMARY KEY NOT NULL,
    -- NULL for the templates Renkei ships (the national one).
    owner_organization_id TEXT REFERENCES organizations (id),
    -- The owner's id, or '' for a built-in template: versions are numbered per owner and code.
    owner_key TEXT NOT NULL,
    code TEXT NOT NULL,
    template_version INTEGER NOT NULL CHECK (template_version >= 1),
    title_ja TEXT NOT NULL,
    title_en TEXT NOT NULL,
    scoring TEXT NOT NULL CHECK (scoring IN ('any_factor', 'weighted_sum')),
    threshold INTEGER,
    items TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('draft', 'published')),
    published_at TIMESTAMP,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CHECK ((scoring = 'weighted_sum') = (threshold IS NOT NULL))
);
CREATE UNIQUE INDEX screening_templates_code_version ON screening_templates (owner_key, code, template_version);

-- A published template never changes (DOMAIN.md §4): the database's last word.
CREATE TRIGGER screening_templates_immutable BEFORE UPDATE ON screening_templates
    WHEN OLD.status = 'published'
BEGIN
    SELECT RAISE(ABORT, 'rule: a published screening template never changes');
END;
CREATE TRIGGER screening_templates_kept BEFORE DELETE ON screening_templates
    WHEN OLD.status = 'published'
BEGIN
    SELECT RAISE(ABORT, 'rule: a published screening template never changes');
END;

INSERT INTO screening_templates (id, owner_organization_id, owner_key, code, template_version, title_ja, title_en,
    scoring, threshold, items, status, published_at, version, created_at, updated_at)
VALUES ('019ab5a0-0000-7000-8000-000000000001', NULL, '', 'national_discharge_difficulty', 1,
    '退院困難な要因 (入退院支援加算)', 'Factors making discharge difficult (national criteria)',
    'any_factor', NULL,
    '[{"code":"malignancy_dementia_or_aspiration","label_ja":"悪性腫瘍・認知症・誤嚥性肺炎等の急性呼吸器感染症","label_en":"Malignancy, dementia or acute respiratory infection such as aspiration pneumonia","type":"boolean","weight":1,"options":[],"required":true},{"code":"emergency_admission","label_ja":"緊急入院","label_en":"Emergency admission","type":"boolean","weight":1,"options":[],"required":true},{"code":"ltc_not_applied","label_ja":"要介護認定が未申請","label_en":"Long-term-care certification not applied for","type":"boolean","weight":1,"options":[],"required":true},{"code":"communication_disability","label_ja":"コミュニケーションに特別な技術が必要な障害","label_en":"A disability that needs special communication skills","type":"boolean","weight":1,"options":[],"required":true},{"code":"severe_behavioral_disorder","label_ja":"強度行動障害","label_en":"Severe behavioural disorder","type":"boolean","weight":1,"options":[],"required":true},{"code":"abuse_suspected","label_ja":"虐待又はその疑い","label_en":"Abuse or suspected abuse","type":"boolean","weight":1,"options":[],"required":true},{"code":"poverty","label_ja":"生活困窮","label_en":"Financial hardship","type":"boolean","weight":1,"options":[],"required":true},{"code":"adl_decline","label_ja":"入院前に比べADLが低下","label_en":"ADL declined compared with before admission","type":"boolean","weight":1,"options":[],"required":true},{"code":"toileting_assistance","label_ja":"排泄に介助を要する","label_en":"Needs assistance with toileting","type":"boolean","weight":1,"options":[],"required":true},{"code":"insufficient_care_at_home","label_ja":"同居者の有無に関わらず必要な介護を十分に提供できない","label_en":"Necessary care cannot be provided at home, with or without a cohabitant","type":"boolean","weight":1,"options":[],"required":true},{"code":"medical_procedure_after_discharge","label_ja":"退院後に医療処置(胃瘻等の経管栄養を含む)が必要","label_en":"Needs medical procedures after discharge (including tube feeding such as gastrostomy)","type":"boolean","weight":1,"options":[],"required":true},{"code":"repeated_admissions","label_ja":"入退院を繰り返している","label_en":"Repeated admissions and discharges","type":"boolean","weight":1,"options":[],"required":true},{"code":"long_term_malnutrition","label_ja":"長期的な低栄養状態","label_en":"Long-term malnutrition","type":"boolean","weight":1,"options":[],"required":true},{"code":"young_carer","label_ja":"家族の介護を日常的に行っている児童等","label_en":"A child who routinely cares for a family member (young carer)","type":"boolean","weight":1,"options":[],"required":true},{"code":"cared_for_by_child","label_ja":"児童等の家族から介護を受けている","label_en":"Cared for by a child of the family","type":"boolean","weight":1,"options":[],"required":true},{"code":"no_kin","label_ja":"身寄りがない","label_en":"No kin","type":"boolean","weight":1,"options":[],"required":true},{"code":"other","label_ja":"その他","label_en":"Other","type":"boolean","weight":1,"options":[],"required":true}]',
    'published', '2026-11-24 00:00:00', 1, '2026-11-24 00:00:00', '2026-11-24 00:00:00');

CREATE TABLE screening_sheets (
    id TEXT PRIMARY KEY NOT NULL,
    hospital_id TEXT NOT NULL REFERENCES organizations (id),
    base_organization_id TEXT NOT NULL REFERENCES organizations (id),
    -- The hospital's encounter (admission) number: one sheet per hospital and encounter.
    encounter_ref TEXT NOT NULL,
    revision INTEGER NOT NULL CHECK (revision >= 1),
    supersedes_id TEXT REFERENCES screening_sheets (id),
    template_id TEXT NOT NULL REFERENCES screening_templates (id),
    patient_id TEXT REFERENCES patients (id),
    -- The patient as the hospital described them, until the base links a patient record.
    demographics TEXT,
    admitted_at TIMESTAMP NOT NULL,
    emergency_admission BOOLEAN NOT NULL,
    expected_discharge_on DATE,
    answers TEXT NOT NULL,
    notes TEXT,
    factors TEXT NOT NULL,
    score INTEGER NOT NULL,
    result TEXT CHECK (result IN ('positive', 'negative')),
    status TEXT NOT NULL CHECK (status IN ('draft', 'submitted', 'accepted', 'declined', 'withdrawn', 'superseded')),
    screening_due_at TIMESTAMP NOT NULL,
    -- The interview and the conference are both due 7 days after admission.
    week_due_at TIMESTAMP NOT NULL,
    submitted_at TIMESTAMP,
    interview_held_at TIMESTAMP,
    conference_held_at TIMESTAMP,
    case_id TEXT REFERENCES cases (id),
    decline_reason TEXT,
    decided_by TEXT,
    decided_at TIMESTAMP,
    content_hash TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CHECK (patient_id IS NOT NULL OR demographics IS NOT NULL),
    CHECK (status <> 'accepted' OR case_id IS NOT NULL)
);
-- Never twice: one current sheet per hospital and encounter; revisions keep the old ones.
CREATE UNIQUE INDEX screening_sheets_encounter ON screening_sheets (hospital_id, encounter_ref)
    WHERE status <> 'superseded';
CREATE UNIQUE INDEX screening_sheets_revision ON screening_sheets (hospital_id, encounter_ref, revision);
CREATE INDEX screening_sheets_hospital ON screening_sheets (hospital_id, id);
CREATE INDEX screening_sheets_base ON screening_sheets (base_organization_id, id);
CREATE INDEX screening_sheets_case ON screening_sheets (case_id);
CREATE INDEX screening_sheets_patient ON screening_sheets (patient_id);
