#!/usr/bin/env bash
# Builds the TypeScript throttle: tsc type-checks policy.ts against
# policies/sdk/typescript/runway-policy.d.ts (the WIT contract as JavaScript sees it) and
# emits JavaScript, then componentize-js embeds it in a JavaScript engine component of the
# `throttle` world. HTTP and fetch are left out, so the component imports only the
# deterministic WASI runway offers. Usage: build.sh OUT_DIR WORK_DIR (tsc and componentize-js
# on PATH or in $TSC and $COMPONENTIZE_JS).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$1"; work="$2"
tsc="${TSC:-tsc}"; componentize_js="${COMPONENTIZE_JS:-componentize-js}"
mkdir -p "$work/js" "$out"
"$tsc" -p "$here/tsconfig.json" --outDir "$work/js"
# componentize-js resolves --wit relative to the working directory.
(cd "$here/../.." && "$componentize_js" "$work/js/policy.js" --wit wit --world-name throttle \
  --disable http fetch-event -o "$work/typescript-throttle.wasm" >/dev/null)
mv "$work/typescript-throttle.wasm" "$out/typescript-throttle.wasm"
