#!/usr/bin/env bash
# Prints the path of vegeta (HTTP load generator, Go module proxy), installing it once into
# ~/.cache/pinpipe/bin.
set -euo pipefail
version=v12.12.0
bin="${XDG_CACHE_HOME:-$HOME/.cache}/pinpipe/bin"
if [ ! -x "$bin/vegeta-$version" ]; then
  mkdir -p "$bin"
  GOBIN="$bin/tmp" go install "github.com/tsenart/vegeta/v12@$version" >&2
  mv "$bin/tmp/vegeta" "$bin/vegeta-$version"
fi
echo "$bin/vegeta-$version"
