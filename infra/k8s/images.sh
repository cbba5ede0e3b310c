#!/usr/bin/env bash
# The images the test cluster runs, built here with podman (nothing can be pulled) and loaded
# into the cluster's containerd:
#   localhost/pause:pinpipe                  the pod sandbox (pause.c, static)
#   localhost/coredns:pinpipe                CoreDNS          (infra/k8s/build.sh)
#   localhost/kafka:pinpipe                  Apache Kafka, the jars and script of `make up`
#   localhost/seaweedfs:pinpipe              SeaweedFS, the tests' S3 server build
#   localhost/prometheus:pinpipe             Prometheus (infra/k8s/build.sh)
#   localhost/pinpipe:dev                    pinpipe (the Containerfile, infra/image/build.sh)
#
#   infra/k8s/images.sh build           build the ones missing or whose inputs changed
#   infra/k8s/images.sh load SOCKET     import them into the containerd at SOCKET (k8s.io)
# The others start from the Debian base image of infra/image/base.sh.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$root/infra/image/containers.conf}"
K8S_CACHE="${K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pinpipe/k8s}"
bin="$(bash "$here/build.sh" --print)"
IMAGES=(pause coredns kafka seaweedfs prometheus)
PINPIPE_IMAGE=localhost/pinpipe:dev

log() { echo "k8s/images.sh: $*" >&2; }

context() {  # context NAME DIR: fill DIR with what NAME's Containerfile copies
  local name="$1" dir="$2"
  case "$name" in
    pause) gcc -static -O2 -o "$dir/pause" "$here/images/pause.c" && strip "$dir/pause" ;;
    coredns) cp "$bin/coredns" "$dir/" ;;
    seaweedfs)
      bash "$root/infra/s3/seaweedfs.sh" install
      local version
      version="$(awk '$1 == "github.com/seaweedfs/seaweedfs" {print $2; exit}' "$root/infra/s3/go.mod")"
      cp "${S3_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pinpipe}/weed-$version" "$dir/weed" ;;
    kafka)
      bash "$root/infra/kafka/kafka.sh" install
      cp -r "$root/var/kafka/libs" "$dir/libs"
      mkdir -p "$dir/infra/kafka"
      cp "$root/infra/proc.sh" "$dir/infra/"
      cp "$root/infra/kafka/kafka.sh" "$root/infra/kafka/log4j.properties" "$root/infra/kafka/pom.xml" \
        "$dir/infra/kafka/" ;;
    prometheus) cp "$bin/prometheus" "$dir/" ;;
  esac
  cp "$here/images/$name.Containerfile" "$dir/Containerfile"
}

build_one() {
  local name="$1" image="localhost/$1:pinpipe" dir inputs current
  dir="$(mktemp -d)"
  context "$name" "$dir"
  inputs="$(cd "$dir" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
  current="$(podman image inspect --format '{{index .Labels "pinpipe.inputs"}}' "$image" 2>/dev/null || true)"
  if [ "$current" = "$inputs" ]; then
    rm -rf "$dir"
    return 0
  fi
  log "building $image"
  local started=$SECONDS
  podman build -q --network host --label "pinpipe.inputs=$inputs" -t "$image" "$dir" >/dev/null
  rm -rf "$dir"
  log "built $image in $((SECONDS - started))s"
}

build() {
  bash "$root/infra/image/base.sh" >/dev/null
  for name in "${IMAGES[@]}"; do build_one "$name"; done
  bash "$root/infra/image/build.sh" >/dev/null
}

load() {  # load SOCKET: import every image whose id containerd does not have yet
  local socket="$1" loaded="$K8S_CACHE/loaded" image id
  mkdir -p "$loaded"
  for image in "${IMAGES[@]/#/localhost/}" "$PINPIPE_IMAGE"; do
    [ "$image" = "$PINPIPE_IMAGE" ] || image="$image:pinpipe"
    id="$(podman image inspect --format '{{.Id}}' "$image")"
    local marker="$loaded/${image//[\/:]/_}"
    if [ "$(cat "$marker" 2>/dev/null)" = "$id" ] &&
      ctr --address "$socket" -n k8s.io images ls -q | grep -qx "$image"; then
      continue
    fi
    log "loading $image into the cluster"
    podman save -q -o "$K8S_CACHE/image.tar" "$image"
    ctr --address "$socket" -n k8s.io images import "$K8S_CACHE/image.tar" >/dev/null
    rm -f "$K8S_CACHE/image.tar"
    echo "$id" >"$marker"
  done
}

case "${1:-}" in
  build) build ;;
  load) build && load "${2:?the containerd socket}" ;;
  *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
