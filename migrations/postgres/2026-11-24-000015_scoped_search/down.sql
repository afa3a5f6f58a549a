DROP TABLE patient_org_grams;
