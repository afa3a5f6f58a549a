#!/usr/bin/env python3
"""Medians of several renkei-bench runs (the JSON files it writes), as a Markdown table.

    python3 docs/bench/median.py docs/bench/sqlite-5000-run*.json

Each operation's throughput and latencies are the median over the runs; the ratio to the probe
is taken within each run first (the probes were measured in the same run), then the median.
"""
import json
import statistics
import sys

READS = {"cover", "case_read", "case_list", "patient_search"}
WRITES = {"case_create", "screening_post", "bed_request_create", "bed_request_answer"}

runs = [json.load(open(path)) for path in sys.argv[1:]]
ops = [row["op"] for row in runs[0]["max"]]
print(f"{len(runs)} runs: " + "; ".join(r["label"] for r in runs))
print("\n| operation | req/s | % of probe | p50 ms | p99 ms | errors |")
print("|---|---|---|---|---|---|")
for op in ops:
    rows, ratios = [], []
    for run in runs:
        by_op = {row["op"]: row for row in run["max"]}
        if op not in by_op:
            continue
        rows.append(by_op[op])
        probe = "probe_read" if op in READS else "probe_insert" if op in WRITES else None
        if probe and probe in by_op and by_op[probe]["throughput"]:
            ratios.append(100 * by_op[op]["throughput"] / by_op[probe]["throughput"])
    med = lambda key: statistics.median(row[key] for row in rows)
    errors = sum(row["requests"] - row["ok"] for row in rows)
    ratio = f"{statistics.median(ratios):.0f}" if ratios else "—"
    print(f"| {op} | {med('throughput'):,.0f} | {ratio} | {med('p50_ms'):.1f} | {med('p99_ms'):.1f} | {errors} |")
print("\n| mix offered | achieved req/s | p50 ms | p99 ms | errors |")
print("|---|---|---|---|---|")
for i, rate in enumerate(r["rate"] for r in runs[0]["rates"]):
    rows = [run["rates"][i]["all"] for run in runs if i < len(run["rates"])]
    med = lambda key: statistics.median(row[key] for row in rows)
    errors = sum(row["requests"] - row["ok"] for row in rows)
    print(f"| {rate} /s | {med('throughput'):,.0f} | {med('p50_ms'):.1f} | {med('p99_ms'):.1f} | {errors} |")
rss = [(r["server_rss_kb"]["start"], r["server_rss_kb"]["end"]) for r in runs]
print(f"\nserver RSS kB (start, end) per run: {rss}")
print("load average after each run: " + "; ".join(str(r.get("load_average_after")) for r in runs))
