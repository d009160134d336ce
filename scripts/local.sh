#!/usr/bin/env bash
# Set-up, then `runway local`: the whole flow on this machine, no AWS account, no network.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
# shellcheck source=env.sh
source "$root/scripts/env.sh"
cd "$root"
if [ -x scripts/build-policies.sh ]; then scripts/build-policies.sh; fi
exec cargo run --quiet --locked -p runway-cli -- local "$@"
