-- Lookups that read a whole table, or a whole history, as the region grows: found by profiling
-- the screening post under load (every sheet read asked which sheet supersedes it, by scanning),
-- then by checking every query's filter against the indexes (docs/PERFORMANCE.md).

-- Which sheet supersedes this one: asked by every sheet read. At most one does.
CREATE UNIQUE INDEX screening_sheets_supersedes ON screening_sheets (supersedes_id);
-- A physician's or coordinator's bed requests: the requests they sent.
CREATE INDEX bed_requests_requested_by ON bed_requests (requested_by, id);
-- A patient's allocations (respite days used in the fiscal year).
CREATE INDEX bed_allocations_patient ON bed_allocations (patient_id, starts_at);
-- Live allocations that end after a period starts (free beds); released ones are history.
CREATE INDEX bed_allocations_live_end ON bed_allocations (ends_at) WHERE released_at IS NULL;
-- A patient's active registration, asked with the status as a bound value (which the partial
-- unique index cannot serve on SQLite).
CREATE INDEX backup_registrations_patient ON backup_registrations (patient_id, status);
-- Case lists filtered by municipality.
CREATE INDEX patients_municipality ON patients (municipality_code, id);
-- Shifts and absences overlapping a period: start from the end, so that the past does not count.
CREATE INDEX on_call_shifts_organization_end ON on_call_shifts (organization_id, ends_at);
CREATE INDEX absences_practitioner_end ON absences (practitioner_id, ends_at);
-- One delivery per webhook and event (as the dispatcher assumes), in the feed's order.
CREATE UNIQUE INDEX webhook_deliveries_event ON webhook_deliveries (webhook_id, event_seq);
