#!/usr/bin/env bats
# scripts/destroy against fakes: the prod guard, the typed confirmations, bucket emptying,
# Kubernetes pre-clean, dependency order and the final report.

load helpers

state_fixture() {
  cat >"$FAKE_DIR/state-list" <<'LIST'
module.vpc.aws_vpc.this[0]
module.kms.aws_kms_key.this["s3"]
module.eks.aws_eks_cluster.this[0]
module.rds.aws_db_instance.this[0]
module.s3.aws_s3_bucket.this["market-data"]
module.s3.aws_s3_bucket.this["backups"]
module.alb.aws_lb.this[0]
module.msk.aws_msk_cluster.this[0]
module.budgets.aws_budgets_budget.this[0]
aws_iam_role.github_deploy
LIST
  cat >"$FAKE_DIR/show.json" <<'JSON'
{"values": {"root_module": {"child_modules": [
  {"address": "module.eks", "resources": [{"type": "aws_eks_cluster", "values": {"name": "quanttrader-dev"}}]},
  {"address": "module.s3", "resources": [
    {"type": "aws_s3_bucket", "values": {"bucket": "qt-dev-market-data"}},
    {"type": "aws_s3_bucket", "values": {"bucket": "qt-dev-backups"}}]}
]}}}
JSON
}

@test "destroy --help prints usage" {
  run "$SCRIPTS/destroy" --help
  [ "$status" -eq 0 ]
  [[ "$output" == *"--allow-prod"* ]]
}

@test "prod is refused without --allow-prod, before touching anything" {
  run "$SCRIPTS/destroy" prod --confirm prod
  [ "$status" -ne 0 ]
  [[ "$output" == *"refusing to destroy prod without --allow-prod"* ]]
  [ ! -s "$FAKE_LOG" ]
}

@test "an empty state means nothing to destroy" {
  run "$SCRIPTS/destroy" dev --dry-run
  [ "$status" -eq 0 ]
  [[ "$output" == *"nothing to destroy"* ]]
  refute_call 'destroy'
}

@test "dry-run shows the plan and every step in dependency order, and destroys nothing" {
  state_fixture
  FAKE_BUCKET_EXISTS=1 run "$SCRIPTS/destroy" dev --dry-run
  [ "$status" -eq 0 ]
  [[ "$output" == *"10 resources in state"* ]]
  [[ "$output" == *"Plan: 0 to add, 0 to change, 42 to destroy."* ]]
  [[ "$output" == *"DRY-RUN: terraform state pull"* ]]
  [[ "$output" == *"DRY-RUN: delete every object version and delete marker of s3://qt-dev-market-data"* ]]
  [[ "$output" == *"DRY-RUN: kubectl --context quanttrader-dev-destroy delete ingress --all-namespaces --all"* ]]
  [[ "$output" == *"DRY-RUN: kubectl --context quanttrader-dev-destroy -n ingress delete service lb-public"* ]]
  order="$(printf '%s\n' "$output" | sed -n 's/.*DRY-RUN: terraform .* -target=module\.\([a-z0-9]*\).*/\1/p' | tr '\n' ' ')"
  [ "$order" = "s3 alb msk rds eks budgets kms vpc " ]
  refute_call 'terraform .* destroy|delete-objects|kubectl .* delete'
}

@test "without a terminal and without --confirm nothing is destroyed or backed up" {
  state_fixture
  run "$SCRIPTS/destroy" dev </dev/null
  [ "$status" -ne 0 ]
  [[ "$output" == *"pass --confirm dev"* ]]
  refute_call ' destroy -input|state pull|delete-objects'
}

@test "a confirmed destroy backs up state, empties buckets, destroys in order and reports" {
  state_fixture
  FAKE_BUCKET_EXISTS=1 run "$SCRIPTS/destroy" dev --confirm dev --backup-dir "$BATS_TEST_TMPDIR/backups"
  [ "$status" -eq 0 ]
  ls "$BATS_TEST_TMPDIR"/backups/dev-111122223333-*.tfstate
  grep -q 'aws s3api delete-objects --bucket qt-dev-market-data' "$FAKE_LOG"
  grep -q 'aws s3api delete-objects --bucket qt-dev-backups' "$FAKE_LOG"
  [ "$(line_no 'state pull')" -lt "$(line_no 'delete-objects')" ]
  [ "$(line_no 'kubectl .* delete ingress')" -lt "$(line_no 'target=module.s3')" ]
  [ "$(line_no 'delete-objects')" -lt "$(line_no 'target=module.s3')" ]
  [ "$(line_no 'target=module.s3')" -lt "$(line_no 'target=module.eks')" ]
  [ "$(line_no 'target=module.eks')" -lt "$(line_no 'target=module.kms')" ]
  [ "$(line_no 'target=module.kms')" -lt "$(line_no 'target=module.vpc')" ]
  grep -q 'terraform .* destroy -input=false -lock-timeout=5m -auto-approve -var-file=dev.tfvars$' "$FAKE_LOG"
  [[ "$output" == *"Terraform state: empty"* ]]
  [[ "$output" == *"arn:aws:kms:us-east-1:111122223333:key/pending"* ]]
}

@test "prod needs --allow-prod, its name and the account id" {
  state_fixture
  run "$SCRIPTS/destroy" prod --allow-prod --confirm prod --confirm-account 000000000000 --skip-k8s
  [ "$status" -ne 0 ]
  [[ "$output" == *"does not match"* ]]
  refute_call ' destroy -input|state pull'
  run "$SCRIPTS/destroy" prod --allow-prod --confirm prod --confirm-account 111122223333 --skip-k8s \
    --backup-dir "$BATS_TEST_TMPDIR/backups"
  [ "$status" -eq 0 ]
  grep -q 'target=module.vpc' "$FAKE_LOG"
  refute_call 'kubectl'
}

@test "destroy refuses credentials of an unexpected account" {
  state_fixture
  run "$SCRIPTS/destroy" staging --account 222233334444 --confirm staging
  [ "$status" -ne 0 ]
  [[ "$output" == *"credentials are for account 111122223333"* ]]
  refute_call 'terraform'
}

@test "modules called through a shared root module are destroyed in the same order" {
  cat >"$FAKE_DIR/state-list" <<'LIST'
module.stack.module.vpc.aws_vpc.this[0]
module.stack.module.kms.aws_kms_key.this["s3"]
module.stack.module.eks.aws_eks_cluster.this[0]
module.stack.module.s3.aws_s3_bucket.this["market-data"]
module.stack.module.rds[0].aws_db_instance.this[0]
module.stack.aws_iam_role.github_deploy
LIST
  run "$SCRIPTS/destroy" dev --dry-run --skip-k8s
  [ "$status" -eq 0 ]
  order="$(printf '%s\n' "$output" | sed -n 's/.*DRY-RUN: terraform .* -target=\([a-z0-9.]*\).*/\1/p' | tr '\n' ' ')"
  [ "$order" = "module.stack.module.s3 module.stack.module.rds module.stack.module.eks module.stack.module.kms module.stack.module.vpc " ]
}

backup_fixture() {
  cat >"$FAKE_DIR/state-list" <<'LIST'
module.kms.aws_kms_key.this["data"]
module.kms.aws_kms_alias.this["data"]
module.kms.aws_kms_key.this["logs"]
module.backup.aws_backup_vault.this[0]
module.backup.aws_backup_vault_lock_configuration.this[0]
module.backup.aws_backup_plan.this[0]
module.vpc.aws_vpc.this[0]
LIST
  cat >"$FAKE_DIR/show.json" <<'JSON'
{"values": {"root_module": {"child_modules": [
  {"address": "module.kms", "resources": [
    {"address": "module.kms.aws_kms_key.this[\"data\"]", "mode": "managed", "type": "aws_kms_key",
     "values": {"arn": "arn:aws:kms:us-east-1:111122223333:key/data-key", "key_id": "data-key"}},
    {"address": "module.kms.aws_kms_alias.this[\"data\"]", "mode": "managed", "type": "aws_kms_alias",
     "values": {"name": "alias/quanttrader-dev/data", "target_key_id": "data-key"}},
    {"address": "module.kms.aws_kms_key.this[\"logs\"]", "mode": "managed", "type": "aws_kms_key",
     "values": {"arn": "arn:aws:kms:us-east-1:111122223333:key/logs-key", "key_id": "logs-key"}}]},
  {"address": "module.backup", "resources": [
    {"address": "module.backup.aws_backup_vault.this[0]", "mode": "managed", "type": "aws_backup_vault",
     "values": {"name": "quanttrader-dev", "kms_key_arn": "arn:aws:kms:us-east-1:111122223333:key/data-key",
                "arn": "arn:aws:backup:us-east-1:111122223333:backup-vault:quanttrader-dev"}},
    {"address": "module.backup.aws_backup_vault_lock_configuration.this[0]", "mode": "managed",
     "type": "aws_backup_vault_lock_configuration", "values": {"backup_vault_name": "quanttrader-dev"}},
    {"address": "module.backup.aws_backup_plan.this[0]", "mode": "managed", "type": "aws_backup_plan",
     "values": {"name": "quanttrader-dev"}}]}
]}}}
JSON
}

@test "vaults holding backups are kept, with their key, and reported" {
  backup_fixture
  FAKE_RECOVERY_POINTS=12 run "$SCRIPTS/destroy" dev --confirm dev --skip-k8s --backup-dir "$BATS_TEST_TMPDIR/backups"
  [ "$status" -eq 0 ]
  grep -q 'terraform .* state rm -lock-timeout=5m module.backup.aws_backup_vault.this\[0\]$' "$FAKE_LOG"
  grep -q 'state rm -lock-timeout=5m module.backup.aws_backup_vault_lock_configuration.this\[0\]$' "$FAKE_LOG"
  grep -q 'state rm -lock-timeout=5m module.kms.aws_kms_key.this\["data"\]$' "$FAKE_LOG"
  grep -q 'state rm -lock-timeout=5m module.kms.aws_kms_alias.this\["data"\]$' "$FAKE_LOG"
  refute_call 'state rm .*(logs|aws_backup_plan)'
  refute_call 'delete-recovery-point'
  [ "$(line_no 'state rm')" -lt "$(line_no 'target=module.backup')" ]
  [[ "$output" == *"kept on purpose"*"vault quanttrader-dev in us-east-1 (12 recovery points)"* ]]
}

@test "--delete-backups deletes the recovery points instead, and an empty vault is simply destroyed" {
  backup_fixture
  FAKE_RECOVERY_POINTS=2 run "$SCRIPTS/destroy" dev --confirm dev --skip-k8s --delete-backups \
    --backup-dir "$BATS_TEST_TMPDIR/backups"
  [ "$status" -eq 0 ]
  grep -q 'aws backup delete-recovery-point --region us-east-1 --backup-vault-name quanttrader-dev --recovery-point-arn arn:aws:backup:us-east-1:111122223333:recovery-point:rp-2' "$FAKE_LOG"
  refute_call 'state rm'
  : >"$FAKE_LOG"
  rm -f "$FAKE_DIR/destroyed"
  FAKE_RECOVERY_POINTS=0 run "$SCRIPTS/destroy" dev --confirm dev --skip-k8s --backup-dir "$BATS_TEST_TMPDIR/backups"
  [ "$status" -eq 0 ]
  refute_call 'state rm|delete-recovery-point'
  grep -q 'target=module.backup' "$FAKE_LOG"
}

@test "deletion protection stops the destroy before anything is touched (dry-run only warns)" {
  state_fixture
  cat >"$FAKE_DIR/show.json" <<'JSON'
{"values": {"root_module": {"child_modules": [
  {"address": "module.rds", "resources": [{"address": "module.rds.aws_db_instance.this[0]", "mode": "managed",
    "type": "aws_db_instance", "values": {"deletion_protection": true}}]},
  {"address": "module.eks", "resources": [{"address": "module.eks.aws_eks_cluster.this[0]", "mode": "managed",
    "type": "aws_eks_cluster", "values": {"name": "quanttrader-staging", "deletion_protection": false}}]}
]}}}
JSON
  run "$SCRIPTS/destroy" staging --confirm staging --backup-dir "$BATS_TEST_TMPDIR/backups"
  [ "$status" -ne 0 ]
  [[ "$output" == *"deletion protection is on for:"*"module.rds.aws_db_instance.this[0]"* ]]
  [[ "$output" == *"deploy/terraform/envs/staging/terraform.tfvars"*"nothing was changed"* ]]
  [[ "$output" != *"quanttrader-staging"* ]]
  refute_call 'state pull|delete|destroy -input'
  run "$SCRIPTS/destroy" staging --dry-run
  [ "$status" -eq 0 ]
  [[ "$output" == *"WARNING: turn it off in Terraform first"* ]]
}
