#!/usr/bin/env bats
# scripts/rollback against fakes: application (GitOps tag history, Argo CD), infrastructure
# (re-apply of an earlier commit) and state (S3 version restore).

load helpers

@test "rollback --help prints usage" {
  run "$SCRIPTS/rollback" --help
  [ "$status" -eq 0 ]
  [[ "$output" == *"scripts/rollback app ENV"* ]]
  [[ "$output" == *"scripts/rollback state ENV"* ]]
}

@test "app rollback returns to the tag the environment ran before" {
  "$SCRIPTS/deploy" promote dev --tag "$TAG_B"
  "$SCRIPTS/deploy" promote dev --tag "$TAG_C"
  run "$SCRIPTS/rollback" app dev
  [ "$status" -eq 0 ]
  [ "$(tag_of dev)" = "$TAG_B" ]
  [ "$(git -C "$OPS_ROOT" log -1 --format=%s)" = "rollback(dev): image $TAG_C -> $TAG_B" ]
  # A second rollback undoes the first: the tag dev ran before B (the rollback) was C.
  run "$SCRIPTS/rollback" app dev
  [ "$status" -eq 0 ]
  [ "$(tag_of dev)" = "$TAG_C" ]
}

@test "app rollback --to picks the tag and --dry-run changes nothing" {
  "$SCRIPTS/deploy" promote dev --tag "$TAG_B"
  run "$SCRIPTS/rollback" app dev --to "$TAG_A" --dry-run
  [ "$status" -eq 0 ]
  [[ "$output" == *"DRY-RUN: set deploy/helm/quanttrader/values-dev.yaml image tag to $TAG_A"* ]]
  [ "$(tag_of dev)" = "$TAG_B" ]
  run "$SCRIPTS/rollback" app dev --to "$TAG_A"
  [ "$status" -eq 0 ]
  [ "$(tag_of dev)" = "$TAG_A" ]
}

@test "app rollback without history asks for --to" {
  run "$SCRIPTS/rollback" app staging
  [ "$status" -ne 0 ]
  [[ "$output" == *"pass --to TAG"* ]]
}

@test "app rollback refuses lab and mutable tags" {
  run "$SCRIPTS/rollback" app lab --to "$TAG_A"
  [ "$status" -ne 0 ]
  run "$SCRIPTS/rollback" app dev --to latest
  [ "$status" -ne 0 ]
  [[ "$output" == *"not immutable"* ]]
}

@test "app rollback --argocd rolls prod back in the cluster after the Git commit" {
  "$SCRIPTS/deploy" promote prod --tag "$TAG_B" --skip-order-check test
  run "$SCRIPTS/rollback" app prod --argocd
  [ "$status" -eq 0 ]
  [ "$(tag_of prod)" = "$TAG_A" ]
  grep -q 'argocd app rollback quanttrader-prod --timeout 900' "$FAKE_LOG"
  [ "$(line_no 'app rollback')" -lt "$(line_no 'app wait quanttrader-prod --health')" ]
  refute_call 'sync-policy'
}

@test "app rollback --argocd is refused for the auto-synced environments" {
  "$SCRIPTS/deploy" promote dev --tag "$TAG_B"
  run "$SCRIPTS/rollback" app dev --argocd
  [ "$status" -ne 0 ]
  [[ "$output" == *"--argocd is for prod only"* ]]
  [ "$(tag_of dev)" = "$TAG_B" ]
  refute_call 'argocd'
}

@test "infra rollback plans the environment as of an earlier commit, in a separate worktree" {
  good="$(git -C "$OPS_ROOT" rev-parse HEAD)"
  printf 'resource "null_resource" "x" {}\n' >>"$OPS_ROOT/deploy/terraform/envs/dev/main.tf"
  git -C "$OPS_ROOT" commit -q -am "bad change"
  run "$SCRIPTS/rollback" infra dev --ref "$good" --dry-run
  [ "$status" -eq 0 ]
  grep -q "init .*-backend-config=key=envs/dev/terraform.tfstate" "$FAKE_LOG"
  grep -q ' plan .*-out=rollback.tfplan' "$FAKE_LOG"
  # The plan ran outside the operator's checkout.
  refute_call "chdir=$OPS_ROOT/"
  [[ "$output" == *"DRY-RUN: terraform"*"apply"*"rollback.tfplan"* ]]
  # The temporary worktree is gone again.
  [ "$(git -C "$OPS_ROOT" worktree list | wc -l)" -eq 1 ]
}

@test "infra rollback refuses an unknown ref" {
  run "$SCRIPTS/rollback" infra dev --ref no-such-ref --dry-run
  [ "$status" -ne 0 ]
  [[ "$output" == *"unknown Git ref"* ]]
}

@test "state rollback lists versions, then restores one by copying it over the key" {
  run "$SCRIPTS/rollback" state staging
  [ "$status" -eq 0 ]
  grep -q 'aws s3api list-object-versions --bucket quanttrader-tfstate-111122223333-us-east-1 --prefix envs/staging/terraform.tfstate' "$FAKE_LOG"
  run "$SCRIPTS/rollback" state staging --version-id v3 --dry-run
  [ "$status" -eq 0 ]
  [[ "$output" == *"DRY-RUN: aws s3api copy-object --bucket quanttrader-tfstate-111122223333-us-east-1 --key envs/staging/terraform.tfstate --copy-source quanttrader-tfstate-111122223333-us-east-1/envs/staging/terraform.tfstate\?versionId=v3"* ]]
  refute_call 'copy-object'
}

@test "state rollback of a missing version fails" {
  FAKE_VERSION_EXISTS=0 run "$SCRIPTS/rollback" state dev --version-id nope --confirm dev
  [ "$status" -ne 0 ]
  [[ "$output" == *"no version nope"* ]]
  refute_call 'copy-object'
}

@test "app rollback of prod outside its window still commits, and says when it will reach the cluster" {
  "$SCRIPTS/deploy" promote prod --tag "$TAG_B" --skip-order-check test
  OPS_NOW="$(date -u -d '2026-11-28 22:00' +%s)" run "$SCRIPTS/rollback" app prod
  [ "$status" -eq 0 ]
  [[ "$output" == *"sync window is closed"* ]]
  [ "$(tag_of prod)" = "$TAG_A" ]
}
