#!/usr/bin/env bash
# Rust workspace: formatting, lints with warnings as errors, and every test.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib/common.sh
source scripts/lib/common.sh
# The target directory lives in the cache so that a fresh clone on the same machine
# (which is what CI is) does not rebuild every dependency.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$QT_CACHE/cargo-target}"
need_apt build-essential pkg-config cmake

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "cargo test"
cargo test --workspace --locked
