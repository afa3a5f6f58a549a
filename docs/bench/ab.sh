#!/usr/bin/env bash
# ab.sh OUT RUNS BACKEND NAME=BINDIR [NAME=BINDIR …] -- [renkei-bench arguments …]
#
# Two (or more) builds side by side: for each of RUNS rounds, each build in turn serves a fresh
# database (SQLite: a new data directory; BACKEND=pg: a new PostgreSQL database, ANALYZEd after
# the seed) and renkei-bench drives it with the arguments after `--`. Each run writes
# OUT/NAME-BACKEND-i.json and .log; compare the builds with
#   python3 docs/bench/compare.py "OUT/A-sqlite-*.json" "OUT/B-sqlite-*.json"
# BINDIR holds `renkei` and `renkei-bench` (e.g. a copy of target/profiling taken before a change).
# Loopback only; every run is bounded by renkei-bench's own phases.
set -euo pipefail
out=$1 runs=$2 backend=$3; shift 3
builds=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do builds+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
mkdir -p "$out"
PORT=${PORT:-18080}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
for i in $(seq 1 "$runs"); do
  for b in "${builds[@]}"; do
    name=${b%%=*} dir=${b#*=}
    data=$(mktemp -d)
    env=(RENKEI_BENCH_PROBES=true RENKEI_DATA_DIR="$data" RENKEI_LISTEN="127.0.0.1:$PORT" RUST_LOG=warn
         RENKEI_BED_SWEEP_SECONDS=0 RENKEI_WEBHOOK_POLL_MS=0)
    after=()
    if [ "$backend" = pg ]; then
      db=renkei_ab_$$
      psql "$PG/postgres" -q -o /dev/null -c "set client_min_messages = warning" -c "drop database if exists $db" -c "create database $db" >/dev/null
      env+=(DATABASE_URL="$PG/$db")
      after=(--after-seed "psql $PG/$db -qc ANALYZE")
    fi
    env "${env[@]}" "$dir/renkei" serve > "$data/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
    "$dir/renkei-bench" --url "http://127.0.0.1:$PORT" --secret-file "$data/jwt-secret" --server-pid "$pid" \
      --label "$name-$backend-$i" --out "$out/$name-$backend-$i.json" --svg /dev/null "${after[@]}" "$@" \
      > "$out/$name-$backend-$i.log" 2>&1 || echo "run $name-$backend-$i failed (see its log)" >&2
    kill "$pid"; wait "$pid" 2>/dev/null || true
    [ "$backend" = pg ] && psql "$PG/postgres" -qc "drop database if exists $db" >/dev/null
    rm -rf "$data"
    echo "$name-$backend-$i: $(grep -E '^(probe_read|probe_insert|cover|case_read) ' "$out/$name-$backend-$i.log" | awk '{printf "%s %s  ", $1, $3}')"
  done
done
