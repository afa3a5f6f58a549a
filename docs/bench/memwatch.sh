#!/bin/bash
# memwatch.sh PID OUT: the server's memory every 10 s until it exits, from /proc/PID/status:
# seconds, VmRSS, RssAnon, RssFile (kB), threads (docs/PERFORMANCE.md, round 10 on).
set -u
pid=$1; out=$2; start=$(date +%s)
echo "s VmRSS_kB RssAnon_kB RssFile_kB Threads" > "$out"
while kill -0 "$pid" 2>/dev/null; do
  s=$(( $(date +%s) - start ))
  awk -v s="$s" '/^VmRSS/{r=$2} /^RssAnon/{a=$2} /^RssFile/{f=$2} /^Threads/{t=$2} END{print s, r, a, f, t}' \
    "/proc/$pid/status" >> "$out" 2>/dev/null
  sleep 10
done
