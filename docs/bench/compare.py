#!/usr/bin/env python3
"""Two builds side by side, from renkei-bench runs taken in turn on the same machine (A/B).

    python3 docs/bench/compare.py "docs/bench/round5/before-sqlite-5000-run*.json" \
        "docs/bench/round5/sqlite-5000-run*.json"

Per operation: the median throughput and the median share of the run's own probe for each set,
and the change of the medians. Runs alternate between the builds, so that a drift of the
machine falls on both.
"""
import glob
import json
import statistics
import sys

READS = {"cover", "case_read", "case_list", "patient_search"}
WRITES = {"case_create", "screening_post", "bed_request_create", "bed_request_answer"}


def medians(pattern):
    runs = [json.load(open(p)) for p in sorted(glob.glob(pattern))]
    out = {}
    for op in [row["op"] for row in runs[0]["max"]]:
        tput, share = [], []
        for run in runs:
            by_op = {row["op"]: row for row in run["max"]}
            if op not in by_op:
                continue
            tput.append(by_op[op]["throughput"])
            probe = "probe_read" if op in READS else "probe_insert" if op in WRITES else None
            if probe and by_op.get(probe, {}).get("throughput"):
                share.append(100 * by_op[op]["throughput"] / by_op[probe]["throughput"])
        out[op] = (statistics.median(tput), statistics.median(share) if share else None, len(tput))
    return out


before, after = medians(sys.argv[1]), medians(sys.argv[2])
print("| operation | before req/s | % of probe | after req/s | % of probe | change |")
print("|---|---|---|---|---|---|")
for op, (b, bs, _) in before.items():
    if op not in after:
        continue
    a, as_, _ = after[op]
    share = lambda s: f"{s:.0f}" if s is not None else "—"
    print(f"| {op} | {b:,.0f} | {share(bs)} | {a:,.0f} | {share(as_)} | {a / b:.2f}× |")
