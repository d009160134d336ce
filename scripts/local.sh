#!/usr/bin/env bash
# Set-up, then `runway local`: the whole flow on this machine, no AWS account, no network.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
# shellcheck source=env.sh
source "$root/scripts/env.sh"
cd "$root"
if [ -x scripts/build-policies.sh ]; then scripts/build-policies.sh; fi

say() { printf 'local.sh: %s\n' "$*" >&2; }
# One build for both README commands: the test suite's. Its `runway` binary is built with the
# features the tests resolve, so after scripts/test.sh nothing is rebuilt here, and after this
# scripts/test.sh rebuilds nothing but changes (`cargo run -p runway-cli` would resolve other
# features and build the AWS SDKs a second time).
binary="$CARGO_TARGET_DIR/debug/runway"
if [ -x "$binary" ]; then
  say "checking the build (seconds when nothing changed)"
else
  say "building runway and its tests: a first build takes 30 to 45 minutes on 2 cores;" \
    "cargo shows its progress below"
fi
started=$SECONDS
cargo test --workspace --locked --no-run
say "built in $((SECONDS - started)) s; starting runway local"
exec "$binary" local "$@"
