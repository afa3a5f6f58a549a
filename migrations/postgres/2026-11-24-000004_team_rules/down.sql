DROP TRIGGER care_team_physician_rules ON care_team_members;
DROP FUNCTION care_team_physician_rules();
