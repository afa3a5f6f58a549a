-- The primary/secondary rules (DOMAIN.md §2) as the database's last word: the code checks first
-- for a good message; these refuse what a race might still slip through. Messages start with
-- "rule:" so that the API answers 409, not 500.
CREATE FUNCTION care_team_physician_rules() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.role NOT IN ('primary_physician', 'secondary_physician') THEN
        RETURN NEW;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM practitioners p
        WHERE p.id = NEW.practitioner_id AND p.profession = 'physician' AND p.active
    ) THEN
        RAISE EXCEPTION 'rule: physician slots take active physicians only';
    END IF;
    IF EXISTS (
        SELECT 1 FROM care_team_members m
        WHERE m.case_id = NEW.case_id AND m.role = NEW.role
          AND (m.ends_at IS NULL OR m.ends_at > NEW.starts_at)
          AND (NEW.ends_at IS NULL OR NEW.ends_at > m.starts_at)
    ) THEN
        RAISE EXCEPTION 'rule: one physician per slot at any instant';
    END IF;
    IF EXISTS (
        SELECT 1 FROM care_team_members m
        WHERE m.case_id = NEW.case_id AND m.practitioner_id = NEW.practitioner_id
          AND m.role IN ('primary_physician', 'secondary_physician') AND m.role <> NEW.role
          AND (m.ends_at IS NULL OR m.ends_at > NEW.starts_at)
          AND (NEW.ends_at IS NULL OR NEW.ends_at > m.starts_at)
    ) THEN
        RAISE EXCEPTION 'rule: the primary and secondary physicians are different people';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER care_team_physician_rules BEFORE INSERT ON care_team_members
    FOR EACH ROW EXECUTE FUNCTION care_team_physician_rules();
