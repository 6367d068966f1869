#!/usr/bin/env bash
# node.sh net|runtime|start|stop DIR: a real Kubernetes node for the control plane that start.sh runs in
# DIR (docs/test-node.md). Every node lives in its own network namespace, so several test
# clusters can run side by side and stopping one removes all it changed in the network at once:
#
#   host (test process, etcd, kube-apiserver on 0.0.0.0, controller-manager, kube-scheduler)
#     mf<N>h 198.18.N.1/24  ── veth ──  eth0 198.18.N.2/24 (node IP), in netns mf<N>:
#       containerd (CRI, private root/state/socket) + runc, kubelet (cgroupfs, cgroup root
#       /mailfleet-N), kube-proxy (iptables), bridge cni0 with pods on 10.244.N.0/24,
#       198.19.N.10-17 on the node's lo (addresses hostNetwork relays bind as their source)
#   host routes: 10.244.N.0/24 (pods), 10.96.N.0/24 (Services), 198.19.N.0/24 (egress) via 198.18.N.2
# The node, its host end and the egress addresses are in 198.18.0.0/15 (RFC 2544, benchmarking
# networks): routed nowhere, yet not private (10/8, 172.16/12, 192.168/16), so a relay contacts a
# sink MX on the host end and sends from an egress address exactly as it would on the internet
# (it refuses private MX addresses: delivery.allowPrivateMx).
#
#   node.sh net DIR    claims a free N (creating the veth is the atomic claim), makes the netns,
#                      writes DIR/node/net.env; run before start.sh (SERVICE_CIDR comes from it)
#   node.sh runtime DIR  containerd with the images imported (image.sh); needs no control plane,
#                      so it may run while start.sh does (node.sh start runs it if not done)
#   node.sh start DIR  after start.sh: kubelet, kube-proxy,
#                      kube-scheduler; the kubernetes Service's endpoint, a StorageClass with
#                      local PersistentVolumes; returns when the node is Ready
#   node.sh stop DIR   stops all of it and removes containers, shims, mounts, the netns (with its
#                      bridge, veths and iptables rules) and the cgroups; safe to run twice
# Env: KUBE_BIN (default: build.sh --node), MAILFLEET_IMAGES (image.sh's output, to skip it),
# MAILFLEET_REPO (the checkout whose Dockerfile is built; default: this one), PVS (default 8).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"
[ $# -eq 2 ] || [ $# -eq 3 ] || { echo "usage: $0 net|runtime|start|stop DIR [NAME]" >&2; exit 2; }
action="$1"
mkdir -p "$2"
dir="$(cd "$2" && pwd)"
# NAME: "node" (default) is the cluster's first node, which also runs the scheduler and cluster
# DNS and writes the cluster-wide objects; others ("node2", …) join it. State in DIR/NAME.
name="${3:-node}"
[[ "$name" =~ ^node[0-9]*$ ]] || { echo "node.sh: NAME must be node, node2, node3, …" >&2; exit 2; }
nd="$dir/$name"
NODE_NAME="mailfleet-$name"
primary=0; [ "$name" = node ] && primary=1

netenv() { # the addresses of node N (Service CIDR and cluster DNS: the first node's)
  local n="$1" c="$1"
  [ $primary = 1 ] || c="$(awk -F= '$1 == "N" { print $2 }' "$dir/node/net.env")"
  cat <<EOF
N=$n
NETNS=mf$n
HOST_LINK=mf${n}h
HOST_IP=198.18.$n.1
NODE_IP=198.18.$n.2
POD_CIDR=10.244.$n.0/24
SERVICE_CIDR=10.96.$c.0/24
SERVICE_IP=10.96.$c.1
DNS_IP=10.96.$c.10
EGRESS_CIDR=198.19.$n.0/24
EGRESS_IPS="$(echo 198.19.$n.{10..17})"
NODE_NAME=$NODE_NAME
EOF
}

# Only the network namespace: the node shares the host's mount namespace (kubelet's volume mounts
# must be visible to containerd, and both need the host's /sys/fs/cgroup), unlike `ip netns exec`.
# nsenter execs the command, so a recorded $! is the program itself.
in_ns() { nsenter --net="/run/netns/$NETNS" -- "$@"; }

net_up() {
  mkdir -p "$nd"
  [ ! -s "$nd/net.env" ] || { echo "node.sh: $nd/net.env exists: node.sh stop $dir $name first" >&2; exit 1; }
  [ $primary = 1 ] || [ -s "$dir/node/net.env" ] || { echo "node.sh: node.sh net $dir (the first node) first" >&2; exit 1; }
  local n claimed=
  for n in $(shuf -i 1-250); do
    # Creating the host end is the claim: it fails when another node (or a leftover) has N.
    if ip link add "mf${n}h" type veth peer name "mf${n}n" 2>/dev/null; then claimed=$n; break; fi
  done
  [ -n "$claimed" ] || { echo "node.sh: no free node index (ip link shows mf*h for all 250)" >&2; exit 1; }
  netenv "$claimed" > "$nd/net.env"
  . "$nd/net.env"
  ip netns add "$NETNS"
  ip link set "mf${N}n" netns "$NETNS"
  ip -n "$NETNS" link set "mf${N}n" name eth0
  ip -n "$NETNS" addr add "$NODE_IP/24" dev eth0
  ip -n "$NETNS" link set lo up
  ip -n "$NETNS" link set eth0 up
  ip -n "$NETNS" route add default via "$HOST_IP"
  # Egress addresses on the node's loopback (this kernel has no dummy links): local to the node,
  # routed to it from the host, so a relay that binds one is seen by the host's sink from it.
  local a
  for a in $EGRESS_IPS; do ip -n "$NETNS" addr add "$a/32" dev lo; done
  ip addr add "$HOST_IP/24" dev "$HOST_LINK"
  ip link set "$HOST_LINK" up
  local c routes=("$POD_CIDR" "$EGRESS_CIDR")
  [ $primary = 1 ] && routes+=("$SERVICE_CIDR")   # Services: through the first node's kube-proxy
  for c in "${routes[@]}"; do ip route add "$c" via "$NODE_IP" dev "$HOST_LINK"; done
  # Nodes of one cluster reach each other's pods through the host: forwarding on for packets
  # that arrive from this link only (IPv4 decides by the incoming interface), never ip_forward.
  sysctl -q -w "net.ipv4.conf.$HOST_LINK.forwarding=1"
  # The node forwards between its bridge and eth0, and bridged pod traffic goes through iptables
  # (kube-proxy's rules for a Service whose endpoint is on the same bridge). Both are per netns.
  in_ns sysctl -q -w net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
  echo "$N"
}

cgroup_dirs() { # every cgroup v1 hierarchy's dir for this node (and the unified one, if mounted)
  local h
  for h in /sys/fs/cgroup/*/; do
    mountpoint -q "$h" && echo "${h%/}/mailfleet-$N"
  done
}

launch() { # name args...: background, own log, no terminal, pid recorded in node/pids
  local name="$1"; shift
  "$@" </dev/null >>"$nd/$name.log" 2>&1 &
  echo "$name $!" >> "$nd/pids"
}

kubeconfig_for_node() { # the admin identity, through the veth (the apiserver listens on 0.0.0.0)
  local port; port="$(sed 's/.*://' "$dir/server")"
  sed -e "s#server: https://127.0.0.1:$port#server: https://$HOST_IP:$port\n    tls-server-name: localhost#" \
    "$dir/kubeconfig" > "$nd/node.kubeconfig"
}

runtime() { # containerd with the images, in the netns: needs no control plane (runs beside start.sh)
  [ -s "$nd/net.env" ] || { echo "node.sh: run node.sh net $dir first" >&2; exit 1; }
  [ ! -s "$nd/pids" ] || { echo "node.sh: $nd/pids exists: node.sh stop $dir first" >&2; exit 1; }
  . "$nd/net.env"
  local t
  for t in containerd runc ctr nsenter mountpoint; do
    command -v "$t" >/dev/null || { echo "node.sh: $t is needed (apt-get install containerd runc containernetworking-plugins)" >&2; exit 1; }
  done
  [ -x /usr/lib/cni/bridge ] || { echo "node.sh: /usr/lib/cni/bridge missing (apt-get install containernetworking-plugins)" >&2; exit 1; }
  local images="${MAILFLEET_IMAGES:-}"
  [ -n "$images" ] || images="$("$here/image.sh" "${MAILFLEET_REPO:-$here/../..}" | tail -n3)"
  local pause_image; pause_image="$(echo "$images" | awk 'NR == 1 { print $1 }')"
  ok=0
  trap '[ $ok = 1 ] || { echo "node.sh: runtime failed, logs in $nd" >&2; stop >/dev/null 2>&1 || true; }' EXIT
  : > "$nd/pids"

  # --- containerd + CNI ------------------------------------------------------------------------
  # containerd's root and state on a tmpfs: an unpacked app image is ~20k files, and deleting
  # them from disk took 13 s of every stop on a busy 2-core machine; unmounting is instant.
  mkdir -p "$nd/containerd" "$nd/cni/net.d"
  mount -t tmpfs -o size=4g,mode=0700 mailfleet-containerd "$nd/containerd"
  cat > "$nd/containerd/config.toml" <<EOF
version = 2
root = "$nd/containerd/root"
state = "$nd/containerd/state"
[grpc]
  address = "$nd/containerd/containerd.sock"
[ttrpc]
  address = "$nd/containerd/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$nd/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image"
  netns_mounts_under_state_dir = true
  # Root here lacks CAP_SYS_RESOURCE: runc cannot give a container the oom_score_adj below 0
  # that CRI asks for (-998), and every sandbox fails with "can't get final child's PID from pipe".
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$nd/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$nd/cni/net.d"
EOF
  cat > "$nd/cni/net.d/10-mailfleet.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "mailfleet", "plugins": [{"type": "bridge", "bridge": "cni0", "isGateway": true,
 "ipMasq": false, "hairpinMode": true, "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]],
 "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$nd/cni/ipam"}}]}
EOF
  local sock="$nd/containerd/containerd.sock"
  launch containerd nsenter --net="/run/netns/$NETNS" -- containerd --config "$nd/containerd/config.toml"
  local deadline=$((SECONDS + 30))
  until ctr -a "$sock" version >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { echo "node.sh: containerd not up after 30 s; see $nd/containerd.log" >&2; exit 1; }
    sleep 0.2
  done
  local name tar
  while read -r name tar; do
    [[ "$name" == docker.io/library/node:* ]] && continue   # the app image carries its layers
    ctr -a "$sock" -n k8s.io images import "$tar" >/dev/null
  done <<< "$images"

  ok=1
  touch "$nd/runtime.ok"
}

start() {
  [ -s "$nd/net.env" ] || { echo "node.sh: run node.sh net $dir $name (before start.sh) first" >&2; exit 1; }
  [ -s "$dir/server" ] || { echo "node.sh: no control plane in $dir (start.sh)" >&2; exit 1; }
  local started=$SECONDS t
  [ -f "$nd/runtime.ok" ] || (runtime)
  . "$nd/net.env"
  local bin; bin="${KUBE_BIN:-$("$here/build.sh" --node | tail -n1)}"
  for t in kubelet kube-proxy kube-scheduler; do
    [ -x "$bin/$t" ] || bin="$("$here/build.sh" --node | tail -n1)"
  done
  local kubectl; kubectl="$("$here/tools.sh" | tail -n1)/kubectl"
  local sock="$nd/containerd/containerd.sock"
  ok=0
  trap '[ $ok = 1 ] || { echo "node.sh: start failed, logs in $nd" >&2; stop >/dev/null 2>&1 || true; }' EXIT

  # --- kubelet serving certificate, signed by the cluster CA (the apiserver checks it) -------
  local pki="$dir/pki"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/kubelet.key" 2>/dev/null
  openssl req -new -key "$pki/kubelet.key" -subj "/CN=$NODE_NAME" -out "$pki/kubelet.csr"
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:%s,DNS:%s\n' \
    "$NODE_IP" "$NODE_NAME" > "$pki/kubelet.ext"
  openssl x509 -req -in "$pki/kubelet.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 3650 \
    -extfile "$pki/kubelet.ext" -out "$pki/kubelet.crt" 2>/dev/null
  rm -f "$pki/kubelet.csr" "$pki/kubelet.ext"
  kubeconfig_for_node

  # --- kubelet -----------------------------------------------------------------------------------
  # Its cgroup root is this node's own, in every hierarchy (cgroup v1 here); a new cpuset cgroup
  # has no CPUs or memory nodes until given its parent's.
  local cg
  for cg in $(cgroup_dirs); do
    mkdir -p "$cg"
    if [ -f "$cg/cpuset.cpus" ]; then
      cat "$(dirname "$cg")/cpuset.cpus" > "$cg/cpuset.cpus"
      cat "$(dirname "$cg")/cpuset.mems" > "$cg/cpuset.mems"
    fi
  done
  echo "nameserver $HOST_IP" > "$nd/resolv.conf"
  mkdir -p "$nd/kubelet"
  cat > "$nd/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://$sock
# cgroup v1 (docs/test-node.md): cgroupfs driver, and 1.34 must be told not to refuse v1.
cgroupDriver: cgroupfs
failCgroupV1: false
cgroupRoot: /mailfleet-$N
failSwapOn: false
authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: $dir/pki/ca.crt } }
authorization: { mode: Webhook }
tlsCertFile: $dir/pki/kubelet.crt
tlsPrivateKeyFile: $dir/pki/kubelet.key
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
podCIDR: $POD_CIDR
# Cluster DNS: CoreDNS in the node's netns behind the kube-dns Service; names outside
# cluster.local go on to the host end of the veth (this resolv.conf), where a test may run
# dnsmasq on port 53.
clusterDNS: [$DNS_IP]
resolvConf: $nd/resolv.conf
# Container logs here, not /var/log/pods (the kubelet still links them from /var/log/containers).
podLogsDir: $nd/pod-logs
clusterDomain: cluster.local
# ConfigMap and Secret volumes are refreshed on each pod sync: 5 s instead of 1 min (an edit shows
# in a pod after ~7 s; docs/test-node.md).
syncFrequency: 5s
imageGCHighThresholdPercent: 100
evictionHard: { memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1% }
EOF
  mkdir -p "$nd/kubelet/root"
  launch kubelet nsenter --net="/run/netns/$NETNS" -- "$bin/kubelet" --config="$nd/kubelet/config.yaml" --kubeconfig="$nd/node.kubeconfig" \
    --root-dir="$nd/kubelet/root" --cert-dir="$nd/kubelet/certs" --hostname-override="$NODE_NAME" \
    --node-ip="$NODE_IP" --v=1

  # --- kube-proxy (iptables mode, inside the netns) ---------------------------------------------
  cat > "$nd/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: { kubeconfig: $nd/node.kubeconfig }
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_CIDR
bindAddress: 0.0.0.0
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Root without CAP_SYS_RESOURCE cannot lower its oom_score_adj; conntrack table size is a
# host-wide setting: leave both alone.
oomScoreAdj: 0
conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s }
iptables: { minSyncPeriod: 0s, syncPeriod: 30s }
EOF
  launch kube-proxy nsenter --net="/run/netns/$NETNS" -- "$bin/kube-proxy" --config="$nd/kube-proxy.yaml" --v=1

  # --- cluster DNS: CoreDNS in the netns (no image to run it as a pod), behind kube-dns -----------
  if [ $primary = 1 ]; then
  local coredns_version; coredns_version="$(awk '$1 == "require" && $2 == "github.com/coredns/coredns" { print $3; exit }
    $1 == "github.com/coredns/coredns" { print $2; exit }' "$here/coredns/go.mod")"
  local coredns="${MAILFLEET_CACHE:-$HOME/.cache/mailfleet}/coredns-$coredns_version/coredns"
  [ -x "$coredns" ] || "$here/build.sh" --node >/dev/null
  cat > "$nd/Corefile" <<EOF
.:53 {
    bind $NODE_IP
    errors
    ready 127.0.0.1:8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $nd/node.kubeconfig
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    forward . $HOST_IP
    cache 5
}
EOF
  launch coredns nsenter --net="/run/netns/$NETNS" -- "$coredns" -conf "$nd/Corefile"

  # --- kube-scheduler (on the host, like the rest of the control plane) ---------------------------
  launch scheduler "$bin/kube-scheduler" --kubeconfig="$dir/kubeconfig" --leader-elect=false --secure-port=0 --v=1
  fi

  export KUBECONFIG="$dir/kubeconfig" KUBECACHEDIR="$dir/kube-cache"
  deadline=$((SECONDS + 60))
  until "$kubectl" get node "$NODE_NAME" >/dev/null 2>&1; do
    local pid; pid="$(awk '$1 == "kubelet" { print $2 }' "$nd/pids")"
    kill -0 "$pid" 2>/dev/null || { echo "node.sh: kubelet exited; tail of $nd/kubelet.log:" >&2; tail -n 20 "$nd/kubelet.log" >&2; exit 1; }
    [ $SECONDS -lt $deadline ] || { echo "node.sh: node $NODE_NAME not registered after 60 s; see $nd/kubelet.log" >&2; exit 1; }
    sleep 0.5
  done
  "$kubectl" wait --for=condition=Ready "node/$NODE_NAME" --timeout=60s >/dev/null

  # --- objects the node needs --------------------------------------------------------------------
  # The in-cluster API (https://SERVICE_IP:443): start.sh runs the apiserver with
  # --endpoint-reconciler-type=none, so its endpoint is written here: the host end of the veth.
  local port; port="$(sed 's/.*://' "$dir/server")"
  mkdir -p "$nd/pv"
  {
    [ $primary = 1 ] && cat <<EOF
apiVersion: v1
kind: Endpoints
metadata: { name: kubernetes, namespace: default, labels: { endpointslice.kubernetes.io/skip-mirror: "true" } }
subsets: [{ addresses: [{ ip: $HOST_IP }], ports: [{ name: https, port: $port, protocol: TCP }] }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: kubernetes, namespace: default, labels: { kubernetes.io/service-name: kubernetes } }
addressType: IPv4
endpoints: [{ addresses: [$HOST_IP], conditions: { ready: true } }]
ports: [{ name: https, port: $port, protocol: TCP }]
---
apiVersion: v1
kind: Service
metadata: { name: kube-dns, namespace: kube-system, labels: { k8s-app: kube-dns } }
spec:
  clusterIP: $DNS_IP
  ports: [{ name: dns, port: 53, protocol: UDP }, { name: dns-tcp, port: 53, protocol: TCP }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: kube-dns, namespace: kube-system, labels: { kubernetes.io/service-name: kube-dns } }
addressType: IPv4
endpoints: [{ addresses: [$NODE_IP], conditions: { ready: true } }]
ports: [{ name: dns, port: 53, protocol: UDP }, { name: dns-tcp, port: 53, protocol: TCP }]
EOF
    cat <<EOF
---
# Local PersistentVolumes bound when a pod needs them (WaitForFirstConsumer), kept on release
# (a relay's queue outlives its pod).
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: { name: local, annotations: { storageclass.kubernetes.io/is-default-class: "true" } }
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Retain
EOF
    local i
    for i in $(seq 1 "${PVS:-8}"); do
      mkdir -p "$nd/pv/pv$i"
      cat <<EOF
---
apiVersion: v1
kind: PersistentVolume
metadata: { name: local-$name-pv$i }
spec:
  capacity: { storage: 100Gi }
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: local
  local: { path: $nd/pv/pv$i }
  nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: kubernetes.io/hostname, operator: In, values: [$NODE_NAME] }] }] } }
EOF
    done
  } > "$nd/objects.yaml"
  "$kubectl" apply -f "$nd/objects.yaml" 2>&1 >/dev/null | { grep -v "v1 Endpoints is deprecated" >&2 || true; }
  deadline=$((SECONDS + 30))
  until [ $primary = 0 ] || [ "$(in_ns curl -s --max-time 2 http://127.0.0.1:8181/ready 2>/dev/null)" = OK ]; do
    pid="$(awk '$1 == "coredns" { print $2 }' "$nd/pids")"
    kill -0 "$pid" 2>/dev/null || { echo "node.sh: CoreDNS exited:" >&2; tail -n 5 "$nd/coredns.log" >&2; exit 1; }
    [ $SECONDS -lt $deadline ] || { echo "node.sh: CoreDNS not ready after 30 s; see $nd/coredns.log" >&2; exit 1; }
    sleep 0.2
  done
  ok=1
  echo "node.sh: node $NODE_NAME Ready ($NODE_IP, netns $NETNS) in $((SECONDS - started)) s" >&2
}

stop_pids() { # names...: SIGTERM, then SIGKILL after STOP_GRACE seconds (default 5)
  [ -f "$nd/pids" ] || return 0
  local names=() pids=() name pid i
  for name in "$@"; do
    pid="$(awk -v n="$name" '$1 == n { print $2 }' "$nd/pids")"
    [ -n "$pid" ] && is_ours "$pid" "$name" "$dir" && { names+=("$name"); pids+=("$pid"); }
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  for i in "${!pids[@]}"; do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
  local sig
  for sig in KILL ""; do
    for _ in $(seq 1 $((${STOP_GRACE:-5} * 10))); do
      local left=0
      for i in "${!pids[@]}"; do is_ours "${pids[$i]}" "${names[$i]}" "$dir" && left=1; done
      [ $left = 0 ] && return 0
      sleep 0.1
    done
    [ -n "$sig" ] && for i in "${!pids[@]}"; do
      is_ours "${pids[$i]}" "${names[$i]}" "$dir" && kill -"$sig" "${pids[$i]}" 2>/dev/null
    done
  done
  return 0
}

stop() {
  # Best effort, every step whatever the previous one did: a cgroup or mount may vanish while
  # it is being walked (find exits 1), and an early exit would leave the rest running.
  set +e +o pipefail
  [ -s "$nd/net.env" ] || { rm -f "$nd/pids"; return 0; }
  . "$nd/net.env"
  # 1. Nothing may start new containers: scheduler, kubelet, kube-proxy first.
  stop_pids scheduler kubelet kube-proxy coredns
  # 2. Every container process, found by this node's cgroup subtree (not by name).
  local cgs; cgs="$(cgroup_dirs)"
  local pass procs
  for pass in $(seq 1 50); do
    procs="$(for cg in $cgs; do [ -d "$cg" ] && find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null; done | sort -u)"
    [ -n "$procs" ] || break
    kill -KILL $procs 2>/dev/null || true
    sleep 0.1
  done
  # 3. containerd, then its shims (they outlive it; each names this node's socket in its arguments).
  stop_pids containerd
  local sock="$nd/containerd/containerd.sock" p
  # pgrep only finds them (one pass over /proc; a bash loop forking per process took 15 s on a
  # busy machine); each PID is then checked and signalled by number.
  local shim_re; shim_re="containerd-shim.* -address $(printf '%s' "$sock" | sed 's/[][\.*^$+?(){}|]/\\&/g')( |$)"
  for _ in $(seq 1 50); do
    p="$(pgrep -f -- "$shim_re" || true)"
    [ -n "$p" ] || break
    kill -KILL $p 2>/dev/null || true
    sleep 0.1
  done
  #    A killed shim leaves its socket in /run/containerd/s (a fixed path in containerd 1.6);
  #    each task's bundle records which.
  local a
  for a in "$nd"/containerd/state/io.containerd.runtime.v2.task/*/*/address; do
    [ -f "$a" ] || continue
    a="$(cat "$a")"; a="${a#unix://}"
    [[ "$a" == /run/containerd/s/* ]] && rm -f "$a"
  done
  # The kubelet's links to this node's logs, and what it makes at fixed host paths: its
  # device-plugin socket (removed once no kubelet runs at all) and the directories, if empty.
  find /var/log/containers -maxdepth 1 -type l -lname "$nd/*" -delete 2>/dev/null || true
  local other=0
  pgrep -f -- '(^|/)kubelet .*--config=' >/dev/null && other=1
  if [ $other = 0 ]; then
    rm -f /var/lib/kubelet/device-plugins/kubelet.sock
    rmdir /var/lib/kubelet/device-plugins /var/lib/kubelet /var/log/containers /var/log/pods 2>/dev/null || true
    rmdir /run/containerd/s /run/containerd/runc/k8s.io /run/containerd/runc /run/containerd 2>/dev/null || true
  fi
  # CNI's result cache (/var/lib/cni/results, a fixed path in containerd 1.6) of every pod that
  # had no CNI DEL: host-local IPAM's files (one per address in use) name their sandboxes.
  local f id
  for f in "$nd"/cni/ipam/*/[0-9]*; do
    [ -f "$f" ] || continue
    id="$(head -n1 "$f" | tr -d '\r')"
    [[ "$id" =~ ^[0-9a-f]{64}$ ]] && rm -f /var/lib/cni/results/*-"$id"-*
  done
  rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null || true
  # 4. Mounts under the node's dir: overlay root filesystems, /dev/shm, pod netns files, volumes,
  #    the kubelet's bind mount of its own root dir. Deepest first, a few passes for stacked ones.
  local mnts
  for pass in 1 2 3 4 5; do
    mnts="$(awk -v d="$nd/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-)"
    [ -n "$mnts" ] || break
    echo "$mnts" | xargs -r -n1 umount 2>/dev/null || echo "$mnts" | xargs -r -n1 umount -l 2>/dev/null || true
  done
  # 5. The netns: with it go the veth pair, the bridge and pod veths, the egress addresses, every iptables
  #    rule kubelet and kube-proxy made, and the host routes through the veth.
  ip netns del "$NETNS" 2>/dev/null || true
  ip link del "$HOST_LINK" 2>/dev/null || true
  # 6. The cgroups (empty now).
  local cg
  for cg in $cgs; do [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null; done
  for cg in $cgs; do [ ! -d "$cg" ] || echo "node.sh: $cg still there" >&2; done
  rm -rf "$nd/containerd/root" "$nd/containerd/state" "$nd/kubelet/root" 2>/dev/null || true
  rm -f "$nd/pids" "$nd/net.env" "$nd/runtime.ok"
}

case "$action" in
  net) net_up ;;
  runtime) runtime ;;
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 net|runtime|start|stop DIR [NAME]" >&2; exit 2 ;;
esac
