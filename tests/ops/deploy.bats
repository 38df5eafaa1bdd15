#!/usr/bin/env bats
# scripts/deploy against fakes: infra (plan/confirm/apply/kubeconfig/Argo CD), GitOps
# promotion with its order rule, and waiting for Argo CD.

load helpers

@test "deploy --help prints usage" {
  run "$SCRIPTS/deploy" --help
  [ "$status" -eq 0 ]
  [[ "$output" == *"scripts/deploy infra ENV"* ]]
  [[ "$output" == *"scripts/deploy promote ENV --tag TAG"* ]]
}

@test "deploy refuses an unknown command and an unknown environment" {
  run "$SCRIPTS/deploy" launch dev
  [ "$status" -ne 0 ]
  [[ "$output" == *"unknown command"* ]]
  run "$SCRIPTS/deploy" infra qa --dry-run
  [ "$status" -ne 0 ]
  [[ "$output" == *"unknown environment 'qa'"* ]]
}

@test "infra --dry-run inits the env's remote state, plans, and applies nothing" {
  run "$SCRIPTS/deploy" infra dev --dry-run
  [ "$status" -eq 0 ]
  grep -q 'terraform -chdir=.*/envs/dev init -input=false -reconfigure -backend-config=bucket=quanttrader-tfstate-111122223333-us-east-1 -backend-config=key=envs/dev/terraform.tfstate -backend-config=region=us-east-1 -backend-config=encrypt=true -backend-config=use_lockfile=true' "$FAKE_LOG"
  grep -q 'terraform -chdir=.*/envs/dev plan .*-detailed-exitcode -var-file=dev.tfvars -out=tfplan-dev' "$FAKE_LOG"
  [[ "$output" == *"DRY-RUN: terraform -chdir="*"apply -input=false -lock-timeout=5m tfplan-dev"* ]]
  [[ "$output" == *"DRY-RUN: aws eks update-kubeconfig --name quanttrader-test --region us-east-1 --alias quanttrader-dev"* ]]
  [[ "$output" == *"DRY-RUN: kubectl --context quanttrader-dev apply --server-side --force-conflicts -k"* ]]
  refute_call 'terraform .* apply|update-kubeconfig|kubectl .*apply|helm'
}

@test "infra --plan-only --detailed-exitcode exits 2 on changes and 0 without (drift check)" {
  run "$SCRIPTS/deploy" infra prod --plan-only --detailed-exitcode
  [ "$status" -eq 2 ]
  FAKE_PLAN_RC=0 run "$SCRIPTS/deploy" infra prod --plan-only --detailed-exitcode
  [ "$status" -eq 0 ]
  refute_call 'terraform .* apply'
}

@test "a first bootstrap installs Argo CD with the chart version Git pins, then registers the cluster" {
  FAKE_ARGOCD_INSTALLED=0 run "$SCRIPTS/deploy" infra staging --confirm staging
  [ "$status" -eq 0 ]
  grep -q 'helm --kube-context quanttrader-staging upgrade --install argocd argo-cd --repo https://argoproj.github.io/argo-helm --version 10.1.4 --namespace argocd' "$FAKE_LOG"
  [ "$(line_no '^helm ')" -lt "$(line_no 'apply --server-side')" ]
  grep -q 'argocd.argoproj.io/secret-type: cluster' "$FAKE_DIR/applied.yaml"
  grep -q 'quanttrader.io/environment: "staging"' "$FAKE_DIR/applied.yaml"
  grep -q 'quanttrader.io/account-id: "111122223333"' "$FAKE_DIR/applied.yaml"
  grep -q 'quanttrader.io/cluster-name: "quanttrader-test"' "$FAKE_DIR/applied.yaml"
  grep -q 'quanttrader.io/vpc-id: "vpc-0123456789abcdef0"' "$FAKE_DIR/applied.yaml"
  grep -q '  name: quanttrader-staging$' "$FAKE_DIR/applied.yaml"
}

@test "infra --plan-only stops after the plan" {
  run "$SCRIPTS/deploy" infra staging --plan-only
  [ "$status" -eq 0 ]
  grep -q 'envs/staging plan' "$FAKE_LOG"
  refute_call 'apply|update-kubeconfig'
}

@test "infra without a terminal and without --confirm stops before applying" {
  run "$SCRIPTS/deploy" infra dev </dev/null
  [ "$status" -ne 0 ]
  [[ "$output" == *"pass --confirm dev"* ]]
  refute_call 'terraform .* apply'
}

@test "infra with a wrong --confirm stops before applying" {
  run "$SCRIPTS/deploy" infra dev --confirm prod
  [ "$status" -ne 0 ]
  [[ "$output" == *"does not match"* ]]
  refute_call 'terraform .* apply'
}

@test "infra --auto-approve is refused for prod" {
  run "$SCRIPTS/deploy" infra prod --auto-approve
  [ "$status" -ne 0 ]
  [[ "$output" == *"refused for prod"* ]]
  refute_call 'plan|apply'
}

@test "infra --confirm dev applies the saved plan, writes the kubeconfig and bootstraps Argo CD" {
  run "$SCRIPTS/deploy" infra dev --confirm dev
  [ "$status" -eq 0 ]
  grep -q 'terraform -chdir=.*/envs/dev apply -input=false -lock-timeout=5m tfplan-dev' "$FAKE_LOG"
  grep -q 'aws eks update-kubeconfig --name quanttrader-test --region us-east-1 --alias quanttrader-dev' "$FAKE_LOG"
  grep -q 'kubectl --context quanttrader-dev apply --server-side --force-conflicts -k .*/deploy/k8s/argocd' "$FAKE_LOG"
  grep -q 'kubectl --context quanttrader-dev -n argocd get application quanttrader-dev' "$FAKE_LOG"
  # Argo CD is already there (the fake CRD exists): no Helm install.
  refute_call '^helm '
  [ "$(line_no ' plan ')" -lt "$(line_no ' apply ')" ]
  [ "$(line_no ' apply ')" -lt "$(line_no 'update-kubeconfig')" ]
}

@test "infra --infra-only stops after Terraform" {
  run "$SCRIPTS/deploy" infra dev --confirm dev --infra-only
  [ "$status" -eq 0 ]
  grep -q 'terraform .* apply .*tfplan-dev' "$FAKE_LOG"
  refute_call 'update-kubeconfig|kubectl|helm'
}

@test "infra with no changes does not apply but still bootstraps" {
  FAKE_PLAN_RC=0 run "$SCRIPTS/deploy" infra dev
  [ "$status" -eq 0 ]
  [[ "$output" == *"no infrastructure changes"* ]]
  refute_call 'terraform .* apply'
  grep -q 'update-kubeconfig' "$FAKE_LOG"
}

@test "a failing plan stops the deploy" {
  FAKE_PLAN_RC=1 run "$SCRIPTS/deploy" infra dev --confirm dev
  [ "$status" -ne 0 ]
  [[ "$output" == *"terraform plan failed"* ]]
  refute_call 'terraform .* apply'
}

@test "promote dev rewrites only the image tag line and commits it" {
  before="$(cat "$OPS_ROOT/deploy/helm/quanttrader/values-dev.yaml")"
  run "$SCRIPTS/deploy" promote dev --tag "$TAG_B"
  [ "$status" -eq 0 ]
  [ "$(tag_of dev)" = "$TAG_B" ]
  # Exactly one line differs, and the sidecar's tag: is untouched.
  [ "$(diff <(printf '%s\n' "$before") "$OPS_ROOT/deploy/helm/quanttrader/values-dev.yaml" | grep -c '^>')" -eq 1 ]
  grep -q '    tag: "1.2.3"' "$OPS_ROOT/deploy/helm/quanttrader/values-dev.yaml"
  [ "$(git -C "$OPS_ROOT" log -1 --format=%s)" = "deploy(dev): promote image $TAG_B" ]
  [ -z "$(git -C "$OPS_ROOT" status --porcelain)" ]
}

@test "promote --dry-run changes nothing" {
  run "$SCRIPTS/deploy" promote dev --tag "$TAG_B" --dry-run
  [ "$status" -eq 0 ]
  [[ "$output" == *"DRY-RUN: set deploy/helm/quanttrader/values-dev.yaml image tag to $TAG_B"* ]]
  [[ "$output" == *"DRY-RUN: git -C"*"commit"* ]]
  [ "$(tag_of dev)" = "$TAG_A" ]
  [ "$(git -C "$OPS_ROOT" rev-list --count HEAD)" -eq 1 ]
}

@test "promote enforces dev -> staging -> prod" {
  run "$SCRIPTS/deploy" promote staging --tag "$TAG_B"
  [ "$status" -ne 0 ]
  [[ "$output" == *"dev runs '$TAG_A', not '$TAG_B'"* ]]
  run "$SCRIPTS/deploy" promote prod --tag "$TAG_B"
  [ "$status" -ne 0 ]
  "$SCRIPTS/deploy" promote dev --tag "$TAG_B"
  "$SCRIPTS/deploy" promote staging --tag "$TAG_B"
  "$SCRIPTS/deploy" promote prod --tag "$TAG_B"
  [ "$(tag_of prod)" = "$TAG_B" ]
  [ "$(git -C "$OPS_ROOT" rev-list --count HEAD)" -eq 4 ]
}

@test "a hotfix may skip the order with a recorded reason" {
  run "$SCRIPTS/deploy" promote prod --tag "$TAG_C" --skip-order-check "INC-42 hotfix"
  [ "$status" -eq 0 ]
  [ "$(tag_of prod)" = "$TAG_C" ]
  [[ "$(git -C "$OPS_ROOT" log -1 --format=%s)" == *"order check skipped: INC-42 hotfix"* ]]
}

@test "promote refuses mutable tags" {
  run "$SCRIPTS/deploy" promote dev --tag latest
  [ "$status" -ne 0 ]
  [[ "$output" == *"not immutable"* ]]
  run "$SCRIPTS/deploy" promote dev --tag main
  [ "$status" -ne 0 ]
  run "$SCRIPTS/deploy" promote dev --tag v1.4.2
  [ "$status" -eq 0 ]
}

@test "promote of the tag already running is a no-op" {
  run "$SCRIPTS/deploy" promote dev --tag "$TAG_A"
  [ "$status" -eq 0 ]
  [[ "$output" == *"already runs"* ]]
  [ "$(git -C "$OPS_ROOT" rev-list --count HEAD)" -eq 1 ]
}

@test "promote --image-repo refuses an image that is not in ECR" {
  FAKE_ECR_HAS_IMAGE=0 run "$SCRIPTS/deploy" promote dev --tag "$TAG_B" \
    --image-repo 111122223333.dkr.ecr.us-east-1.amazonaws.com/quanttrader
  [ "$status" -ne 0 ]
  [[ "$output" == *"is not in ECR"* ]]
  grep -q 'aws ecr describe-images --repository-name quanttrader --image-ids imageTag='"$TAG_B" "$FAKE_LOG"
  [ "$(tag_of dev)" = "$TAG_A" ]
}

@test "wait succeeds once Argo CD is Synced and Healthy on the tag" {
  FAKE_APP_IMAGES="[\"repo/quanttrader:$TAG_A\"]" run "$SCRIPTS/deploy" wait dev --tag "$TAG_A" --timeout 5
  [ "$status" -eq 0 ]
  [[ "$output" == *"quanttrader-dev runs $TAG_A"* ]]
}

@test "wait fails on Degraded, and on timeout" {
  FAKE_APP_HEALTH=Degraded FAKE_APP_IMAGES="[\"repo/quanttrader:$TAG_A\"]" \
    run "$SCRIPTS/deploy" wait dev --tag "$TAG_A" --timeout 5
  [ "$status" -ne 0 ]
  [[ "$output" == *"Degraded"* ]]
  FAKE_APP_IMAGES="[\"repo/quanttrader:$TAG_B\"]" run "$SCRIPTS/deploy" wait dev --tag "$TAG_A" --timeout 0
  [ "$status" -ne 0 ]
  [[ "$output" == *"not Synced+Healthy"* ]]
}

@test "wait --sync asks Argo CD to sync before waiting" {
  FAKE_APP_IMAGES="[\"repo/quanttrader:$TAG_A\"]" run "$SCRIPTS/deploy" wait prod --tag "$TAG_A" --timeout 5 --sync
  [ "$status" -eq 0 ]
  grep -q 'kubectl -n argocd patch application quanttrader-prod --type merge -p {"operation":' "$FAKE_LOG"
  [ "$(line_no 'patch application')" -lt "$(line_no 'jsonpath={.status.sync.status}')" ]
}

@test "wait --sync fails at once when the requested sync fails, and ignores older failures" {
  FAKE_APP_SYNC=OutOfSync FAKE_APP_IMAGES="[\"repo/quanttrader:$TAG_B\"]" \
    FAKE_APP_OPERATION="Failed|2099-01-01T00:00:00Z|Blocked by sync window" \
    run "$SCRIPTS/deploy" wait prod --tag "$TAG_A" --timeout 300 --sync
  [ "$status" -ne 0 ]
  [[ "$output" == *"the sync of quanttrader-prod failed: Blocked by sync window"* ]]
  FAKE_APP_IMAGES="[\"repo/quanttrader:$TAG_A\"]" \
    FAKE_APP_OPERATION="Failed|2001-01-01T00:00:00Z|an old failure" \
    run "$SCRIPTS/deploy" wait prod --tag "$TAG_A" --timeout 5 --sync
  [ "$status" -eq 0 ]
}

@test "promote --push rebases onto a remote that moved on, and refuses a conflicting change" {
  remote="$BATS_TEST_TMPDIR/remote.git"
  git init -q --bare -b main "$remote"
  git -C "$OPS_ROOT" remote add origin "$remote"
  git -C "$OPS_ROOT" push -q -u origin main
  other="$BATS_TEST_TMPDIR/other"
  git clone -q "$remote" "$other"
  git -C "$other" -c user.email=o@example.invalid -c user.name=other commit -q --allow-empty -m "a merge elsewhere"
  git -C "$other" push -q
  run "$SCRIPTS/deploy" promote dev --tag "$TAG_B" --push
  [ "$status" -eq 0 ]
  [[ "$output" == *"push rejected"* ]]
  git -C "$remote" log --format=%s main | grep -q 'deploy(dev): promote image'
  git -C "$remote" log --format=%s main | grep -q 'a merge elsewhere'
  # The same line changed on the remote: nothing is pushed.
  git -C "$other" pull -q --rebase
  sed -i "s/^  tag: .*/  tag: \"$TAG_C\"/" "$other/deploy/helm/quanttrader/values-staging.yaml"
  git -C "$other" -c user.email=o@example.invalid -c user.name=other commit -q -am "staging by hand"
  git -C "$other" push -q
  run "$SCRIPTS/deploy" promote staging --tag "$TAG_B" --push
  [ "$status" -ne 0 ]
  [[ "$output" == *"nothing was pushed"* ]]
  [ "$(git -C "$remote" log -1 --format=%s main)" = "staging by hand" ]
}

@test "promote to prod is refused outside its sync window unless a reason is given" {
  OPS_NOW="$(date -u -d '2026-11-27 10:00' +%s)" run "$SCRIPTS/deploy" promote prod --tag "$TAG_B" --skip-order-check test
  [ "$status" -ne 0 ]
  [[ "$output" == *"quanttrader-prod's sync window is closed"* ]]
  [ "$(tag_of prod)" = "$TAG_A" ]
  OPS_NOW="$(date -u -d '2026-11-23 16:00' +%s)" run "$SCRIPTS/deploy" promote prod --tag "$TAG_B" \
    --skip-order-check test --outside-window "release manager on call"
  [ "$status" -eq 0 ]
  git -C "$OPS_ROOT" log -1 --format=%s | grep -q 'outside the sync window: release manager on call'
  # staging has no window: any time is fine.
  OPS_NOW="$(date -u -d '2026-11-29 03:00' +%s)" run "$SCRIPTS/deploy" promote staging --tag "$TAG_B" --skip-order-check test
  [ "$status" -eq 0 ]
}

@test "the sync window is read from the repository's Argo CD projects" {
  # ops.sh defines its own `run`, so it is sourced in a child shell, not in the test.
  ops() {
    OPS_ARGOCD_DIR="$REPO_ROOT/deploy/k8s/argocd" bash -c 'source "$1"; shift; "$@"' _ "$REPO_ROOT/scripts/lib/ops.sh" "$@"
  }
  ops has_sync_window quanttrader-prod
  run ops has_sync_window quanttrader-dev
  [ "$status" -ne 0 ]
  OPS_NOW="$(date -u -d '2026-11-26 15:59' +%s)" ops sync_window_open quanttrader-prod
  OPS_NOW="$(date -u -d '2026-11-26 16:00' +%s)" run ops sync_window_open quanttrader-prod
  [ "$status" -ne 0 ]
  OPS_NOW="$(date -u -d '2026-11-29 12:00' +%s)" run ops sync_window_open quanttrader-prod
  [ "$status" -ne 0 ]
}

@test "infra --plan-file applies a plan made earlier, exactly, without planning again" {
  printf 'saved plan\n' >"$BATS_TEST_TMPDIR/tfplan-prod"
  run "$SCRIPTS/deploy" infra prod --plan-file "$BATS_TEST_TMPDIR/tfplan-prod" --confirm prod --infra-only
  [ "$status" -eq 0 ]
  refute_call 'terraform .* plan '
  grep -q "terraform .* show -no-color $BATS_TEST_TMPDIR/tfplan-prod\$" "$FAKE_LOG"
  grep -q "terraform .* apply -input=false -lock-timeout=5m $BATS_TEST_TMPDIR/tfplan-prod\$" "$FAKE_LOG"
  [ "$(line_no ' init ')" -lt "$(line_no ' apply ')" ]
  [ -f "$BATS_TEST_TMPDIR/tfplan-prod" ]
  run "$SCRIPTS/deploy" infra prod --plan-file "$BATS_TEST_TMPDIR/tfplan-prod" </dev/null
  [ "$status" -ne 0 ]
  [[ "$output" == *"pass --confirm prod"* ]]
  run "$SCRIPTS/deploy" infra prod --plan-file "$BATS_TEST_TMPDIR/missing" --confirm prod
  [ "$status" -ne 0 ]
  [[ "$output" == *"no plan file"* ]]
  run "$SCRIPTS/deploy" infra prod --plan-file "$BATS_TEST_TMPDIR/tfplan-prod" --plan-only
  [ "$status" -ne 0 ]
  [[ "$output" == *"exclude each other"* ]]
}
