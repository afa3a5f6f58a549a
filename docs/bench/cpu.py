#!/usr/bin/env python3
"""CPU per request of two builds side by side (round 14 on), from renkei-bench runs taken in turn:

    python3 docs/bench/cpu.py "docs/bench/round14/cpu/before-pg-*.json" "docs/bench/round14/cpu/after-pg-*.json"

Per operation measured at its maximum: the median over the runs of the CPU microseconds each answered
request cost the server, the PostgreSQL processes and the load generator, and the change of the
medians. CPU per request moves far less between runs on this shared machine than throughput does.
"""
import glob
import json
import statistics
import sys


def medians(pattern):
    runs = [json.load(open(p)) for p in sorted(glob.glob(pattern))]
    out = {}
    for row in runs[0]["max"]:
        op = row["op"]
        cpu = [r["cpu_us_per_request"] for run in runs for r in run["max"] if r["op"] == op and "cpu_us_per_request" in r]
        if cpu:
            out[op] = {k: statistics.median(c[k] for c in cpu) for k in ("server", "postgres", "load_generator")}
            out[op]["runs"] = [round(c["server"] + c["postgres"]) for c in cpu]
            out[op]["total"] = statistics.median(out[op]["runs"])
    return out


before, after = medians(sys.argv[1]), medians(sys.argv[2])
print("| operation | server µs | PostgreSQL µs | generator µs | server + PostgreSQL, runs | after: server | PostgreSQL | generator | server + PostgreSQL, runs | change (medians of the sums) |")
print("|---|---|---|---|---|---|---|---|---|---|")
for op, b in before.items():
    a = after.get(op)
    if not a:
        continue
    tb, ta = b["total"], a["total"]
    print(f"| {op} | {b['server']:.0f} | {b['postgres']:.0f} | {b['load_generator']:.0f} | {', '.join(map(str, b['runs']))} "
          f"| {a['server']:.0f} | {a['postgres']:.0f} | {a['load_generator']:.0f} | {', '.join(map(str, a['runs']))} | {ta / tb:.2f}× |")
