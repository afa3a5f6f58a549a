CREATE INDEX audit_events_purpose ON audit_events (purpose, seq);
DROP INDEX audit_events_break_glass;
