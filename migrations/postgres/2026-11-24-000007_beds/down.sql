DROP TABLE bed_allocations;
DROP TABLE bed_requests;
DROP TABLE respite_policies;
DROP TABLE beds;
DROP FUNCTION bed_allocations_no_overlap();
