# shellcheck shell=bash
# Shared helpers for the test and CI scripts. Source it; do not execute it.
#
# Contract:
#   - QT_CACHE (default ~/.cache/quanttrader) holds every tool we build or download from a
#     package registry, so a second run on the same machine installs nothing.
#   - need_apt PKG...   installs the Debian packages that are missing (apt-get update once).
#   - log MSG           prints a step banner to stderr.

QT_CACHE="${QT_CACHE:-$HOME/.cache/quanttrader}"
export QT_CACHE
mkdir -p "$QT_CACHE/bin"
export GOPATH="${GOPATH:-$HOME/.cache/go}"
export GOMODCACHE="${GOMODCACHE:-$HOME/.cache/go/pkg/mod}"
export GOCACHE="${GOCACHE:-$HOME/.cache/go-build}"
export GOBIN="$QT_CACHE/bin"
export PATH="$QT_CACHE/bin:$PATH"

log() { printf '\n==> %s\n' "$*" >&2; }

need_apt() {
  local missing=()
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  if [ ! -f "/tmp/.qt-apt-updated" ]; then
    $sudo apt-get update -qq >&2
    touch /tmp/.qt-apt-updated
  fi
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}
