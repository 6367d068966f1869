# Sourced by start.sh, stop.sh and restart-apiserver.sh.

# is_ours PID NAME DIR: PID still runs the NAME process that start.sh launched for the cluster in
# DIR. A recorded PID outlives its process: after an exit (or a reboot of the machine with DIR
# kept) the kernel may give the number to anything, and killing by number alone could hit
# another cluster's apiserver or an unrelated program. Every process start.sh launches names
# DIR in its arguments (data dir, pki, kubeconfig), and its binary names what it is. A zombie
# has an empty cmdline, so it counts as gone.
is_ours() {
  local cmd
  cmd="$(tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null)" || return 1
  [ -n "$cmd" ] || return 1
  [[ "$cmd" == *"$3/"* || "$cmd" == *"$3 "* ]] || return 1
  case "$2" in
    etcd) [[ "$cmd" == *etcd* ]] ;;
    apiserver) [[ "$cmd" == *kube-apiserver* ]] ;;
    controller-manager) [[ "$cmd" == *kube-controller-manager* ]] ;;
    watchdog) [[ "$cmd" == *stop.sh* ]] ;;
    containerd) [[ "$cmd" == *containerd\ * ]] ;;
    kubelet) [[ "$cmd" == *kubelet\ * ]] ;;
    kube-proxy) [[ "$cmd" == *kube-proxy\ * ]] ;;
    scheduler) [[ "$cmd" == *kube-scheduler\ * ]] ;;
    coredns) [[ "$cmd" == *coredns\ * ]] ;;
    *) return 1 ;;
  esac
}

# free_ports N: N distinct TCP ports free on 127.0.0.1, below the kernel's ephemeral range
# (/proc/sys/net/ipv4/ip_local_port_range), or above it when there is no room below. A port from
# a port-0 bind is in that range, where any outgoing connection can take it as its source port:
# a restarted kube-apiserver then could not bind its port again.
free_ports() {
  local range
  range="$(cat /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo '32768 60999')"
  python3 - "$1" $range <<'PY'
import random, socket, sys
n, low, high = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
lo, hi = (10000, low - 1) if low - 1 - 10000 >= 1000 else (high + 1, 65535)
if hi - lo < 100:
    sys.exit(f"free_ports: no room outside the ephemeral range {low}-{high}")
out = []
for port in random.sample(range(lo, hi + 1), min(500, hi - lo + 1)):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        s.listen()
        out.append(port)
    except OSError:
        pass
    finally:
        s.close()
    if len(out) == n:
        print(" ".join(map(str, out)))
        sys.exit(0)
sys.exit("free_ports: no free ports found")
PY
}
