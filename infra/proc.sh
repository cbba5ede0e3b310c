# Process helpers shared by the infra scripts (sourced, not run): a server is a pid file.

# pid_running PIDFILE: exit 0 while the process of PIDFILE lives (a zombie, killed but not yet
# reaped, does not: `kill -0` still answers for it for a moment after a kill -9).
pid_running() {
  [ -f "$1" ] || return 1
  local pid state
  pid="$(cat "$1")"
  kill -0 "$pid" 2>/dev/null || return 1
  state="$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)"
  [ -n "$state" ] && [ "$state" != "Z" ] && [ "$state" != "X" ]
}

# pid_stop PIDFILE NAME: SIGTERM, wait up to 30 s, then SIGKILL; remove PIDFILE.
pid_stop() {
  local pidfile="$1" name="$2" pid
  if ! pid_running "$pidfile"; then rm -f "$pidfile"; return 0; fi
  pid="$(cat "$pidfile")"
  kill "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "$name: pid $pid did not stop in 30s; killing" >&2
    kill -9 "$pid"
  fi
  rm -f "$pidfile"
  echo "$name: stopped (pid $pid)" >&2
}
