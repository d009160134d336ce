#!/usr/bin/env bash
# Builds every policy module from source: the example policies into policies/build/<name>.wasm
# and the host's test modules into policies/build/tests/<name>.wasm. Idempotent and
# incremental: cargo rebuilds only what changed and unchanged components are not rewritten.
#
# Policies build for wasm32-unknown-unknown in their own workspaces (policies/sdk/rust,
# policies/examples, policies/tests/*) with their own target directory, then
# runway-policy-build (policies/sdk/rust/build) turns each module into a component that
# imports nothing. Policies in C, Python and TypeScript (a build.sh beside their sources) are
# built with clang, componentize-py and tsc with componentize-js.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

say() { printf 'build-policies: %s\n' "$*" >&2; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

export CARGO_TARGET_DIR="${RUNWAY_POLICIES_TARGET_DIR:-$HOME/.cache/runway/policies-target}"
locked=()
[ "${CI:-}" = "true" ] && locked=(--locked)

say "building runway-policy-build"
cargo build --quiet --release "${locked[@]}" \
  --manifest-path policies/sdk/rust/Cargo.toml -p runway-policy-build
tool="$CARGO_TARGET_DIR/release/runway-policy-build"

out="$root/policies/build"
say "building example policies into policies/build"
"$tool" --manifest-path policies/examples/Cargo.toml --out-dir "$out" -- --quiet "${locked[@]}"

for crate in policies/tests/*/; do
  [ -f "$crate/Cargo.toml" ] || continue
  say "building test module $(basename "$crate") into policies/build/tests"
  "$tool" --manifest-path "$crate/Cargo.toml" --out-dir "$out/tests" -- --quiet "${locked[@]}"
done
# Policies in C (policies/examples/*/build.sh): built when clang with the wasm32 target and
# wasm-ld are installed (Debian: apt-get install clang lld); wit-bindgen's C generator is
# installed on first use. Without them the C examples are skipped, and said so.
find_tool() {
  local name
  for name in "$@"; do
    if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
  done
  return 1
}
c_examples=()
for dir in policies/examples/*/; do
  [ -x "$dir/build.sh" ] && [ -f "$dir/policy.c" ] && c_examples+=("$dir")
done
if [ "${#c_examples[@]}" -gt 0 ]; then
  clang="$(find_tool clang clang-19 clang-18 clang-17 clang-16 clang-15 clang-14 || true)"
  wasm_ld="$(find_tool wasm-ld wasm-ld-19 wasm-ld-18 wasm-ld-17 wasm-ld-16 wasm-ld-15 wasm-ld-14 || true)"
  if [ -z "$clang" ] || [ -z "$wasm_ld" ]; then
    say "skipping C policies (${c_examples[*]}): install clang and lld (apt-get install clang lld)"
  else
    tools="$HOME/.cache/runway/tools"
    wit_bindgen_version=0.51.0
    if ! "$tools/bin/wit-bindgen" --version 2>/dev/null | grep -q "$wit_bindgen_version"; then
      say "installing wit-bindgen $wit_bindgen_version (C generator) into $tools"
      cargo install --quiet --locked wit-bindgen-cli --version "$wit_bindgen_version" \
        --no-default-features --features c --root "$tools"
    fi
    for dir in "${c_examples[@]}"; do
      name="$(basename "$dir")"
      say "building C policy $name into policies/build"
      CLANG="$clang" WASM_LD="$wasm_ld" WIT_BINDGEN="$tools/bin/wit-bindgen" POLICY_BUILD="$tool" \
        "$dir/build.sh" "$out" "$CARGO_TARGET_DIR/c/$name" >/dev/null
    done
  fi
fi

# Policies in Python (app.py, componentize-py from the venv scripts/setup.sh makes) and in
# TypeScript (policy.ts, tsc and componentize-js from scripts/node). Each takes 10 to 20 s, so
# one is rebuilt only when its sources, the contract or the toolchain changed (a stamp of
# their hashes beside the component).
venv_bin="$root/.tools/venv/bin"
node_bin="$root/scripts/node/node_modules/.bin"
sources_stamp() {
  local dir="$1"; shift
  {
    find "$dir" -maxdepth 1 -type f ! -name cases.json ! -name README.md -print0 \
      | sort -z | xargs -0 sha256sum
    sha256sum policies/wit/*.wit policies/sdk/typescript/*.d.ts policies/sdk/python/*.sh
    "$@"
  } | sha256sum | cut -d' ' -f1
}
for dir in policies/examples/*/ policies/tests/*/; do
  [ -x "$dir/build.sh" ] || continue
  name="$(basename "$dir")"
  dest="$out"
  case "$dir" in policies/tests/*) dest="$out/tests" ;; esac
  if [ -f "$dir/app.py" ]; then
    tools=("$venv_bin/componentize-py")
    versions() { "$venv_bin/componentize-py" --version; }
  elif [ -f "$dir/policy.ts" ]; then
    tools=("$node_bin/tsc" "$node_bin/componentize-js")
    versions() { "$node_bin/tsc" --version; "$node_bin/componentize-js" --version; }
  else
    continue
  fi
  for tool in "${tools[@]}"; do
    if [ ! -x "$tool" ]; then
      say "cannot build $name: $tool is missing; run scripts/setup.sh"
      exit 1
    fi
  done
  stamp="$(sources_stamp "$dir" versions)"
  stamp_file="$CARGO_TARGET_DIR/stamps/$name"
  if [ -f "$dest/$name.wasm" ] && [ "$(cat "$stamp_file" 2>/dev/null)" = "$stamp" ]; then
    continue
  fi
  say "building policy $name into ${dest#"$root/"}"
  COMPONENTIZE_PY="$venv_bin/componentize-py" TSC="$node_bin/tsc" \
    COMPONENTIZE_JS="$node_bin/componentize-js" \
    "$dir/build.sh" "$dest" "$CARGO_TARGET_DIR/$name"
  mkdir -p "$(dirname "$stamp_file")"
  printf '%s\n' "$stamp" > "$stamp_file"
done

say "done: $(cd "$out" && ls -1 ./*.wasm tests/*.wasm | tr '\n' ' ')"
