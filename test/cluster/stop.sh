#!/usr/bin/env bash
# stop.sh DIR: stops the processes that start.sh recorded in DIR/pids: SIGTERM to
# all, SIGKILL to what is still running after STOP_GRACE seconds (default 5; a
# kube-apiserver with open watch connections can take a minute to exit by itself).
set -uo pipefail

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
pids_file="$1/pids"
[ -f "$pids_file" ] || exit 0

alive() { # a zombie (exited, not yet reaped) counts as gone
  kill -0 "$1" 2>/dev/null && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null
}
pids=()
for name in watchdog controller-manager apiserver etcd; do
  pid="$(awk -v n="$name" '$1 == n { print $2 }' "$pids_file")"
  # $$ is the watchdog itself when it runs this script after its owner exited.
  [ -n "$pid" ] && [ "$pid" != "$$" ] && pids+=("$pid")
done
[ ${#pids[@]} -gt 0 ] && kill -TERM "${pids[@]}" 2>/dev/null
for sig in KILL ""; do
  for _ in $(seq 1 $((${STOP_GRACE:-5} * 10))); do
    left=()
    for pid in ${pids[@]+"${pids[@]}"}; do alive "$pid" && left+=("$pid"); done
    [ ${#left[@]} -eq 0 ] && break 2
    sleep 0.1
  done
  [ -n "$sig" ] && kill -"$sig" "${left[@]}" 2>/dev/null
done
rm -f "$pids_file"
