#!/usr/bin/env bash
# Builds the probe like the Python example (policies/sdk/python/componentize.sh).
# Usage: build.sh OUT_DIR WORK_DIR.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$here/../../sdk/python/componentize.sh" router python-probe "$here" "$1" "$2"
