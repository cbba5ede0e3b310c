#!/usr/bin/env bash
# A local S3-compatible server: SeaweedFS (Apache-2.0), built from the Go module proxy with
# the module pinned in go.mod/go.sum beside this script, cached after the first build.
#
#   infra/s3/seaweedfs.sh install   build `weed` into $S3_CACHE (once; a few minutes)
#   infra/s3/seaweedfs.sh start     start master+volume+filer+S3 on 127.0.0.1:$S3_PORT, wait
#                                   until the S3 API answers
#   infra/s3/seaweedfs.sh stop      stop it by process id
#
# Environment (all optional):
#   S3_PORT          S3 API port (default 8333); master, volume and filer use S3_PORT+1..+3,
#                    the gRPC ports of master, volume, filer and S3 S3_PORT+4..+7 (weed's
#                    default, +10000, lands in the kernel's ephemeral range for test ports)
#   S3_ACCESS_KEY / S3_SECRET_KEY   the one identity (default pinpipe / pinpipe-secret)
#   S3_STATE_DIR     data, pid and log (default ./var/s3/run-$S3_PORT)
#   S3_CACHE         where the built binary is kept (default ~/.cache/pinpipe)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../proc.sh
source "$here/../proc.sh"
root="$(cd "$here/../.." && pwd)"
S3_PORT="${S3_PORT:-8333}"
S3_ACCESS_KEY="${S3_ACCESS_KEY:-pinpipe}"
S3_SECRET_KEY="${S3_SECRET_KEY:-pinpipe-secret}"
S3_STATE_DIR="${S3_STATE_DIR:-$root/var/s3/run-$S3_PORT}"
S3_CACHE="${S3_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pinpipe}"
S3_WAIT_SECONDS="${S3_WAIT_SECONDS:-60}"
version="$(awk '$1 == "github.com/seaweedfs/seaweedfs" {print $2; exit}' "$here/go.mod")"
weed="$S3_CACHE/weed-$version"
pidfile="$S3_STATE_DIR/weed.pid"
logfile="$S3_STATE_DIR/weed.log"

log() { echo "seaweedfs.sh: $*" >&2; }

install() {
  [ -x "$weed" ] && return 0
  command -v go >/dev/null || { log "go not found: install Go (apt-get install golang)"; exit 1; }
  log "building SeaweedFS $version from the Go module proxy (first run only; takes minutes)"
  mkdir -p "$S3_CACHE"
  (cd "$here" && GOFLAGS=-mod=mod go build -o "$weed.tmp" github.com/seaweedfs/seaweedfs/weed)
  mv "$weed.tmp" "$weed"
}

running() { pid_running "$pidfile"; }

start() {
  install
  if running; then log "already running (pid $(cat "$pidfile"))"; return 0; fi
  mkdir -p "$S3_STATE_DIR/data"
  cat > "$S3_STATE_DIR/s3.json" <<CONF
{"identities": [{"name": "pinpipe",
  "credentials": [{"accessKey": "$S3_ACCESS_KEY", "secretKey": "$S3_SECRET_KEY"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
CONF
  log "starting SeaweedFS S3 on 127.0.0.1:$S3_PORT (log: $logfile)"
  # Every bucket is a collection that takes 7 volumes on its first write; 512 volume slots of
  # 64 MB (files grow only with data) hold a test run's dozens of buckets.
  nohup "$weed" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$S3_STATE_DIR/data" \
    -master.port=$((S3_PORT + 1)) -volume.port=$((S3_PORT + 2)) \
    -filer -filer.port=$((S3_PORT + 3)) \
    -master.port.grpc=$((S3_PORT + 4)) -volume.port.grpc=$((S3_PORT + 5)) \
    -filer.port.grpc=$((S3_PORT + 6)) -s3.port.grpc=$((S3_PORT + 7)) \
    -s3 -s3.port="$S3_PORT" -s3.config="$S3_STATE_DIR/s3.json" \
    -s3.port.iceberg=0 -s3.port.lance=0 \
    -master.volumeSizeLimitMB=64 -volume.max=512 -volume.preStopSeconds=0 >>"$logfile" 2>&1 &
  echo $! > "$pidfile"
  local deadline=$((SECONDS + S3_WAIT_SECONDS))
  # Any HTTP answer from the S3 port (403 to an unsigned request) means the gateway is up;
  # a write then proves the filer and volume server behind it are.
  until curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/" 2>/dev/null; do
    running || { log "weed exited during start-up:"; tail -n 30 "$logfile" >&2; exit 1; }
    [ $SECONDS -ge $deadline ] && { log "S3 not ready after ${S3_WAIT_SECONDS}s; see $logfile"; exit 1; }
    sleep 0.5
  done
  log "ready on 127.0.0.1:$S3_PORT (pid $(cat "$pidfile"))"
}

stop() { pid_stop "$pidfile" seaweedfs.sh; }

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) running ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
