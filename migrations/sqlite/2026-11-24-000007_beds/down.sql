DROP TABLE bed_allocations;
DROP TABLE bed_requests;
DROP TABLE respite_policies;
DROP TABLE beds;
