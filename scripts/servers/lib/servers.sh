# shellcheck shell=bash
# Helpers shared by scripts/servers/{kafka,postgres,redis}. Source it; do not execute it.
#
# Contract of every server script built on it:
#   - All state of server NAME lives in "$QT_SERVERS_DIR/NAME/" (data, logs, pid file) and
#     its connection variables in "$QT_SERVERS_DIR/NAME.env", one KEY=VALUE a line, quoted
#     so that `eval "$(scripts/servers/NAME start)"` and `source NAME.env` both work.
#   - `stop` removes both, so nothing outlives a test run.
#   - A pid is only ever signalled after checking that its command line still names our
#     state dir: after a kill -9 or a reboot the pid may belong to somebody else.

# Default under /tmp (not ~/.cache): the data is throwaway and must never be mistaken for
# a cache that a later run can reuse. Per-uid so that two users do not share one dir.
QT_SERVERS_DIR="${QT_SERVERS_DIR:-/tmp/quanttrader-servers-$(id -u)}"
export QT_SERVERS_DIR

srv_log() { printf '[%s] %s\n' "${SRV_NAME:-servers}" "$*" >&2; }
srv_die() { srv_log "error: $*"; exit 1; }

srv_dir() { printf '%s/%s' "$QT_SERVERS_DIR" "$SRV_NAME"; }
srv_env_file() { printf '%s/%s.env' "$QT_SERVERS_DIR" "$SRV_NAME"; }

# A free TCP port on 127.0.0.1, chosen by the kernel (bind to port 0). The port is released
# before the server binds it, so a race with another process is possible; the server
# scripts therefore retry their start on a bind failure.
srv_free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# srv_pid_alive PID: true when PID runs and its command line mentions our state dir.
srv_pid_alive() {
  local pid="$1" cmdline
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  cmdline="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" || return 1
  case "$cmdline" in
    *"$(srv_dir)"*) return 0 ;;
    *) return 1 ;;
  esac
}

srv_read_pid() {
  local f
  f="$(srv_dir)/pid"
  [ -s "$f" ] && cat "$f"
  return 0
}

srv_running() { srv_pid_alive "$(srv_read_pid)"; }

# srv_kill PID SECONDS: SIGTERM, wait up to SECONDS for a clean exit, then SIGKILL.
srv_kill() {
  local pid="$1" timeout="$2" i
  srv_pid_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    srv_pid_alive "$pid" || return 0
    sleep 0.1
  done
  srv_log "pid $pid did not stop within ${timeout}s, sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    srv_pid_alive "$pid" || return 0
    sleep 0.1
  done
  srv_die "pid $pid survived SIGKILL"
}

# Kill every process whose command line names our state dir: children that outlived their
# parent after a kill -9 (e.g. PostgreSQL backends) would otherwise keep ports and files.
srv_kill_strays() {
  local dir p pid cmdline
  dir="$(srv_dir)"
  for p in /proc/[0-9]*; do
    pid="${p#/proc/}"
    if [ "$pid" = "$$" ] || [ "$pid" = "$PPID" ]; then continue; fi
    cmdline="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" || continue
    case "$cmdline" in
      *"$dir/"*) kill -KILL "$pid" 2>/dev/null || true ;;
    esac
  done
}

# srv_write_env KEY=VALUE...: writes the env file atomically and prints it on stdout.
srv_write_env() {
  local f tmp kv
  f="$(srv_env_file)"
  tmp="$f.tmp.$$"
  : >"$tmp"
  for kv in "$@"; do
    printf '%s=%q\n' "${kv%%=*}" "${kv#*=}" >>"$tmp"
  done
  mv -f "$tmp" "$f"
  cat "$f"
}

# Prints the env file of a running server (the idempotent answer to a second `start`).
srv_print_env() { cat "$(srv_env_file)"; }

# Removes the state of a server that is not running (kill -9 leftovers, a failed start).
srv_clean_stale() {
  srv_kill_strays
  rm -rf "$(srv_dir)" "$(srv_env_file)"
}

srv_status() {
  if srv_running; then
    echo "$SRV_NAME: running (pid $(srv_read_pid), dir $(srv_dir))"
    srv_print_env
    return 0
  fi
  echo "$SRV_NAME: stopped"
  return 3
}

# srv_wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND every 0.1 s until it succeeds;
# fails early when the server process died, showing the end of its log.
srv_wait_for() {
  local what="$1" timeout="$2" i
  shift 2
  for ((i = 0; i < timeout * 10; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if ! srv_running; then
      srv_log "process exited while waiting for $what; last log lines:"
      tail -n 40 "$(srv_dir)/server.log" >&2 2>/dev/null || true
      return 1
    fi
    sleep 0.1
  done
  srv_log "timed out after ${timeout}s waiting for $what; last log lines:"
  tail -n 40 "$(srv_dir)/server.log" >&2 2>/dev/null || true
  return 1
}

# Milliseconds since the epoch, to report start-up times.
srv_now_ms() { date +%s%3N; }

srv_usage_common() {
  cat <<EOF
Commands:
  start    start the server (idempotent: prints the variables of a running one), wait
           until it is ready, print its variables as KEY=VALUE lines on stdout and write
           them to \$QT_SERVERS_DIR/$SRV_NAME.env
  stop     stop it and remove its data dir and env file (safe after kill -9, and when
           nothing runs)
  status   print whether it runs, and its variables; exit 3 when stopped
  --help   this text

Environment:
  QT_SERVERS_DIR   where state and env files live (now: $QT_SERVERS_DIR)
  QT_CACHE         tool cache (default ~/.cache/quanttrader)

Usage in a shell:   eval "\$(scripts/servers/$SRV_NAME start)"
EOF
}

srv_mkdirs() {
  if [ ! -d "$QT_SERVERS_DIR" ]; then
    mkdir -p "$QT_SERVERS_DIR"
    # World-traversable (not writable): PostgreSQL, run as its own user when we are root,
    # must reach its subdir, which is chowned to it.
    chmod 755 "$QT_SERVERS_DIR"
  fi
  mkdir -p "$(srv_dir)"
}
