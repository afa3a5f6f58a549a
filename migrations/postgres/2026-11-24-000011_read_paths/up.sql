-- Read paths measured under load (docs/PERFORMANCE.md). "Is this practitioner on this case's team
-- now?" is asked by every case, cover and list request of a physician: with the period in the
-- index it is answered from the index alone, without reading a member row per case of theirs.
DROP INDEX care_team_practitioner;
CREATE INDEX care_team_practitioner_current ON care_team_members (practitioner_id, case_id, starts_at, ends_at);
