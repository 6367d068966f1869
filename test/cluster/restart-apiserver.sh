#!/usr/bin/env bash
# restart-apiserver.sh DIR: stops the kube-apiserver of the cluster that start.sh
# made in DIR, starts it again with the same flags and port, and waits for /readyz.
# (start.sh calls it with --start-only for the first start.)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"
start_only=0
if [ "${1:-}" = "--start-only" ]; then start_only=1; shift; fi
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir="$(cd "$1" && pwd)"
bin="${KUBE_BIN:-$("$here/build.sh" | tail -n1)}"
server="$(cat "$dir/server")"
timeout="${APISERVER_TIMEOUT:-120}"

if [ $start_only = 0 ]; then
  # SIGTERM, then SIGKILL after RESTART_GRACE seconds (default 2): with watch
  # connections open, kube-apiserver stops listening at once but takes up to its
  # request timeout (60 s) to exit.
  # Signals go only to a PID that still runs this cluster's kube-apiserver (is_ours, lib.sh):
  # the recorded one may have exited and its number been reused.
  alive() { is_ours "$1" apiserver "$dir"; }
  old="$(awk '$1 == "apiserver" { print $2 }' "$dir/pids")"
  if [ -n "$old" ] && alive "$old" && kill -TERM "$old" 2>/dev/null; then
    for _ in $(seq 1 $((${RESTART_GRACE:-2} * 10))); do alive "$old" || break; sleep 0.1; done
    if alive "$old"; then kill -KILL "$old" 2>/dev/null || true; fi
    for _ in $(seq 1 50); do alive "$old" || break; sleep 0.1; done
  fi
  echo "--- restart $(date -u +%FT%TZ)" >> "$dir/apiserver.log"
fi

mapfile -t args < "$dir/apiserver.args"
"$bin/kube-apiserver" "${args[@]}" </dev/null >>"$dir/apiserver.log" 2>&1 &
pid=$!
{ grep -v '^apiserver ' "$dir/pids" || true; echo "apiserver $pid"; } > "$dir/pids.new"
mv "$dir/pids.new" "$dir/pids"

deadline=$((SECONDS + timeout))
until [ "$(curl -s --max-time 2 --cacert "$dir/pki/ca.crt" "$server/readyz" 2>/dev/null)" = "ok" ]; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "restart-apiserver.sh: kube-apiserver exited; tail of $dir/apiserver.log:" >&2
    tail -n 20 "$dir/apiserver.log" >&2
    exit 1
  fi
  if [ $SECONDS -ge $deadline ]; then
    echo "restart-apiserver.sh: kube-apiserver not ready after ${timeout}s; see $dir/apiserver.log" >&2
    exit 1
  fi
  sleep 0.2
done
