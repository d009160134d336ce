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
scripts/prune-target.sh

if [ -x scripts/build-policies.sh ]; then
  step "building policy modules from source"
  scripts/build-policies.sh
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked
