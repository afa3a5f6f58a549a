DROP TABLE patient_search_grams;
