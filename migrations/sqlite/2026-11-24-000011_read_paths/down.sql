DROP INDEX care_team_practitioner_current;
CREATE INDEX care_team_practitioner ON care_team_members (practitioner_id, case_id);
