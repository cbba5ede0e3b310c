#!/usr/bin/env bash
# Local Apache Kafka (KRaft, one combined broker+controller node) from Maven Central jars.
#
#   infra/kafka/kafka.sh install   resolve the jars of pom.xml into $KAFKA_HOME/libs (cached)
#   infra/kafka/kafka.sh start     format storage if new, start on 127.0.0.1:$KAFKA_PORT, wait
#                                  until it answers metadata requests
#   infra/kafka/kafka.sh run       the same broker in the foreground (exec: its pid is this
#                                  script's), for a supervisor (`pinpipe up`) to watch
#   infra/kafka/kafka.sh stop      stop it by process id
#   infra/kafka/kafka.sh status    exit 0 when it runs
#
# Environment (all optional):
#   KAFKA_PORT        client port (default 9092); the controller listens on KAFKA_PORT+1
#   KAFKA_HOME        jars cache (default ./var/kafka)
#   KAFKA_STATE_DIR   data, pid file and log of this instance (default $KAFKA_HOME/run-$KAFKA_PORT)
#   KAFKA_PARTITIONS  default partitions of new topics (default 4)
#   KAFKA_WAIT_SECONDS  start-up deadline (default 90)
#   KAFKA_BIND        address the listeners bind (default 127.0.0.1; 0.0.0.0 in a container)
#   KAFKA_ADVERTISED_HOST  the host name clients are told to use (default 127.0.0.1)
#   KAFKA_HEAP_OPTS   the JVM's heap (default -Xms512m -Xmx1g)
#   KAFKA_EXTRA_PROPERTIES  a file of broker properties appended to server.properties (a key
#                     given again there wins): e.g. another listener with TLS and SASL. The
#                     PLAINTEXT listener on KAFKA_PORT stays: this script's checks use it
#   KAFKA_SCRAM_CREDENTIALS  a file of SCRAM users to create when the storage is formatted,
#                     one `kafka-storage format --add-scram` value a line, e.g.
#                     SCRAM-SHA-512=[name=alice,password=alice-secret]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../proc.sh
source "$here/../proc.sh"
root="$(cd "$here/../.." && pwd)"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_HOME="${KAFKA_HOME:-$root/var/kafka}"
KAFKA_STATE_DIR="${KAFKA_STATE_DIR:-$KAFKA_HOME/run-$KAFKA_PORT}"
KAFKA_PARTITIONS="${KAFKA_PARTITIONS:-4}"
KAFKA_WAIT_SECONDS="${KAFKA_WAIT_SECONDS:-90}"
KAFKA_BIND="${KAFKA_BIND:-127.0.0.1}"
KAFKA_ADVERTISED_HOST="${KAFKA_ADVERTISED_HOST:-127.0.0.1}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms512m -Xmx1g}"
controller_port=$((KAFKA_PORT + 1))
libs="$KAFKA_HOME/libs"
pidfile="$KAFKA_STATE_DIR/kafka.pid"
logfile="$KAFKA_STATE_DIR/kafka.log"
version="$(sed -n 's#.*<kafka.version>\(.*\)</kafka.version>.*#\1#p' "$here/pom.xml")"

log() { echo "kafka.sh: $*" >&2; }

install() {
  if [ -f "$libs/.version" ] && [ "$(cat "$libs/.version")" = "$version" ]; then
    return 0
  fi
  command -v mvn >/dev/null || { log "mvn not found: install Maven (apt-get install maven)"; exit 1; }
  log "resolving Apache Kafka $version from Maven Central into $libs"
  rm -rf "$libs.tmp"
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$libs.tmp" -DincludeScope=runtime
  rm -rf "$libs" && mv "$libs.tmp" "$libs"
  echo "$version" > "$libs/.version"
}

java_cp() {
  java -Xms256m -Xmx1g -Dlog4j.configuration="file:$here/log4j.properties" \
    -cp "$libs/*" "$@"
}

running() { pid_running "$pidfile"; }

write_config() {
  mkdir -p "$KAFKA_STATE_DIR/data"
  cat > "$KAFKA_STATE_DIR/server.properties" <<CONF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$controller_port
listeners=PLAINTEXT://$KAFKA_BIND:$KAFKA_PORT,CONTROLLER://$KAFKA_BIND:$controller_port
advertised.listeners=PLAINTEXT://$KAFKA_ADVERTISED_HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_STATE_DIR/data
num.partitions=$KAFKA_PARTITIONS
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
CONF
  if [ -n "${KAFKA_EXTRA_PROPERTIES:-}" ]; then
    cat "$KAFKA_EXTRA_PROPERTIES" >> "$KAFKA_STATE_DIR/server.properties"
  fi
}

wait_ready() {
  local deadline=$((SECONDS + KAFKA_WAIT_SECONDS))
  # A metadata request through the topics tool proves the broker serves clients.
  until java_cp org.apache.kafka.tools.TopicCommand \
      --bootstrap-server "127.0.0.1:$KAFKA_PORT" --list >/dev/null 2>&1; do
    if ! running; then
      log "broker exited during start-up; last lines of $logfile:"; tail -n 30 "$logfile" >&2
      exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "broker not ready after ${KAFKA_WAIT_SECONDS}s; see $logfile"; exit 1
    fi
    sleep 1
  done
}

prepare() {
  install
  write_config
  if [ ! -f "$KAFKA_STATE_DIR/data/meta.properties" ]; then
    local scram=() line
    if [ -n "${KAFKA_SCRAM_CREDENTIALS:-}" ]; then
      while IFS= read -r line || [ -n "$line" ]; do
        [ -n "$line" ] && scram+=(--add-scram "$line")
      done < "$KAFKA_SCRAM_CREDENTIALS"
    fi
    java_cp kafka.tools.StorageTool format --standalone \
      -t "$(java_cp kafka.tools.StorageTool random-uuid)" \
      -c "$KAFKA_STATE_DIR/server.properties" "${scram[@]}" >>"$logfile" 2>&1
  fi
}

# shellcheck disable=SC2206  # the heap options are words
broker_command=(java $KAFKA_HEAP_OPTS -XX:+UseG1GC -Dlog4j.configuration="file:$here/log4j.properties"
  -cp "$libs/*" kafka.Kafka "$KAFKA_STATE_DIR/server.properties")

start() {
  install
  if running; then log "already running (pid $(cat "$pidfile")) on 127.0.0.1:$KAFKA_PORT"; return 0; fi
  prepare
  log "starting Apache Kafka $version on 127.0.0.1:$KAFKA_PORT (log: $logfile)"
  nohup "${broker_command[@]}" >>"$logfile" 2>&1 &
  echo $! > "$pidfile"
  wait_ready
  log "ready on 127.0.0.1:$KAFKA_PORT (pid $(cat "$pidfile"))"
}

run() {
  prepare
  log "running Apache Kafka $version on 127.0.0.1:$KAFKA_PORT in the foreground (pid $$)"
  exec "${broker_command[@]}"
}

stop() { pid_stop "$pidfile" kafka.sh; }

case "${1:-}" in
  install) install ;;
  start) start ;;
  run) run ;;
  stop) stop ;;
  status) running ;;
  *) echo "usage: $0 install|start|run|stop|status" >&2; exit 2 ;;
esac
