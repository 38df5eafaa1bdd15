#!/usr/bin/env bats
# scripts/bootstrap-state against fake AWS: what it would create, and that dry-run
# creates nothing.

load helpers

@test "bootstrap-state --help prints usage" {
  run "$SCRIPTS/bootstrap-state" --help
  [ "$status" -eq 0 ]
  [[ "$output" == *"Usage: scripts/bootstrap-state"* ]]
}

@test "bootstrap-state rejects unknown arguments" {
  run "$SCRIPTS/bootstrap-state" --frobnicate
  [ "$status" -ne 0 ]
  [[ "$output" == *"unknown argument"* ]]
}

@test "dry-run on a new account plans bucket, key, versioning, encryption and lockdown without changing anything" {
  run "$SCRIPTS/bootstrap-state" --dry-run --region eu-west-1
  [ "$status" -eq 0 ]
  [[ "$output" == *"s3://quanttrader-tfstate-111122223333-eu-west-1"* ]]
  [[ "$output" == *"DRY-RUN: aws kms create-key"* ]]
  [[ "$output" == *"DRY-RUN: aws kms enable-key-rotation"* ]]
  [[ "$output" == *"DRY-RUN: aws s3api create-bucket --bucket quanttrader-tfstate-111122223333-eu-west-1"*"LocationConstraint=eu-west-1"* ]]
  [[ "$output" == *"DRY-RUN: aws s3api put-bucket-versioning"*"Status=Enabled"* ]]
  [[ "$output" == *"DRY-RUN: aws s3api put-bucket-encryption"*"aws:kms"*"alias/quanttrader-tfstate"* ]]
  [[ "$output" == *"DRY-RUN: aws s3api put-public-access-block"*"BlockPublicAcls=true"* ]]
  [[ "$output" == *"DenyInsecureTransport"* ]]
  # Only reads reached the fake CLI.
  refute_call 'create-bucket|put-bucket|create-key|create-alias|put-public'
}

@test "us-east-1 buckets are created without a LocationConstraint" {
  run "$SCRIPTS/bootstrap-state" --dry-run --region us-east-1
  [ "$status" -eq 0 ]
  [[ "$output" == *"DRY-RUN: aws s3api create-bucket"* ]]
  [[ "$output" != *"LocationConstraint"* ]]
}

@test "an existing bucket and key are converged, not recreated" {
  FAKE_BUCKET_EXISTS=1 FAKE_KMS_EXISTS=1 run "$SCRIPTS/bootstrap-state" --dry-run
  [ "$status" -eq 0 ]
  [[ "$output" == *"bucket exists"* ]]
  [[ "$output" != *"create-bucket"* ]]
  [[ "$output" != *"create-key"* ]]
  [[ "$output" == *"DRY-RUN: aws s3api put-bucket-versioning"* ]]
}

@test "a real run applies every setting and checks versioning afterwards" {
  FAKE_BUCKET_EXISTS=1 FAKE_KMS_EXISTS=1 run "$SCRIPTS/bootstrap-state"
  [ "$status" -eq 0 ]
  grep -q 'put-bucket-versioning' "$FAKE_LOG"
  grep -q 'put-bucket-encryption' "$FAKE_LOG"
  grep -q 'put-bucket-lifecycle-configuration' "$FAKE_LOG"
  grep -q 'get-bucket-versioning' "$FAKE_LOG"
}

@test "credentials for another account are refused" {
  run "$SCRIPTS/bootstrap-state" --dry-run --account 999999999999
  [ "$status" -ne 0 ]
  [[ "$output" == *"credentials are for account 111122223333"* ]]
}
