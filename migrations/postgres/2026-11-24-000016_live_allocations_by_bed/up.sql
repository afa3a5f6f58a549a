-- Free beds are found bed by bed: does this bed have a live allocation overlapping the period?
-- A bed's live allocations (its current stay and its bookings) are few, where the region's live
-- allocations ending after a date are all the bookings ahead: the index on their ends made every
-- search for free beds (every decline and expiry names alternatives) walk the region's bookings.
-- Every lookup of a bed's allocations asks for live ones, so the index of all of them (with each
-- bed's released history) serves no query any more.
CREATE INDEX bed_allocations_live_bed ON bed_allocations (bed_id, starts_at) WHERE released_at IS NULL;
DROP INDEX bed_allocations_live_end;
DROP INDEX bed_allocations_bed;
