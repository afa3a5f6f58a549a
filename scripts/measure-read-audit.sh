#!/usr/bin/env bash
# What does the read audit cost? Serves the release binary, seeds one case, and runs wrk against
# three reads side by side: /healthz (HTTP only), an organization (token + directory read, no
# audit row) and a case (token + case read + one durable audit row, group-committed).
# Usage: scripts/measure-read-audit.sh [postgres://…/db]   (default: SQLite in a temp dir)
# Needs: a release build (cargo build --release), wrk, curl, python3. Loopback only; bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/renkei
DUR=${DUR:-10s}
CONC=${CONC:-32}
PORT=${PORT:-18181}
work=$(mktemp -d)
trap 'kill $(cat "$work/pid") 2>/dev/null || true; rm -rf "$work"' EXIT
export RENKEI_DATA_DIR="$work" RENKEI_LISTEN="127.0.0.1:$PORT" RUST_LOG=warn RENKEI_WORKERS=${WORKERS:-2}
[ $# -ge 1 ] && export DATABASE_URL="$1"
"$BIN" serve & echo $! > "$work/pid"
for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
ORG=$(python3 -c 'import uuid; print(uuid.uuid4())')
ADMIN=$("$BIN" token --sub "$ORG" --org "$ORG" --role admin)
json() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
post() { curl -fs -X POST "http://127.0.0.1:$PORT$1" -H "Authorization: Bearer $2" -H 'Content-Type: application/json' -d "$3"; }
BASE=$(post /api/v1/organizations "$ADMIN" '{"kind":"physicians_association","name":"計測用医師会","municipality_code":"131016"}' | json id)
COORD=$("$BIN" token --sub "$ORG" --org "$BASE" --role coordinator)
PATIENT=$(post /api/v1/patients "$COORD" '{"name":"計測 花子","kana":"ケイソク ハナコ","birth_date":"1940-01-01","sex":"female","municipality_code":"131016"}' | json id)
CASE=$(post /api/v1/cases "$COORD" "{\"patient_id\":\"$PATIENT\",\"managing_organization_id\":\"$BASE\"}" | json id)
run() { # name, path, connections
    local out; out=$(wrk -t"$(( $3 < 2 ? 1 : 2 ))" -c"$3" -d"$DUR" --latency -H "Authorization: Bearer $COORD" "http://127.0.0.1:$PORT$2")
    printf '%-28s c=%-3s %10s req/s   p50 %8s   p99 %8s\n' "$1" "$3" \
        "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" "$(awk '$1=="50%" {print $2}' <<<"$out")" "$(awk '$1=="99%" {print $2}' <<<"$out")"
}
echo "backend: ${DATABASE_URL:-sqlite}  workers: $RENKEI_WORKERS  load: $(cut -d' ' -f1-3 /proc/loadavg)"
run "healthz (no db)" /healthz "$CONC"
run "organization (no audit)" "/api/v1/organizations/$BASE" "$CONC"
run "case (audited read)" "/api/v1/cases/$CASE" "$CONC"
run "case (audited read)" "/api/v1/cases/$CASE" 1
run "organization (no audit)" "/api/v1/organizations/$BASE" 1
echo "audit rows written: $(curl -fs "http://127.0.0.1:$PORT/api/v1/audit-events/verify" -H "Authorization: Bearer $ADMIN" | json checked)"
