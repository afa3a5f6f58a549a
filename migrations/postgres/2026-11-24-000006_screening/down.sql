DROP TABLE screening_sheets;
DROP TABLE screening_templates;
DROP FUNCTION screening_templates_immutable();
