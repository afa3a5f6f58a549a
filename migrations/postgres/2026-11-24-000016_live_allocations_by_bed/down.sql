CREATE INDEX bed_allocations_bed ON bed_allocations (bed_id, starts_at);
CREATE INDEX bed_allocations_live_end ON bed_allocations (ends_at) WHERE released_at IS NULL;
DROP INDEX bed_allocations_live_bed;
