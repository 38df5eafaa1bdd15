#!/usr/bin/env bats
# The runbooks can be followed: links and anchors resolve, the runbooks the scripts and
# workflows point at exist, and the script calls they show are accepted by the scripts.

load helpers

py() { "${OPS_PYTHON:-python3}" "$@"; }

# A copy of the parts of the repository the checker reads, to break on purpose.
copy_repo() {
  local dst="$BATS_TEST_TMPDIR/copy"
  mkdir -p "$dst/docs" "$dst/scripts/lib" "$dst/.github"
  cp -r "$REPO_ROOT/docs/runbooks" "$dst/docs/"
  cp "$REPO_ROOT"/scripts/{deploy,rollback,destroy,bootstrap-state} "$dst/scripts/"
  cp "$REPO_ROOT/scripts/lib/ops.sh" "$dst/scripts/lib/"
  cp -r "$REPO_ROOT/.github/workflows" "$dst/.github/"
  printf '%s\n' "$dst"
}

@test "the repository's runbooks pass" {
  run py "$REPO_ROOT/tests/ops/check-runbooks.py" "$REPO_ROOT"
  [ "$status" -eq 0 ]
  [[ "$output" == *", 0 problems"* ]]
}

@test "every runbook the issue asks for exists" {
  for f in README disaster-recovery incident-response scaling secret-rotation cost-review; do
    [ -s "$REPO_ROOT/docs/runbooks/$f.md" ] || { echo "missing docs/runbooks/$f.md"; return 1; }
  done
  grep -q 'RTO under 4 hours, RPO under 15 minutes' "$REPO_ROOT/docs/runbooks/disaster-recovery.md"
}

@test "broken links, anchors, script commands and options are caught" {
  dst="$(copy_repo)"
  printf '\nSee [gone](nowhere.md), [bad anchor](scaling.md#no-such-heading).\n' >>"$dst/docs/runbooks/README.md"
  # Backticks are Markdown here, not command substitution.
  cat >>"$dst/docs/runbooks/README.md" <<'MD'

Run `scripts/deploy launch dev` and `scripts/rollback app dev --everything`.
MD
  cat >>"$dst/docs/runbooks/cost-review.md" <<'MD'

Then `scripts/destroy lab --force`.
MD
  rm "$dst/docs/runbooks/secret-rotation.md"
  run py "$REPO_ROOT/tests/ops/check-runbooks.py" "$dst"
  [ "$status" -eq 1 ]
  [[ "$output" == *"README.md:"*": link to missing nowhere.md"* ]]
  [[ "$output" == *"no heading #no-such-heading in scaling.md"* ]]
  [[ "$output" == *"scripts/deploy has no command launch"* ]]
  [[ "$output" == *"scripts/rollback does not accept --everything"* ]]
  [[ "$output" == *"scripts/destroy does not accept --force"* ]]
  [[ "$output" == *"link to missing secret-rotation.md"* ]]
}
