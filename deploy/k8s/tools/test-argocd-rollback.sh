#!/usr/bin/env bash
# Exercises scripts/argocd-rollback against a scratch git repository with a bare "origin":
# reverting a promotion, an explicit tag, dry runs, and the refusals. No Argo CD needed: the
# argocd mode is only run with --dry-run.
set -euo pipefail

usage() {
  echo "Usage: deploy/k8s/tools/test-argocd-rollback.sh   (no arguments; exits 1 on any failure)"
}
case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  "") ;;
  *) usage >&2; exit 2 ;;
esac

root="$(cd "$(dirname "$0")/../../.." && pwd)"
rollback="$root/scripts/argocd-rollback"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
nok() { failed=$((failed + 1)); echo "FAIL $*"; }
expect() { # expect DESCRIPTION ACTUAL WANTED
  if [ "$2" = "$3" ]; then ok "$1"; else nok "$1 (got '$2', want '$3')"; fi
}

git init -q --bare "$work/origin.git"
git init -q -b main "$work/repo"
repo="$work/repo"
g() { git -C "$repo" -c user.name=ci -c user.email=ci@localhost "$@"; }
dir="$repo/deploy/helm/quanttrader"
mkdir -p "$dir"
for env in staging prod dev; do
  cat >"$dir/values-$env.yaml" <<EOF
environment: $env

image:
  repository: quanttrader
  tag: "1.0.0"

rollouts:
  enabled: true
EOF
done
g add -A && g commit -q -m "initial"
g remote add origin "$work/origin.git"
g push -q origin main
promote() { # promote ENV TAG
  sed -i "s/^  tag: .*/  tag: \"$2\"/" "$dir/values-$1.yaml"
  g commit -q -m "deploy($1): $2" -- "deploy/helm/quanttrader/values-$1.yaml"
}
tag_of() { sed -n 's/^  tag: "\(.*\)"/\1/p' "$dir/values-$1.yaml"; }
commits() { g rev-list --count HEAD; }
export GIT_AUTHOR_NAME=ci GIT_AUTHOR_EMAIL=ci@localhost GIT_COMMITTER_NAME=ci GIT_COMMITTER_EMAIL=ci@localhost

if grep -q -- '--dry-run' <<<"$("$rollback" --help)"; then ok "--help documents --dry-run"; else nok "--help"; fi
if "$rollback" --env qa --repo "$repo" 2>/dev/null; then nok "unknown env accepted"; else ok "unknown env refused"; fi

promote staging 1.1.0
n="$(commits)"
"$rollback" --env staging --repo "$repo" --dry-run 2>"$work/dry.log"
expect "dry run leaves the tag" "$(tag_of staging)" "1.1.0"
expect "dry run makes no commit" "$(commits)" "$n"
if grep -q "git -C $repo revert --no-edit" "$work/dry.log"; then ok "dry run prints the revert"; else nok "dry run output"; fi

"$rollback" --env staging --repo "$repo" >/dev/null 2>&1
expect "revert restores the previous tag" "$(tag_of staging)" "1.0.0"
expect "revert is pushed to origin/main" "$(git --git-dir "$work/origin.git" rev-parse main)" "$(g rev-parse HEAD)"
if grep -q '^Revert "deploy(staging): 1.1.0"' <<<"$(g log -1 --format=%s)"; then ok "revert commit message"; else nok "revert commit message"; fi
expect "other environments untouched" "$(tag_of prod)" "1.0.0"
n="$(commits)"
if "$rollback" --env staging --repo "$repo" >/dev/null 2>&1; then nok "a rollback was reverted"; else ok "reverting a rollback is refused"; fi
expect "refused rollback makes no commit" "$(commits)" "$n"
expect "refused rollback leaves the tag" "$(tag_of staging)" "1.0.0"

promote prod 1.2.0
"$rollback" --env prod --to 1.1.5 --no-push --repo "$repo" >/dev/null 2>&1
expect "explicit tag is written" "$(tag_of prod)" "1.1.5"
expect "explicit tag commit" "$(g log -1 --format=%s)" "rollback(prod): image 1.2.0 -> 1.1.5"
if grep -q '^rollouts:' "$dir/values-prod.yaml" && grep -q '^  repository: quanttrader' "$dir/values-prod.yaml"; then
  ok "the rest of the values file is kept"
else
  nok "values file damaged"
fi
if "$rollback" --env prod --to 1.1.5 --no-push --repo "$repo" 2>/dev/null; then nok "same tag accepted"; else ok "rolling back to the running tag is refused"; fi
if "$rollback" --env prod --to 'bad tag!' --no-push --repo "$repo" 2>/dev/null; then nok "bad tag accepted"; else ok "invalid tag refused"; fi

if "$rollback" --env dev --mode argocd --dry-run --repo "$repo" 2>/dev/null; then nok "argocd mode on dev accepted"; else ok "argocd mode refused outside prod"; fi
"$rollback" --env prod --mode argocd --revision 7 --dry-run --repo "$repo" 2>"$work/argo.log"
if grep -q "argocd app rollback quanttrader-prod 7" "$work/argo.log"; then ok "argocd mode prints the rollback"; else nok "argocd mode output"; fi
"$rollback" --env prod --mode argocd --break-glass 0 --dry-run --repo "$repo" 2>"$work/glass.log"
if grep -q "enable-manual-sync quanttrader 0" "$work/glass.log" && grep -q "disable-manual-sync quanttrader 0" "$work/glass.log"; then
  ok "break glass opens and closes the window"
else
  nok "break glass output"
fi

# A promotion commit that touched more than the values file is not reverted blindly.
sed -i 's/^  tag: .*/  tag: "2.0.0"/' "$dir/values-dev.yaml"
echo "x" >"$repo/other.txt"
g add -A && g commit -q -m "mixed"
if "$rollback" --env dev --no-push --repo "$repo" 2>/dev/null; then nok "mixed commit reverted"; else ok "mixed promotion commit refused"; fi

echo "rollback-selftest: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
