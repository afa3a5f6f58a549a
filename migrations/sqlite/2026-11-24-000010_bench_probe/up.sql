-- The benchmark's write probe (RENKEI_BENCH_PROBES): a bare insert through the same pool, no token,
-- no policy, no audit, to measure what the machine can do at all. Empty unless probes are on.
CREATE TABLE bench_probe (
    id TEXT PRIMARY KEY NOT NULL,
    payload TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
