#!/usr/bin/env bash
# Profiles the peer bench's workload (b) by hand: `perf record -g` on the hub
# and both agents while 10,000 files of 1-16 KiB in 100 folders are renamed
# into agent A's folder. One script does the setup for both profiles: this
# is profile_moveout.sh with its perf during b (it goes on with d).
#   perf report -i ${WORK:-/tmp/sf-profile-moveout}/perf-b.data --no-children --sort comm
exec env PERF_B=1 "$(dirname "$0")/profile_moveout.sh" "$@"
