#!/usr/bin/env bash
# Builds kube-apiserver and kube-controller-manager (the k8s.io/kubernetes release
# pinned in go.mod beside this script) into a cache dir keyed by that version, and
# prints the bin dir as the last line of stdout. Returns at once when the binaries
# are already there. Exit 3: they are not there and `go` is not on PATH.
# `build.sh --node` also builds what a node runs (node.sh): kubelet, kube-scheduler and
# kube-proxy, from the same modules (go.mod requires the two modules the kubelet needs
# that the control plane does not: armon/circbuf and otelrestful, at k8s v1.34.4's versions).
# etcd: start.sh uses Debian's (apt-get install etcd-server) from PATH; when there
# is none, or MAILFLEET_ETCD=build, etcd 3.6 (pinned in etcd/go.mod) is built too.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" { print $3; exit }
  $1 == "k8s.io/kubernetes" && $2 ~ /^v/ { print $2; exit }' "$here/go.mod")"
[ -n "$version" ] || { echo "build.sh: no k8s.io/kubernetes version in $here/go.mod" >&2; exit 1; }
cache="${MAILFLEET_CACHE:-$HOME/.cache/mailfleet}"
root="$cache/kube-$version"
bin="$root/bin"
cmds=(kube-apiserver kube-controller-manager)
node_cmds=(kubelet kube-scheduler kube-proxy)
if [ "${1:-}" = --node ]; then cmds+=("${node_cmds[@]}"); fi
# The node's cluster DNS: CoreDNS (coredns/main.go, only the plugins used), cached by its version.
coredns_version="$(awk '$1 == "github.com/coredns/coredns" { print $2; exit } $1 == "require" && $2 == "github.com/coredns/coredns" { print $3; exit }' "$here/coredns/go.mod")"
coredns="$cache/coredns-$coredns_version/coredns"
build_coredns() {
  [ -x "$coredns" ] && return 0
  command -v go >/dev/null 2>&1 || { echo "build.sh: go is not on PATH and $coredns is missing" >&2; exit 3; }
  echo "build.sh: building CoreDNS $coredns_version" >&2
  mkdir -p "$(dirname "$coredns")"
  (cd "$here/coredns" && GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod" CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$coredns.tmp" .) >&2
  mv -f "$coredns.tmp" "$coredns"
}
if [ "${MAILFLEET_ETCD:-}" = build ] || ! command -v etcd >/dev/null 2>&1; then cmds+=(etcd); fi

have_all() {
  local c
  for c in "${cmds[@]}"; do [ -x "$bin/$c" ] || return 1; done
}

if have_all && { [ "${1:-}" != --node ] || [ -x "$coredns" ]; }; then echo "$bin"; exit 0; fi

command -v go >/dev/null 2>&1 || { echo "build.sh: go is not on PATH and $bin is empty" >&2; exit 3; }

mkdir -p "$root"
# One build at a time per version (parallel test suites may all call this).
exec 9>"$root/.lock"
flock 9
if [ "${1:-}" = --node ]; then build_coredns; fi
if have_all; then echo "$bin"; exit 0; fi

start=$SECONDS
tmp="$(mktemp -d "$root/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
missing() { [ ! -x "$bin/$1" ]; }
kube=()
for c in kube-apiserver kube-controller-manager "${node_cmds[@]}"; do
  [[ " ${cmds[*]} " == *" $c "* ]] && missing "$c" && kube+=("k8s.io/kubernetes/cmd/$c")
done
if [ ${#kube[@]} -gt 0 ]; then
  # The same version stamps that Kubernetes' own build sets (hack/lib/version.sh),
  # so /version and the binaries' --version report the real release.
  minor="${version#v1.}"; minor="${minor%%.*}"
  ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "build.sh: building ${kube[*]##*/} $version (minutes, the first time)" >&2
  (
    cd "$here"
    GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod" CGO_ENABLED=0 \
      go build -trimpath -ldflags="$ld" -o "$tmp/" "${kube[@]}"
  ) >&2
fi
if [[ " ${cmds[*]} " == *" etcd "* ]] && missing etcd; then
  echo "build.sh: building etcd $(awk '$1 == "go.etcd.io/etcd/server/v3" { print $2 }' "$here/etcd/go.mod")" >&2
  (
    cd "$here/etcd"
    GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod" CGO_ENABLED=0 \
      go build -trimpath -ldflags="-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3
  ) >&2
fi
mkdir -p "$bin"
for c in "${cmds[@]}"; do [ ! -e "$tmp/$c" ] || mv -f "$tmp/$c" "$bin/$c"; done
echo "build.sh: built in $((SECONDS - start)) s" >&2
echo "$bin"
