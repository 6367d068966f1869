#!/usr/bin/env bash
# stop.sh DIR: stops the processes that start.sh recorded in DIR/pids: SIGTERM to
# all, SIGKILL to what is still running after STOP_GRACE seconds (default 5; a
# kube-apiserver with open watch connections can take a minute to exit by itself).
set -uo pipefail

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
pids_file="$1/pids"
# Nodes (node.sh) go first: its kubelet and kube-proxy talk to this apiserver.
for n in "$1"/node*/; do
  [ -d "$n" ] && { "$(dirname "${BASH_SOURCE[0]}")/node.sh" stop "$1" "$(basename "$n")" || true; }
done
[ -f "$pids_file" ] || exit 0

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"
dir="$(cd "$1" && pwd)"

# Only the processes still running what start.sh launched: a recorded PID may since have been
# reused by another process (is_ours in lib.sh). Checked again before every signal.
names=()
pids=()
for name in watchdog controller-manager apiserver etcd; do
  pid="$(awk -v n="$name" '$1 == n { print $2 }' "$pids_file")"
  # $$ is the watchdog itself when it runs this script after its owner exited.
  [ -n "$pid" ] && [ "$pid" != "$$" ] && is_ours "$pid" "$name" "$dir" && { names+=("$name"); pids+=("$pid"); }
done
signal() { # SIG: to every recorded process that is still ours
  local i
  for i in "${!pids[@]}"; do is_ours "${pids[$i]}" "${names[$i]}" "$dir" && kill -"$1" "${pids[$i]}" 2>/dev/null; done
  return 0
}
[ ${#pids[@]} -gt 0 ] && signal TERM
for sig in KILL ""; do
  for _ in $(seq 1 $((${STOP_GRACE:-5} * 10))); do
    left=0
    for i in "${!pids[@]}"; do is_ours "${pids[$i]}" "${names[$i]}" "$dir" && left=1; done
    [ $left = 0 ] && break 2
    sleep 0.1
  done
  [ -n "$sig" ] && signal "$sig"
done
rm -f "$pids_file"
