#!/usr/bin/env bash
# The peer bench's workloads b and d by hand, for timelines and profiles:
# 10,000 files of 1-16 KiB in 100 folders renamed into agent A's folder,
# then 10 files deleted per folder, then the rest of the tree moved out of
# the folder; prints how long B took for each. The agents' info logs
# ($WORK/a.log, b.log: one line per batch) give the timeline, the hub's
# /metrics at the end ($WORK/metrics.txt) the time per route.
#   PERF=1      perf record (5 s) during the move-out, into $WORK/perf.data
#   PERF_B=1    perf record (7 s) during b, into $WORK/perf-b.data
#   PERF_WHO=a|b|hub    one process only (default: all three)
#   PERF_G="--call-graph dwarf,16384"   DWARF stacks (default: -g)
# Needs release binaries (SF_BIN_DIR, default target/release) and perf.
# B's progress during b is polled with find, which costs CPU of its own:
# compare binaries back to back, and take b's figure from the peer bench.
set -euo pipefail
W=${WORK:-/tmp/sf-profile-moveout}
R=${SF_BIN_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/target/release}
pkill -f "$W/" 2>/dev/null || true
rm -rf "$W"; mkdir -p "$W/hub" "$W/a" "$W/b" "$W/ha" "$W/hb" "$W/out"
python3 - "$W/src" <<'PY'
import os, random, sys
random.seed(3)
for d in range(100):
    os.makedirs(f'{sys.argv[1]}/d{d:02}', exist_ok=True)
    for f in range(100):
        with open(f'{sys.argv[1]}/d{d:02}/f{f:03}.bin', 'wb') as out:
            out.write(random.randbytes(random.randint(1024, 16384)))
PY
"$R/sf-hub" --listen 127.0.0.1:47900 --metrics-listen 127.0.0.1:47901 --data-dir "$W/hub" >"$W/hub.log" 2>&1 &
HUB=$!
sleep 2
for side in a b; do
  HOME="$W/h$side" "$R/sf-agent" --hub http://127.0.0.1:47900 --dir "$W/$side" \
    --token-file "$W/hub/agent-token" --name "$side" --scan-interval 3600 >"$W/$side.log" 2>&1 &
  eval "PID_$side=\$!"
done
sleep 3
# CPU seconds (user + system) of the hub, A and B so far.
cpu() {
  local out="" pid
  for pid in $HUB $PID_a $PID_b; do
    out="$out $(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$pid/stat")"
  done
  echo "$out"
}
# Prints what each process spent since the `cpu` reading in $1.
cpu_since() {
  paste -d' ' <(echo "$1" | tr ' ' '\n' | sed '/^$/d') <(cpu | tr ' ' '\n' | sed '/^$/d') |
    awk 'BEGIN { split("hub A B", who) } { printf "%s %.2f  ", who[NR], $2 - $1 } END { print "CPU-s" }'
}
if [ -n "${PERF_B:-}" ]; then
perf record -F 499 ${PERF_G:--g} -o "$W/perf-b.data" -p "$(case ${PERF_WHO:-all} in a) echo $PID_a;; b) echo $PID_b;; hub) echo $HUB;; *) echo $HUB,$PID_a,$PID_b;; esac)" -- sleep 7 >"$W/perf-b.log" 2>&1 &
sleep 0.3
fi
before=$(cpu)
start=$(date +%s.%N)
mv "$W/src" "$W/a/bulk"
for _ in $(seq 1 600); do
  n=$( (find "$W/b/bulk" -type f 2>/dev/null || true) | wc -l)
  [ "$n" -ge 10000 ] && break
  sleep 0.05
done
echo "b: $n of 10000 files in B after $(echo "$(date +%s.%N) - $start" | bc) s"
echo "   $(cpu_since "$before")"
sleep 2
start=$(date +%s.%N)
for d in $(seq -w 0 99); do rm -f "$W"/a/bulk/d$d/f00?.bin; done
while [ -e "$W/b/bulk/d99/f009.bin" ] || [ -e "$W/b/bulk/d00/f000.bin" ]; do sleep 0.02; done
echo "d delete 1000: gone in B after $(echo "$(date +%s.%N) - $start" | bc) s"
sleep 3
if [ "${PERF:-0}" = 1 ]; then
perf record -F 499 ${PERF_G:--g} -o "$W/perf.data" -p "$(case ${PERF_WHO:-all} in a) echo $PID_a;; b) echo $PID_b;; hub) echo $HUB;; *) echo $HUB,$PID_a,$PID_b;; esac)" -- sleep 5 >"$W/perf.log" 2>&1 &
sleep 0.5
fi
echo "move at $(date -u +%H:%M:%S.%N)"
before=$(cpu)
start=$(date +%s.%N)
mv "$W/a/bulk" "$W/out/bulk"
while [ -e "$W/b/bulk" ]; do sleep 0.02; done
echo "d move-out: gone in B after $(echo "$(date +%s.%N) - $start" | bc) s"
sleep 1
echo "   $(cpu_since "$before") (until 1 s after)"
if [ "${PERF:-0}" != 0 ]; then sleep 4; fi
sleep 1
curl -s http://127.0.0.1:47901/metrics > "$W/metrics.txt" || true
kill "$PID_a" "$PID_b" "$HUB"
