#!/usr/bin/env bash
# Builds the probe like the Python example (componentize-py). Usage: build.sh OUT_DIR WORK_DIR.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$1"; work="$2"
componentize_py="${COMPONENTIZE_PY:-componentize-py}"
mkdir -p "$work" "$out"
"$componentize_py" -d "$here/../../wit" -w router componentize app \
  -p "$here" -o "$work/python-probe.wasm" >/dev/null
mv "$work/python-probe.wasm" "$out/python-probe.wasm"
