#!/usr/bin/env bash
# start.sh DIR: a local Kubernetes control plane (etcd, kube-apiserver,
# kube-controller-manager), all on 127.0.0.1 and free ports, state and logs in DIR.
# Writes DIR/kubeconfig (admin, system:masters), DIR/pids ("NAME PID" lines) and
# DIR/server; returns once /readyz is ok and the controller-manager is working.
# No kubelet, scheduler or kube-proxy: Pods are created but stay Pending.
# Env: KUBE_BIN (default: what build.sh prints), ETCD (etcd binary; default
# KUBE_BIN/etcd if built there, else etcd on PATH), MAILFLEET_CLUSTER_OWNER
# (a pid: when it exits, stop.sh DIR runs by itself), SERVICE_CIDR (a /24, default
# 10.0.0.0/24; its first address is the in-cluster kubernetes Service and in the serving
# certificate), APISERVER_BIND (default 127.0.0.1; node.sh needs 0.0.0.0 so that a node in its
# own network namespace reaches the apiserver through its veth).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
mkdir -p "$1"
dir="$(cd "$1" && pwd)"
[ ! -s "$dir/pids" ] || { echo "start.sh: $dir/pids exists: run stop.sh $dir first" >&2; exit 1; }
started=$SECONDS
bin="${KUBE_BIN:-$("$here/build.sh" | tail -n1)}"
export KUBE_BIN="$bin"
etcd="${ETCD:-}"
if [ -z "$etcd" ]; then
  if [ -x "$bin/etcd" ]; then etcd="$bin/etcd"; else etcd="$(command -v etcd || true)"; fi
fi
[ -x "$etcd" ] || { echo "start.sh: no etcd (apt-get install etcd-server, or set ETCD)" >&2; exit 1; }
for t in openssl curl python3; do
  command -v "$t" >/dev/null || { echo "start.sh: $t is needed" >&2; exit 1; }
done

# Stop what was started so far if anything below fails.
ok=0
trap '[ $ok = 1 ] || { echo "start.sh: failed, logs in $dir" >&2; "$here/stop.sh" "$dir" >/dev/null 2>&1 || true; }' EXIT

# --- free loopback ports (outside the ephemeral range: see lib.sh) ---------
read -r etcd_port peer_port api_port < <(free_ports 3)

service_cidr="${SERVICE_CIDR:-10.0.0.0/24}"
# A /24 by default (254 Service IPs); larger ones (down to /16) for benches with hundreds of
# pools: each pool takes two ClusterIPs, so 200 pools do not fit in a /24 (bench/domains-10k.ts).
[[ "$service_cidr" =~ ^([0-9]+\.[0-9]+\.[0-9]+)\.0/(1[6-9]|2[0-4])$ ]] || { echo "start.sh: SERVICE_CIDR must be a.b.c.0/N with N from 16 to 24" >&2; exit 1; }
service_ip="${BASH_REMATCH[1]}.1"

# --- certificates -----------------------------------------------------------
pki="$dir/pki"
mkdir -p "$pki"
(
  cd "$pki"
  key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
  key ca.key
  openssl req -x509 -new -key ca.key -subj "/CN=mailfleet-test-ca" -days 3650 -out ca.crt \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"
  sign() { # name subject extensions
    key "$1.key"
    openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
    printf '%s\n' "$3" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
  }
  client='basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth'
  sign apiserver "/CN=kube-apiserver" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:$service_ip"
  sign admin "/O=system:masters/CN=admin" "$client"
  sign controller-manager "/CN=system:kube-controller-manager" "$client"
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
  openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
)

server="https://127.0.0.1:$api_port"
kubeconfig() { # file user
  local b64="base64 -w0"
  cat > "$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: mailfleet-test
  cluster:
    server: $server
    certificate-authority-data: $($b64 < "$pki/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $($b64 < "$pki/$2.crt")
    client-key-data: $($b64 < "$pki/$2.key")
contexts:
- name: mailfleet-test
  context: { cluster: mailfleet-test, user: $2 }
current-context: mailfleet-test
EOF
}
kubeconfig "$dir/kubeconfig" admin
kubeconfig "$dir/controller-manager.kubeconfig" controller-manager
echo "$server" > "$dir/server"

# --- processes --------------------------------------------------------------
: > "$dir/pids"
launch() { # name args... : background, own log, no terminal, pid recorded
  local name="$1"; shift
  "$@" </dev/null >>"$dir/$name.log" 2>&1 &
  echo "$name $!" >> "$dir/pids"
}

launch etcd "$etcd" --name default --data-dir "$dir/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "default=http://127.0.0.1:$peer_port" --listen-metrics-urls "" \
  --quota-backend-bytes $((2 * 1024 * 1024 * 1024)) --snapshot-count 10000

# kube-apiserver's flags go to a file so that restart-apiserver.sh can reuse them.
cat > "$dir/apiserver.args" <<EOF
--etcd-servers=http://127.0.0.1:$etcd_port
--bind-address=${APISERVER_BIND:-127.0.0.1}
--advertise-address=127.0.0.1
--secure-port=$api_port
--tls-cert-file=$pki/apiserver.crt
--tls-private-key-file=$pki/apiserver.key
--client-ca-file=$pki/ca.crt
--authorization-mode=RBAC
--service-account-issuer=https://kubernetes.default.svc.cluster.local
--service-account-key-file=$pki/sa.pub
--service-account-signing-key-file=$pki/sa.key
--service-cluster-ip-range=$service_cidr
--endpoint-reconciler-type=none
--kubelet-client-certificate=$pki/admin.crt
--kubelet-client-key=$pki/admin.key
--kubelet-certificate-authority=$pki/ca.crt
--kubelet-preferred-address-types=InternalIP,Hostname
--profiling=false
--v=1
EOF
"$here/restart-apiserver.sh" --start-only "$dir"

launch controller-manager "$bin/kube-controller-manager" \
  --kubeconfig="$dir/controller-manager.kubeconfig" \
  --controllers='*' --use-service-account-credentials \
  --leader-elect=false \
  --secure-port=0 --bind-address=127.0.0.1 \
  --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
  --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
  --service-cluster-ip-range="$service_cidr" \
  --profiling=false --v=1

# kube-controller-manager has no port of its own here (--secure-port=0): it is taken
# as up once its service-account controller has made kube-system's "default" account.
deadline=$((SECONDS + 60))
until curl -sf --max-time 2 --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
    "$server/api/v1/namespaces/kube-system/serviceaccounts/default" >/dev/null; do
  pid="$(awk '$1 == "controller-manager" { print $2 }' "$dir/pids")"
  kill -0 "$pid" 2>/dev/null || { echo "start.sh: kube-controller-manager exited; see $dir/controller-manager.log" >&2; exit 1; }
  [ $SECONDS -lt $deadline ] || { echo "start.sh: kube-controller-manager not working after 60 s" >&2; exit 1; }
  sleep 0.2
done

if [ -n "${MAILFLEET_CLUSTER_OWNER:-}" ]; then
  # Watchdog: take the cluster down when the owner process is gone, even if it crashed.
  owner="$MAILFLEET_CLUSTER_OWNER"
  setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec "$2" "$3"' \
    watchdog "$owner" "$here/stop.sh" "$dir" </dev/null >>"$dir/watchdog.log" 2>&1 &
  echo "watchdog $!" >> "$dir/pids"
fi

ok=1
echo "start.sh: cluster up at $server in $((SECONDS - started)) s; kubeconfig $dir/kubeconfig" >&2
echo "$dir/kubeconfig"
