-- Every access-log row (one per read, one per change) went into the index by purpose, while only
-- break-glass rows are ever looked up by purpose (review lists them, DOMAIN.md §7); a filter on
-- normal rows walks the log by `seq` and finds them at once. The index keeps break-glass rows only.
-- (SQLite's migration of the same number also makes `seq` the table's row id; here `seq` already
-- is the table's only key.)
CREATE INDEX audit_events_break_glass ON audit_events (seq) WHERE purpose = 'break_glass';
DROP INDEX audit_events_purpose;
