#!/usr/bin/env bash
# Delivery pipelines and operations: lints the GitHub Actions workflows (actionlint,
# zizmor, the repository's own pinning/permissions/timeout rules), shellchecks the
# operations scripts, runs their dry-run tests against fake cloud CLIs, checks that the
# runbooks' links, anchors and script calls hold, and checks deny.toml against the real
# dependency tree when cargo-deny is cached.
#
# Tools, all cached so a second run installs nothing:
#   actionlint  go install, pinned, into $QT_CACHE/bin
#   zizmor      PyPI, pinned, in the venv $QT_CACHE/venv-ops (with PyYAML for our checks)
#   Debian packages: shellcheck, bats, jq, git
#   cargo-deny  optional: tests/ops/install-cargo-deny builds it once (too slow for a cold
#               CI run), this step uses it when present and says SKIPPED otherwise
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/ci/40-ops.sh [-h|--help]
Runs the ops checks: actionlint, zizmor, workflow policy, shellcheck, dry-run tests of
scripts/{bootstrap-state,deploy,rollback,destroy}, the runbook checks (docs/runbooks), and
cargo-deny when it is cached.
Usually run as: scripts/test-all 40-ops
EOF
}
case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  "") ;;
  *) usage >&2; exit 2 ;;
esac

cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib/common.sh
source scripts/lib/common.sh

ACTIONLINT_VERSION=v1.7.12
ZIZMOR_VERSION=1.32.0
PYYAML_VERSION=6.0.3
CARGO_DENY_VERSION=0.20.2

need_apt shellcheck bats jq git

# actionlint: reinstall only when the cached binary is missing or another version.
if ! actionlint --version 2>/dev/null | head -n1 | grep -qx "$ACTIONLINT_VERSION"; then
  log "go install actionlint@$ACTIONLINT_VERSION"
  command -v go >/dev/null || need_apt golang-go
  go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
fi

venv="$QT_CACHE/venv-ops"
if ! "$venv/bin/zizmor" --version 2>/dev/null | grep -qx "zizmor $ZIZMOR_VERSION" ||
  ! "$venv/bin/python" -c 'import yaml' 2>/dev/null; then
  log "pip install zizmor==$ZIZMOR_VERSION pyyaml==$PYYAML_VERSION into $venv"
  python3 -m venv "$venv" 2>/dev/null || { need_apt python3-venv && python3 -m venv "$venv"; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "zizmor==$ZIZMOR_VERSION" "pyyaml==$PYYAML_VERSION"
fi

status=0
fail() {
  printf 'FAILED: %s\n' "$*" >&2
  status=1
}

workflows=(.github/workflows/*.yml)
[ -e "${workflows[0]}" ] || { echo "no workflows under .github/workflows" >&2; exit 1; }

log "actionlint (with shellcheck on every run: block)"
actionlint -no-color || fail "actionlint"

# Pedantic persona: the strictest set, so an undocumented permission fails too. Offline: the
# audits that need the GitHub API (impostor commits, known-vulnerable actions) cannot run
# here; the SHAs were checked against public workflows when pinned.
log "zizmor --persona pedantic (workflows and dependabot.yml)"
"$venv/bin/zizmor" --offline --no-progress --persona pedantic --format plain .github || fail "zizmor"

log "workflow policy: pinned actions, least-privilege permissions, timeouts, concurrency"
"$venv/bin/python" tests/ops/check-workflows.py .github/workflows || fail "workflow policy"

log "shellcheck of the operations scripts and their tests"
shellcheck -x scripts/bootstrap-state scripts/deploy scripts/rollback scripts/destroy \
  scripts/lib/ops.sh scripts/ci/40-ops.sh tests/ops/install-cargo-deny tests/ops/fakes/* \
  tests/ops/helpers.bash || fail "shellcheck"
# bats files are bash with @test blocks; shellcheck reads them with the bats dialect.
shellcheck -x --shell=bats tests/ops/*.bats || fail "shellcheck (bats files)"

export OPS_PYTHON="$venv/bin/python"
log "dry-run tests of bootstrap-state, deploy, rollback, destroy (fake aws/terraform/kubectl/argocd), workflow and runbook checks"
tap="$(mktemp)"
trap 'rm -f "$tap"' EXIT
bats --tap tests/ops | tee "$tap" || true
passed="$(grep -c '^ok ' "$tap" || true)"
failed="$(grep -c '^not ok ' "$tap" || true)"
planned="$(sed -n 's/^1\.\.\([0-9]*\)$/\1/p' "$tap" | head -n1)"
if [ "$failed" -gt 0 ] || [ -z "$planned" ] || [ "$((passed + failed))" -ne "$planned" ]; then
  fail "ops tests ($failed failed, $passed of ${planned:-?} passed)"
fi
echo "ops tests: $passed passed, $failed failed"

deny="$QT_CACHE/tools/cargo-deny/bin/cargo-deny"
if ! cargo metadata --locked --format-version 1 >/dev/null 2>&1; then
  # Not this step's finding: 10-rust (cargo --locked) fails on it and says why.
  echo "SKIPPED: cargo deny check (Cargo.lock does not match the manifests; scripts/ci/10-rust.sh reports it)"
elif [ -x "$deny" ] && "$deny" --version | grep -q " $CARGO_DENY_VERSION\$"; then
  # Advisories need the RustSec database from GitHub, out of reach here: CI on GitHub
  # runs them (ci workflow); licenses, bans and sources are checked here in full.
  log "cargo deny check licenses bans sources"
  # Duplicates are a pull-request matter (ci workflow); here they would let one new
  # dependency block every engineer's landing, so they are allowed.
  "$deny" --locked --config deny.toml check --allow duplicate licenses bans sources || fail "cargo-deny"
else
  echo "SKIPPED: cargo deny check licenses bans sources (cargo-deny $CARGO_DENY_VERSION is not cached and building it takes minutes; run tests/ops/install-cargo-deny to build it)"
fi

exit "$status"
