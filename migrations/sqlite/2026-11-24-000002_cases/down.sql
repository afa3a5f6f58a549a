DROP TABLE on_call_shifts;
DROP TABLE absences;
DROP TABLE care_team_members;
DROP TABLE case_status_history;
DROP TABLE cases;
DROP TABLE patients;
