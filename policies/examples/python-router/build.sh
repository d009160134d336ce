#!/usr/bin/env bash
# Builds the Python router: componentize-py bundles CPython, this policy and the bindings it
# generates from policies/wit into a component of the `router` world, which imports only the
# deterministic WASI runway offers. Usage: build.sh OUT_DIR WORK_DIR (componentize-py on PATH
# or in $COMPONENTIZE_PY).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$1"; work="$2"
componentize_py="${COMPONENTIZE_PY:-componentize-py}"
mkdir -p "$work" "$out"
"$componentize_py" -d "$here/../../wit" -w router componentize app \
  -p "$here" -o "$work/python-router.wasm" >/dev/null
mv "$work/python-router.wasm" "$out/python-router.wasm"
