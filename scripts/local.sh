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
# The runway binary alone, with the features the test build turns on in every shared
# dependency (crates/workspace-hack, checked by scripts/check-feature-unity.sh): so after
# scripts/test.sh nothing is rebuilt here, and after this scripts/test.sh builds only the
# tests. (`cargo run -p runway-cli` would resolve other features and build the AWS SDKs a
# second time.)
binary="$CARGO_TARGET_DIR/debug/runway"
if [ -x "$binary" ]; then
  say "checking the build (seconds when nothing changed)"
else
  say "building runway: a first build takes about 10 minutes on 2 cores;" \
    "cargo shows its progress below"
fi
started=$SECONDS
cargo build --workspace --locked --bin runway
say "built in $((SECONDS - started)) s; starting runway local"
exec "$binary" local "$@"
