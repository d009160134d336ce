#!/usr/bin/env bash
# The policy SDK's and the example policies' own tests, run natively on this machine. They are
# workspaces of their own (policies/sdk/rust, policies/examples: their policies build for
# wasm32), so `cargo test --workspace` at the root does not reach them. They share the target
# directory scripts/build-policies.sh uses; the tests build in the debug profile beside its
# release builds. Idempotent: a second run only re-runs the tests.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

export CARGO_TARGET_DIR="${RUNWAY_POLICIES_TARGET_DIR:-$HOME/.cache/runway/policies-target}"
locked=()
[ "${CI:-}" = "true" ] && locked=(--locked)

for manifest in policies/sdk/rust/Cargo.toml policies/examples/Cargo.toml; do
  printf 'test-policies: %s\n' "$(dirname "$manifest")" >&2
  cargo test --quiet "${locked[@]}" --manifest-path "$manifest" --workspace
done
