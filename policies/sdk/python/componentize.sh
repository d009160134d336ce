#!/usr/bin/env bash
# Builds a Python policy (the module `app` in SOURCE_DIR) into OUT_DIR/NAME.wasm with
# componentize-py, which bundles CPython, the policy and the bindings it generates from
# policies/wit into a component of WORLD importing only the deterministic WASI runway offers.
# Usage: componentize.sh WORLD NAME SOURCE_DIR OUT_DIR WORK_DIR (componentize-py on PATH or
# in $COMPONENTIZE_PY).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
world="$1"; name="$2"; source_dir="$3"; out="$4"; work="$5"
componentize_py="${COMPONENTIZE_PY:-componentize-py}"
mkdir -p "$work" "$out"
"$componentize_py" -d "$here/../../wit" -w "$world" componentize app \
  -p "$source_dir" -o "$work/$name.wasm" >/dev/null
mv "$work/$name.wasm" "$out/$name.wasm"
