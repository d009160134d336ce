#!/usr/bin/env bash
# Checks that the `runway` binary built alone (`cargo build --workspace --bin runway`, what
# scripts/local.sh builds) and the test build (`cargo test --workspace`, what
# scripts/test.sh builds) turn on the same features of every shared dependency, so that
# neither build compiles a dependency the other one already did. Prints what
# crates/workspace-hack/Cargo.toml must add when they differ; exit status 1 then.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
tree() {
  cargo tree --workspace --locked -e "$1" --prefix none -f '{p} [{f}]'
}
# The trees go through files: together they are longer than one argument may be.
trees=$(mktemp -d)
trap 'rm -rf "$trees"' EXIT
tree normal,build >"$trees/normal"
tree normal,build,dev >"$trees/all"
python3 - "$trees/normal" "$trees/all" <<'PY'
import re, sys

def features(text):
    found = {}
    for line in text.splitlines():
        match = re.match(r"(\S+) v(\S+)(?: \([^)]*\))? \[(.*)\]", line.strip())
        if match:
            name, version, listed = match.groups()
            found.setdefault((name, version), set()).update(f for f in listed.split(",") if f)
    return found

def read(path):
    with open(path) as file:
        return file.read()

binary, tests = features(read(sys.argv[1])), features(read(sys.argv[2]))
missing = {
    key: sorted(tests[key] - binary[key])
    for key in sorted(tests)
    if key in binary and tests[key] - binary[key]
}
if missing:
    print("check-feature-unity: the test build turns on features the runway binary does not;")
    print("add these to crates/workspace-hack/Cargo.toml [dependencies]:")
    for (name, version), extra in missing.items():
        print(f'  {name} = {{ version = "{version}", features = {extra} }}'.replace("'", '"'))
    sys.exit(1)
print("check-feature-unity: the runway binary and the tests share every dependency's features")
PY
