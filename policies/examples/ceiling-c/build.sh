#!/usr/bin/env bash
# Builds the C policy: wit-bindgen generates the bindings from policies/wit, clang compiles
# for wasm32 with no libc, wasm-ld links a module that imports nothing, runway-policy-build
# makes the component. Usage: build.sh OUT_DIR WORK_DIR (clang, wasm-ld, wit-bindgen and
# runway-policy-build on PATH or in $CLANG, $WASM_LD, $WIT_BINDGEN, $POLICY_BUILD).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$1"; work="$2"
clang="${CLANG:-clang}"; wasm_ld="${WASM_LD:-wasm-ld}"
wit_bindgen="${WIT_BINDGEN:-wit-bindgen}"; policy_build="${POLICY_BUILD:-runway-policy-build}"
mkdir -p "$work" "$out"
"$wit_bindgen" c "$here/../../wit" --world throttle --out-dir "$work" >/dev/null
flags=(--target=wasm32-unknown-unknown -O2 -ffreestanding -nostdlib -Wall -Werror -I "$work" -I "$here" -isystem "$here/libc")
for src in "$here/policy.c" "$here/runtime.c" "$work/throttle.c"; do
  "$clang" "${flags[@]}" -c "$src" -o "$work/$(basename "$src" .c).o"
done
"$wasm_ld" --no-entry -o "$work/ceiling-c.core.wasm" \
  "$work/policy.o" "$work/runtime.o" "$work/throttle.o" "$work/throttle_component_type.o"
"$policy_build" --module "$work/ceiling-c.core.wasm" --name ceiling-c --out-dir "$out"
