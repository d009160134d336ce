#!/usr/bin/env bash
# The whole test suite, from a fresh clone: set-up, policy modules built from source,
# formatting, lints, then every test in the workspace.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
# shellcheck source=env.sh
source "$root/scripts/env.sh"
cd "$root"
# A one-off build gains nothing from incremental caches, and on a small CI disk they cost
# gigabytes.
if [ "${CI:-}" = "true" ]; then
  export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
fi

step() { printf '\n== %s\n' "$*" >&2; }

# A build that runs out of disk half-way fails with linker crashes that say nothing useful.
# RUNWAY_PRUNE=0 leaves the build directory alone (e.g. one shared with other projects).
prune="${RUNWAY_PRUNE:-1}"
[ "$prune" = 0 ] || scripts/prune-target.sh

if [ -x scripts/build-policies.sh ]; then
  step "building policy modules from source"
  scripts/build-policies.sh
fi

step "policy SDK and example policy tests"
scripts/test-policies.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "the runway binary and the tests share their dependencies' features"
scripts/check-feature-unity.sh

# Diagnostics still print as usual; stdout keeps the list of artifacts each build used.
listings="$(mktemp -d)"
trap 'rm -rf "$listings"' EXIT

step "cargo clippy"
cargo clippy --workspace --all-targets --locked --message-format=json-render-diagnostics \
  -- -D warnings >"$listings/clippy.json"

step "cargo test"
cargo test --workspace --locked --no-run --message-format=json-render-diagnostics \
  >"$listings/test.json"
# Only what these two builds used stays in the build directory.
[ "$prune" = 0 ] || scripts/prune-target.sh --keep "$listings/clippy.json" "$listings/test.json"
cargo test --workspace --locked
