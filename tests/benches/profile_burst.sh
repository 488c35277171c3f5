#!/usr/bin/env bash
# Profiles the peer bench's workload (b) by hand: 10,000 files of 1-16 KiB in
# 100 folders renamed into agent A's folder, with `perf record -g` on the hub
# and both agents until B has them all (at most 60 s). Needs release binaries
# (`cargo build --release`) and perf; writes to ${WORK:-/tmp/sf-profile}.
#   perf report -i $WORK/perf.data --no-children --sort comm
#   perf report -i $WORK/perf.data --children --sort sym
set -euo pipefail
W=${WORK:-/tmp/sf-profile}
R=${SF_BIN_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/target/release}
rm -rf "$W"; mkdir -p "$W/hub" "$W/a" "$W/b" "$W/ha" "$W/hb"
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
# Each agent its own HOME: the folder registry must not remember old runs.
for side in a b; do
  HOME="$W/h$side" "$R/sf-agent" --hub http://127.0.0.1:47900 --dir "$W/$side" \
    --token-file "$W/hub/agent-token" --name "$side" --scan-interval 3600 >"$W/$side.log" 2>&1 &
  eval "PID_$side=\$!"
done
sleep 3
perf record -F 499 -g -o "$W/perf.data" -p "$HUB,$PID_a,$PID_b" -- sleep 60 >"$W/perf.log" 2>&1 &
PERF=$!
start=$(date +%s.%N)
mv "$W/src" "$W/a/bulk"
for _ in $(seq 1 600); do
  n=$( (find "$W/b/bulk" -type f 2>/dev/null || true) | wc -l)
  [ "$n" -ge 10000 ] && break
  sleep 0.1
done
echo "$n of 10000 files in B after $(echo "$(date +%s.%N) - $start" | bc) s"
kill -INT "$PERF" 2>/dev/null || true
wait "$PERF" || true
kill "$PID_a" "$PID_b" "$HUB"
