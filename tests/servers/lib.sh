# shellcheck shell=bash
# Helpers for the server smoke tests. Source it from a test; it gives each test its own
# QT_SERVERS_DIR and, on exit, stops every server the test may have started and fails the
# test if any process of its servers is left running.

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SERVERS="$REPO/scripts/servers"
QT_SERVERS_DIR="$(mktemp -d /tmp/quanttrader-servers-test.XXXXXX)"
chmod 755 "$QT_SERVERS_DIR" # PostgreSQL's own user must reach its subdir when we are root
export QT_SERVERS_DIR

T_NAME="$(basename "$0" .sh)"
T_CHECKS=0

pass() { T_CHECKS=$((T_CHECKS + 1)); printf '  ok   %s\n' "$*"; }
fail() { printf '  FAIL %s\n' "$*" >&2; exit 1; }

# check DESCRIPTION COMMAND...: the command must succeed (its stdout is not shown).
check() {
  local what="$1"
  shift
  if "$@" >/dev/null; then pass "$what"; else fail "$what (command: $*)"; fi
}

# check_eq DESCRIPTION EXPECTED ACTUAL
check_eq() {
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected '$2', got '$3'"; fi
}

# Processes whose command line names our servers dir (what a leak looks like).
leftovers() {
  local p cmdline
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = "$$" ] && continue
    cmdline="$(tr '\0' ' ' 2>/dev/null <"$p/cmdline")" || continue
    case "$cmdline" in *"$QT_SERVERS_DIR/"*) printf '%s %s\n' "${p#/proc/}" "$cmdline" ;; esac
  done
}

# No process of ours may survive the test, and stop must have removed the server dirs.
check_nothing_left() {
  local left
  left="$(leftovers)"
  [ -z "$left" ] || fail "processes left running: $left"
  left="$(find "$QT_SERVERS_DIR" -mindepth 1 2>/dev/null)"
  [ -z "$left" ] || fail "files left in $QT_SERVERS_DIR: $left"
  pass "nothing left running, no files left"
}

t_cleanup() {
  local rc=$? name
  trap - EXIT
  for name in kafka postgres redis; do
    "$SERVERS/$name" stop >/dev/null 2>&1 || true
  done
  if [ "$rc" -eq 0 ]; then
    printf '%s: %d checks passed\n' "$T_NAME" "$T_CHECKS"
  else
    printf '%s: FAILED after %d checks\n' "$T_NAME" "$T_CHECKS" >&2
  fi
  rm -rf "$QT_SERVERS_DIR"
  exit "$rc"
}
trap t_cleanup EXIT

# env_of NAME: loads NAME's env file into this shell, exported.
env_of() {
  set -a
  # shellcheck disable=SC1090 # written by the server script
  source "$QT_SERVERS_DIR/$1.env"
  set +a
}
