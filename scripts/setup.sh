#!/usr/bin/env bash
# Installs everything runway's build, `runway local` and the test suite need, on a Debian
# machine with Rust, Python 3 and Node.js. Idempotent: a second run only checks.
#
# Everything lands in project-local places: .tools/venv (Python), scripts/node/node_modules
# (npm), the rustup targets for WebAssembly policies. Cargo builds go to $CARGO_TARGET_DIR,
# which defaults to ~/.cache/runway/target so that repeated clones share one build.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
mkdir -p "$tools"

say() { printf 'setup: %s\n' "$*" >&2; }
need() { command -v "$1" >/dev/null 2>&1 || { say "missing $1: $2"; exit 1; }; }

need cargo "install Rust from https://rustup.rs"
need rustup "install Rust from https://rustup.rs"
need python3 "install python3 (apt-get install python3 python3-venv)"
need npm "install Node.js 20 or newer (apt-get install nodejs npm)"

# stamp NAME INPUT...: true when the stamp matches the hash of the inputs.
stamp_ok() {
  local name="$1"; shift
  local want; want="$(cat "$@" | sha256sum | cut -d' ' -f1)"
  [ -f "$tools/$name.stamp" ] && [ "$(cat "$tools/$name.stamp")" = "$want" ]
}
stamp_write() {
  local name="$1"; shift
  cat "$@" | sha256sum | cut -d' ' -f1 > "$tools/$name.stamp"
}

# WebAssembly targets for policy modules.
installed_targets="$(rustup target list --installed)"
for target in wasm32-unknown-unknown wasm32-wasip2; do
  if ! grep -qx "$target" <<<"$installed_targets"; then
    say "adding rust target $target"
    rustup target add "$target"
  fi
done

# Debian packages the tests use, installed when the command they provide is missing.
# apt_need WHAT PACKAGES...: WHAT says what needs them.
apt_need() {
  local what="$1"; shift
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing $* (apt-get) for $what"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    say "missing $* for $what: sudo apt-get install $*"; exit 1
  fi
}
have_any() { local n; for n in "$@"; do command -v "$n" >/dev/null 2>&1 && return 0; done; return 1; }

# clang and wasm-ld build the C example policy.
if ! have_any clang clang-19 clang-16 clang-15 clang-14 || ! have_any wasm-ld wasm-ld-19 wasm-ld-16 wasm-ld-15 wasm-ld-14; then
  apt_need "the C example policy" clang lld
fi
# Headless Chromium loads the web console of `runway local` in the console tests.
have_any chromium || apt_need "the web console tests" chromium
# kubectl drives the Kubernetes emulator in its client tests.
have_any kubectl || apt_need "the Kubernetes emulator tests" kubernetes-client
# The EC2 boot script tests lint the user data they generate.
have_any shellcheck || apt_need "the boot script tests" shellcheck

# Python tools: moto (real AWS APIs on loopback), boto3, the aws CLI and componentize-py.
if [ ! -x "$tools/venv/bin/python" ]; then
  say "creating $tools/venv"
  python3 -m venv "$tools/venv" || {
    say "python3 -m venv failed: apt-get install python3-venv"; exit 1; }
fi
if ! stamp_ok pip "$root/scripts/requirements-dev.txt"; then
  say "installing Python tools (moto, boto3, awscli, componentize-py)"
  "$tools/venv/bin/python" -m pip install --quiet --upgrade pip
  "$tools/venv/bin/python" -m pip install --quiet -r "$root/scripts/requirements-dev.txt"
  stamp_write pip "$root/scripts/requirements-dev.txt"
fi
if [ ! -x "$tools/kube-venv/bin/python" ]; then
  say "creating $tools/kube-venv"
  python3 -m venv "$tools/kube-venv" || {
    say "python3 -m venv failed: apt-get install python3-venv"; exit 1; }
fi
if ! stamp_ok pip-kube "$root/scripts/requirements-kube.txt"; then
  say "installing the Kubernetes Python client"
  "$tools/kube-venv/bin/python" -m pip install --quiet -r "$root/scripts/requirements-kube.txt"
  stamp_write pip-kube "$root/scripts/requirements-kube.txt"
fi
# The AWS SAM CLI (`sam validate --lint` in the deploy tests) pins its own boto3, which
# clashes with moto's, so it lives in a venv of its own.
sam_cli_version="1.170.0"
if ! "$tools/sam-venv/bin/sam" --version 2>/dev/null | grep -q "$sam_cli_version"; then
  say "installing aws-sam-cli $sam_cli_version into $tools/sam-venv"
  [ -x "$tools/sam-venv/bin/python" ] || python3 -m venv "$tools/sam-venv"
  "$tools/sam-venv/bin/python" -m pip install --quiet "aws-sam-cli==$sam_cli_version"
fi

# npm packages: GitHub's published OpenAPI specs, a States Language validator, and the
# TypeScript compiler and componentize-js that build JavaScript policies.
if ! stamp_ok npm "$root/scripts/node/package.json" "$root/scripts/node/package-lock.json" \
   || [ ! -d "$root/scripts/node/node_modules" ]; then
  say "installing npm packages (@octokit/openapi, @octokit/openapi-webhooks, asl-validator, typescript, componentize-js)"
  (cd "$root/scripts/node" && npm ci --no-audit --no-fund --loglevel=error)
  stamp_write npm "$root/scripts/node/package.json" "$root/scripts/node/package-lock.json"
fi

say "ready"
