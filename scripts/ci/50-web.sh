#!/usr/bin/env bash
# Web trading screen: install (npm ci, cached), typecheck (tsc), component tests (Vitest,
# jsdom), production build (vite), then the end-to-end test in Debian's Chromium against a
# real `quanttrader run` (web/e2e/run.mjs).
#
# The E2E runs the DEBUG build of the server: 10-rust has already compiled the workspace in
# debug, so bringing `quanttrader` up to date costs seconds, where a release (LTO) build would
# cost most of this step's share of CI. Run alone on a machine where 10-rust never ran, the
# build compiles the workspace's tests too (the price of sharing 10-rust's artifacts).
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/ci/50-web.sh [--no-e2e] [--help]

Checks the web trading screen under web/: npm ci, tsc, Vitest, vite build, and the
Playwright E2E against `quanttrader run` in headless Chromium.

  --no-e2e        stop after the build (no server, no browser)
  --help          this text

Environment:
  QT_BIN          server binary to test against (default: the debug build in
                  $CARGO_TARGET_DIR, brought up to date incrementally on 10-rust's build)
  QT_CACHE        cache root (default ~/.cache/quanttrader), see scripts/lib/common.sh
Artifacts: web/e2e/artifacts/ (screenshots, server log).
EOF
}

run_e2e=1
while [ "$#" -gt 0 ]; do
  case "$1" in
    --no-e2e) run_e2e=0 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib/common.sh
source scripts/lib/common.sh
root=$PWD

# Vite 8 needs Node >= 20.19; Debian's nodejs is older, so the machine's own Node is required.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "node and npm are required (Node >= 20.19)" >&2
  exit 1
fi
# shellcheck disable=SC2016 # the quoted text is JavaScript; ${} is a JS template literal
node -e '
  const [maj, min] = process.versions.node.split(".").map(Number);
  if (maj < 20 || (maj === 20 && min < 19)) { console.error(`Node ${process.versions.node} < 20.19`); process.exit(1); }'

cd "$root/web"
# npm ci wipes node_modules; skip it when the installed tree already matches the lock file.
stamp=node_modules/.qt-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  log "npm ci"
  npm ci --cache "$HOME/.cache/npm" --prefer-offline --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
fi

log "tsc (typecheck)"
npx --no-install tsc --noEmit -p tsconfig.json

log "vitest"
npx --no-install vitest run --reporter=default

log "vite build"
rm -rf dist
npx --no-install vite build --logLevel warn
test -s dist/index.html

[ "$run_e2e" -eq 1 ] || exit 0

# --- E2E against the real server -----------------------------------------------------------
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$QT_CACHE/cargo-target}"
bin="${QT_BIN:-$CARGO_TARGET_DIR/debug/quanttrader}"
if [ -z "${QT_BIN:-}" ]; then
  # Not `cargo build -p quanttrader`: with one package selected Cargo resolves features for
  # that package alone (no dev-dependencies), which differs from 10-rust's
  # `cargo test --workspace` for serde, syn, tokio, hyper, … and would compile the whole
  # dependency tree a second time. Building the same targets as `cargo test` (bins, tests,
  # examples; not benches, which use the release profile) resolves features identically,
  # so after 10-rust this only links what changed.
  log "cargo build --workspace --bins --tests --examples (debug, shares 10-rust's artifacts)"
  (cd "$root" && nice -n 10 cargo build --workspace --locked --bins --tests --examples)
fi

# `run --help` must succeed and describe the flags we pass: a binary without the run command
# (or one that ignores its arguments) would make every E2E failure below a riddle.
if ! help_text=$("$bin" run --help 2>&1) || ! grep -q -- '--web-dir' <<<"$help_text"; then
  echo "$bin: 'run --help' fails or has no --web-dir; the E2E needs \`quanttrader run\` (docs/api.md)" >&2
  exit 1
fi

need_apt chromium
log "web e2e (Chromium against $bin)"
# Bounded: a hung browser or server must fail the step, not eat the CI budget.
QT_BIN="$bin" timeout --kill-after=30 900 node e2e/run.mjs
