#!/usr/bin/env bash
# Builds pinpipe's container image with podman: makes the base image first when it is missing
# (infra/image/base.sh), then `podman build` of the Containerfile at the repository's root.
#   infra/image/build.sh                      localhost/pinpipe:dev (target runtime)
#   IMAGE=localhost/pinpipe-spark:dev TARGET=spark infra/image/build.sh    the backfill image
# Extra arguments go to `podman build` (e.g. --no-cache). pip inside the build trusts the
# host's CA bundle (CA_BUNDLE, default $PIP_CERT, $SSL_CERT_FILE or Debian's), handed over as a
# build secret: it is never stored in a layer.
set -euo pipefail
cd "$(dirname "$0")/../.."

case "${1:-}" in -h | --help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac

IMAGE=${IMAGE:-localhost/pinpipe:dev}
TARGET=${TARGET:-runtime}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/infra/image/containers.conf}

bash infra/image/base.sh

args=(--target "$TARGET" -t "$IMAGE" -f Containerfile --network host)
if [ "$TARGET" = spark ]; then  # the jars Spark loads, resolved once per version on the host
  SPARK_JARS_DIR=${SPARK_JARS_DIR:-$PWD/var/spark/jars} bash infra/spark/jars.sh
  args+=(--build-context "spark-jars=${SPARK_JARS_DIR:-$PWD/var/spark/jars}")
fi
ca=${CA_BUNDLE:-${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}}
if [ -s "$ca" ]; then args+=(--secret "id=ca-certificates,src=$ca"); fi

started=$SECONDS
previous=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
podman build "${args[@]}" "$@" .
# The image this build replaced, unless something still uses it: rebuilds do not pile up.
if [ -n "$previous" ] && [ "$previous" != "$(podman image inspect --format '{{.Id}}' "$IMAGE")" ]; then
  podman image rm "$previous" >/dev/null 2>&1 || true
fi
echo "build.sh: $IMAGE ($TARGET) built in $((SECONDS - started))s," \
  "$(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1 / 1e6}')"
