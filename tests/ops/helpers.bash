# shellcheck shell=bash
# Shared setup of the ops tests: a throw-away Git repository shaped like this one (values
# files, Terraform environment folders, Argo CD folder), fake aws/terraform/kubectl/argocd
# first on PATH, and AWS variables pointing nowhere, so no test can reach a cloud.

REPO_ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
# shellcheck disable=SC2034 # SCRIPTS and the tags are read by the .bats files
SCRIPTS="$REPO_ROOT/scripts"
TAG_A=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
# shellcheck disable=SC2034
TAG_B=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
# shellcheck disable=SC2034
TAG_C=cccccccccccccccccccccccccccccccccccccccc

write_values() {
  cat >"$OPS_ROOT/deploy/helm/quanttrader/values-$1.yaml" <<YAML
# values of $1
replicaCount: 2
image:
  repository: 111122223333.dkr.ecr.us-east-1.amazonaws.com/quanttrader
  tag: "$2" # set by scripts/deploy promote
  pullPolicy: IfNotPresent
sidecar:
  image:
    tag: "1.2.3"
YAML
}

setup() {
  FAKE_DIR="$BATS_TEST_TMPDIR/fake"
  FAKE_LOG="$FAKE_DIR/calls.log"
  mkdir -p "$FAKE_DIR"
  : >"$FAKE_LOG"
  export FAKE_DIR FAKE_LOG
  export PATH="$REPO_ROOT/tests/ops/fakes:$PATH"
  export AWS_REGION=us-east-1
  export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
  export QT_CACHE="$BATS_TEST_TMPDIR/cache"
  unset AWS_PROFILE AWS_DEFAULT_REGION

  OPS_ROOT="$BATS_TEST_TMPDIR/repo"
  export OPS_ROOT
  mkdir -p "$OPS_ROOT/deploy/helm/quanttrader" "$OPS_ROOT/deploy/k8s/argocd"
  local e
  for e in lab dev staging prod; do
    mkdir -p "$OPS_ROOT/deploy/terraform/envs/$e"
    printf 'terraform {}\n' >"$OPS_ROOT/deploy/terraform/envs/$e/main.tf"
    printf 'environment = "%s"\n' "$e" >"$OPS_ROOT/deploy/terraform/envs/$e/$e.tfvars"
  done
  printf 'resources: [argocd.yaml]\n' >"$OPS_ROOT/deploy/k8s/argocd/kustomization.yaml"
  # prod's window as in the repository; the clock is Monday 2026-11-23 09:00 UTC, inside it.
  cat >"$OPS_ROOT/deploy/k8s/argocd/projects.yaml" <<'YAML'
kind: AppProject
metadata:
  name: quanttrader
spec:
  syncWindows:
    - kind: allow
      schedule: "0 8 * * 1-4"
      duration: 8h
      timeZone: UTC
      applications:
        - quanttrader-prod
---
kind: AppProject
metadata:
  name: platform
YAML
  OPS_NOW="$(date -u -d '2026-11-23 09:00' +%s)"
  export OPS_NOW
  cat >"$OPS_ROOT/deploy/k8s/argocd/argocd.yaml" <<'YAML'
kind: Application
spec:
  source:
    repoURL: https://argoproj.github.io/argo-helm
    chart: argo-cd
    targetRevision: 10.1.4
YAML
  write_values dev "$TAG_A"
  write_values staging "$TAG_A"
  write_values prod "$TAG_A"
  git -C "$OPS_ROOT" init -q -b main
  git -C "$OPS_ROOT" config user.email ops-test@example.invalid
  git -C "$OPS_ROOT" config user.name "ops test"
  git -C "$OPS_ROOT" add -A
  git -C "$OPS_ROOT" commit -q -m "initial"
}

# calls: what the fakes were asked, one line each.
calls() { cat "$FAKE_LOG"; }

tag_of() {
  sed -n '/^image:/,/^[^ ]/s/^  tag: "\(.*\)".*/\1/p' "$OPS_ROOT/deploy/helm/quanttrader/values-$1.yaml"
}

# line_no PATTERN: line number in the call log of the first call matching PATTERN.
line_no() { grep -n -m1 -e "$1" "$FAKE_LOG" | cut -d: -f1; }

# refute_call PATTERN: fails when any fake was called with a line matching PATTERN
# (a plain `! grep` does not fail a bats test in the middle of it).
refute_call() {
  if grep -E -e "$1" "$FAKE_LOG"; then
    printf 'unexpected call matching %s\n' "$1" >&2
    return 1
  fi
}
