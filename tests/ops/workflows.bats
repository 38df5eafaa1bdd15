#!/usr/bin/env bats
# The workflow policy checker catches what it claims to, and the workflows only call
# scripts that exist, with options those scripts accept.

load helpers

py() { "${OPS_PYTHON:-$HOME/.cache/quanttrader/venv-ops/bin/python}" "$@"; }

good_workflow() {
  cat <<'YAML'
name: t
on: [push]
permissions: {}
concurrency: { group: t }
jobs:
  a:
    runs-on: ubuntu-24.04
    timeout-minutes: 5
    permissions:
      contents: read
    steps:
      - uses: actions/checkout@1af3b93b6815bc44a9784bd300feb67ff0d1eeb3 # v6.0.0
YAML
}

@test "the repository's workflows pass the policy" {
  run py "$REPO_ROOT/tests/ops/check-workflows.py" "$REPO_ROOT/.github/workflows"
  [ "$status" -eq 0 ]
  [[ "$output" == *", 0 problems"* ]]
}

@test "a compliant workflow passes" {
  mkdir -p "$BATS_TEST_TMPDIR/wf"
  good_workflow >"$BATS_TEST_TMPDIR/wf/t.yml"
  run py "$REPO_ROOT/tests/ops/check-workflows.py" "$BATS_TEST_TMPDIR/wf"
  [ "$status" -eq 0 ]
}

@test "tag pins, missing version comments, broad permissions, missing timeouts are caught" {
  mkdir -p "$BATS_TEST_TMPDIR/wf"
  good_workflow | sed 's/@1af3b93b6815bc44a9784bd300feb67ff0d1eeb3 # v6.0.0/@v6/' >"$BATS_TEST_TMPDIR/wf/tag.yml"
  good_workflow | sed 's/ # v6.0.0//' >"$BATS_TEST_TMPDIR/wf/nocomment.yml"
  good_workflow | sed 's/^permissions: {}/permissions: write-all/' >"$BATS_TEST_TMPDIR/wf/perm.yml"
  good_workflow | sed '/timeout-minutes/d' >"$BATS_TEST_TMPDIR/wf/timeout.yml"
  good_workflow | sed 's/^on: \[push\]/on: [pull_request_target]/' >"$BATS_TEST_TMPDIR/wf/prt.yml"
  good_workflow | sed 's/1af3b93b6815bc44a9784bd300feb67ff0d1eeb3/08c6903cd8c0fde910a37f88322edcfb5dd907a8/' >"$BATS_TEST_TMPDIR/wf/other-sha.yml"
  run py "$REPO_ROOT/tests/ops/check-workflows.py" "$BATS_TEST_TMPDIR/wf"
  [ "$status" -eq 1 ]
  [[ "$output" == *"tag.yml:12: actions/checkout@v6 is not pinned to a full commit SHA"* ]]
  [[ "$output" == *"nocomment.yml:12: "*"lacks its release in a comment"* ]]
  [[ "$output" == *"perm.yml: top-level permissions must be {}"* ]]
  [[ "$output" == *"timeout.yml: job a has no timeout-minutes"* ]]
  [[ "$output" == *"prt.yml: pull_request_target is forbidden"* ]]
  [[ "$output" == *"actions/checkout is pinned to 2 different SHAs"* ]]
}

@test "every script path the workflows name exists" {
  mapfile -t used < <(grep -ohE '(^|[ "(])(bash )?scripts/[A-Za-z0-9_./-]+' "$REPO_ROOT"/.github/workflows/*.yml |
    sed -E 's/^[ "(]//; s/^bash //; s/[.,:)]+$//' | sort -u)
  [ "${#used[@]}" -gt 0 ]
  for s in "${used[@]}"; do
    [ -e "$REPO_ROOT/$s" ] || { echo "missing: $s"; return 1; }
  done
}

@test "the workflows call scripts/deploy and scripts/rollback with commands and options they accept" {
  local n=0 line script cmd opt
  while read -r line; do
    script="$(printf '%s' "$line" | cut -d' ' -f1)"
    cmd="$(printf '%s' "$line" | cut -d' ' -f2)"
    grep -E '^  [a-z |]+\) shift ;;$' "$REPO_ROOT/$script" | grep -qw -- "$cmd" ||
      { echo "$script has no command $cmd"; return 1; }
    for opt in $(printf '%s' "$line" | grep -oE -- '--[a-z-]+'); do
      grep -qE -- "^    $opt\\)" "$REPO_ROOT/$script" || { echo "$script does not accept $opt"; return 1; }
    done
    n=$((n + 1))
  done < <(grep -hvE '^\s*#' "$REPO_ROOT"/.github/workflows/*.yml |
    grep -oE 'scripts/(deploy|rollback) [a-z]+ [^|;#]*' | sort -u)
  [ "$n" -ge 4 ]
}
