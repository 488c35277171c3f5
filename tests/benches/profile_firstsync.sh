#!/usr/bin/env bash
# The idle bench's first sync by hand, for timelines and profiles: N files
# (SF_FILES, default 100,000) of 1-4 KiB in folders of 100 already in agent
# A's folder when A first starts against an empty hub, with B (empty
# folder) already running. Prints when the hub has every file and when B
# has. The agents' info logs ($WORK/a.log, b.log) give the timeline, the
# hub's /metrics at the end ($WORK/metrics.txt) the time per route.
#   PERF=1      perf record (PERF_SECS, default 10 s) from 5 s after A starts,
#               into $WORK/perf.data
#   PERF_WHO=a|b|hub    one process only (default: all three)
#   PERF_G="--call-graph dwarf,16384"   DWARF stacks (default: -g)
# Needs release binaries (SF_BIN_DIR, default target/release) and perf.
set -euo pipefail
W=${WORK:-/tmp/sf-profile-firstsync}
R=${SF_BIN_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/target/release}
N=${SF_FILES:-100000}
pkill -f "$W/" 2>/dev/null || true
rm -rf "$W"; mkdir -p "$W/hub" "$W/a" "$W/b" "$W/ha" "$W/hb"
python3 - "$W/a" "$N" <<'PY'
import os, random, sys
random.seed(11)
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = f'{root}/d{i // 100:04}'
    if i % 100 == 0:
        os.makedirs(d, exist_ok=True)
    with open(f'{d}/f{i % 100:03}.bin', 'wb') as out:
        out.write(random.randbytes(random.randint(1024, 4096)))
PY
FOLDERS=$(( (N + 99) / 100 ))
sync
"$R/sf-hub" --listen 127.0.0.1:47910 --metrics-listen 127.0.0.1:47911 --data-dir "$W/hub" >"$W/hub.log" 2>&1 &
HUB=$!
sleep 2
start_agent() {
  HOME="$W/h$1" "$R/sf-agent" --hub http://127.0.0.1:47910 --dir "$W/$1" \
    --token-file "$W/hub/agent-token" --name "$1" --scan-interval 3600 >"$W/$1.log" 2>&1 &
}
if [ -z "${NO_B:-}" ]; then start_agent b; PID_b=$!; else PID_b=$HUB; fi
sleep 2
start=$(date +%s.%N)
echo "A starts at $(date -u +%H:%M:%S.%N)"
start_agent a; PID_a=$!
if [ "${PERF:-0}" = 1 ]; then
  (sleep 5; perf record -F 499 ${PERF_G:--g} -o "$W/perf.data" -p "$(case ${PERF_WHO:-all} in a) echo $PID_a;; b) echo $PID_b;; hub) echo $HUB;; *) echo $HUB,$PID_a,$PID_b;; esac)" -- sleep "${PERF_SECS:-10}" >"$W/perf.log" 2>&1) &
fi
uploads() { curl -s http://127.0.0.1:47911/metrics | awk '/^sync_uploads_total/ {s+=$2} END {print s+0}'; }
while [ "$(uploads)" -lt $((N + FOLDERS)) ]; do sleep 0.2; done
echo "hub has all $N files after $(echo "$(date +%s.%N) - $start" | bc) s"
[ -n "${NO_B:-}" ] || while [ "$( (find "$W/b" -path "$W/b/.sf" -prune -o -type f -print 2>/dev/null || true) | wc -l)" -lt "$N" ]; do sleep 0.5; done
echo "B has all $N files after $(echo "$(date +%s.%N) - $start" | bc) s"
for p in $PID_a $PID_b $HUB; do
  echo "pid $p: $(awk '{printf "%.1f CPU-s", ($14+$15)/100}' /proc/$p/stat), peak RSS $(awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' /proc/$p/status)"
done
curl -s http://127.0.0.1:47911/metrics > "$W/metrics.txt" || true
wait_perf() { while pgrep -f "perf record.*$W/perf.data" >/dev/null; do sleep 0.5; done; }
if [ "${PERF:-0}" = 1 ]; then wait_perf; fi
kill "$PID_a" "$PID_b" "$HUB"
