DROP TABLE screening_sheets;
DROP TABLE screening_templates;
