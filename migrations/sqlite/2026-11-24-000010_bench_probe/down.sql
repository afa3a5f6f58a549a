DROP TABLE bench_probe;
