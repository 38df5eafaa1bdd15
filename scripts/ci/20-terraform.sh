#!/usr/bin/env bash
# CI step: checks deploy/terraform and the cost of its environments.
#   1. terraform fmt -check -recursive
#   2. terraform init + validate of every module, example and environment, against the
#      AWS provider's real 6.x schema (schema-only provider from a filesystem mirror: the
#      registry is unreachable; see deploy/terraform/tools/schema-provider)
#   3. terraform test with mock providers: module tests (toggles, validations), the shared
#      root's tests, a plan of every environment with its tfvars and of every seed 004
#      scenario
#   4. tflint (bundled terraform ruleset, preset "all")
#   5. Checkov: zero failed checks (skips only inline, with their reason)
#   6. terraform-docs: every module's README.md up to date
#   7. cost-estimate: every environment and scenario within the budget it declares
#
# Tools are built once from package registries into ~/.cache/quanttrader by
# scripts/build-terraform-tools (cold: ~10 minutes on 2 cores; warm: nothing).
#
# Usage: scripts/ci/20-terraform.sh [--help]
set -euo pipefail
case "${1:-}" in
  -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib/common.sh
source scripts/lib/common.sh

scripts/build-terraform-tools
export TF_CLI_CONFIG_FILE="$QT_CACHE/terraform/cli.tfrc"
export TF_IN_AUTOMATION=1
export CHECKPOINT_DISABLE=1
tf_root="deploy/terraform"
failures=()
fail() { failures+=("$1"); printf 'FAILED: %s\n' "$1" >&2; }
# phase NAME: logs the banner and the time the previous phase took.
phase_start=$SECONDS
phase_name=""
phase() {
  [ -z "$phase_name" ] || printf '    (%s: %ss)\n' "$phase_name" "$((SECONDS - phase_start))" >&2
  phase_name="$1"
  phase_start=$SECONDS
  log "$1"
}

phase "terraform fmt"
terraform fmt -check -recursive -diff "$tf_root" || fail "terraform fmt (run: terraform fmt -recursive $tf_root)"

# Every directory holding .tf files is a module, an example or an environment.
mapfile -t dirs < <(find "$tf_root" -name '*.tf' -not -path '*/.terraform/*' -not -path '*/tools/*' -printf '%h\n' | sort -u)

phase "terraform init + validate (${#dirs[@]} configurations)"
for dir in "${dirs[@]}"; do
  if ! out="$(terraform -chdir="$dir" init -backend=false -input=false -no-color 2>&1)"; then
    printf '%s\n' "$out" >&2
    fail "terraform init $dir"
    continue
  fi
  # A module that declares provider aliases (configuration_aliases) cannot be validated
  # alone, Terraform has no provider to give it: its examples and the environments do.
  if grep -q configuration_aliases "$dir/versions.tf" 2>/dev/null; then
    ls "$dir"/examples/*/main.tf >/dev/null 2>&1 || fail "$dir declares provider aliases but has no example to validate it"
    continue
  fi
  terraform -chdir="$dir" validate -no-color >/dev/null 2>"$QT_CACHE/terraform/validate.err" || {
    cat "$QT_CACHE/terraform/validate.err" >&2
    fail "terraform validate $dir"
  }
done

phase "terraform test (mock providers)"
tests=0
for dir in "${dirs[@]}"; do
  [ -d "$dir/tests" ] || continue
  tests=$((tests + 1))
  terraform -chdir="$dir" test -no-color || fail "terraform test $dir"
done
# The seed 004 scenarios, each planned as the dev environment.
for scenario in "$tf_root"/scenarios/*.tfvars; do
  tests=$((tests + 1))
  terraform -chdir="$tf_root/envs/dev" test -no-color -var-file="../../scenarios/$(basename "$scenario")" ||
    fail "terraform test with $scenario"
done
[ "$tests" -gt 0 ] || fail "no terraform tests found"

phase "tflint"
tflint --chdir="$tf_root" --recursive --config "$PWD/$tf_root/.tflint.hcl" --format compact || fail "tflint"

phase "checkov"
"$QT_CACHE/venv-terraform/bin/checkov" --directory "$tf_root" --framework terraform --quiet --compact \
  --skip-download --skip-path tools || fail "checkov"

phase "terraform-docs"
for dir in "$tf_root"/modules/*/; do
  terraform-docs --config "$tf_root/.terraform-docs.yml" --output-check "$dir" >/dev/null ||
    fail "terraform-docs: ${dir}README.md is stale (run: terraform-docs --config $tf_root/.terraform-docs.yml $dir)"
done

phase "cost estimate"
CARGO_TARGET_DIR="$QT_CACHE/cargo-target" nice -n 10 cargo run --quiet --locked -p cost-estimate -- \
  --terraform-dir "$tf_root" --all || fail "cost estimate (an environment is over its budget, or a price is missing)"

phase "done"
if [ "${#failures[@]}" -gt 0 ]; then
  printf '\n20-terraform: %d check(s) failed:\n' "${#failures[@]}"
  printf '  - %s\n' "${failures[@]}"
  exit 1
fi
printf '\n20-terraform: all checks passed\n'
