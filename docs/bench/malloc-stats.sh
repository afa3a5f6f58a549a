#!/bin/bash
# malloc-stats.sh PID LOG OUTPREFIX T1 T2 …: at T seconds from now, glibc's own account of the server's
# allocator (malloc_stats(), called through gdb: each arena's size and bytes in use) into OUTPREFIX-T.txt,
# with the process's RSS. The server prints the figures on its stderr, which must go to LOG, opened for
# appending (`>> LOG 2>&1`), since LOG is emptied before each call (docs/PERFORMANCE.md, round 11).
set -u
pid=$1; log=$2; pre=$3; shift 3; start=$(date +%s)
for t in "$@"; do
  now=$(( $(date +%s) - start )); [ "$t" -gt "$now" ] && sleep $(( t - now ))
  : > "$log"
  gdb -p "$pid" -batch -ex 'call (void)malloc_stats()' > /dev/null 2>&1
  { grep -E 'VmRSS|RssAnon|Threads' "/proc/$pid/status"; cat "$log"; } > "$pre-$t.txt"
done
