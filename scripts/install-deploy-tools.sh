#!/usr/bin/env bash
# Installs what `sam build` needs to build runway's Rust functions for AWS Lambda (arm64):
#   - cargo-lambda (cargo install, once per machine, into ~/.cargo/bin: outside the clone);
#   - ziglang (cargo-lambda's cross linker) and the AWS SAM CLI, into the project venv.
# Not run by CI: the test suite validates the template but never builds for Lambda.
# Idempotent: a second run only checks.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.tools/sam-venv"
say() { printf 'install-deploy-tools: %s\n' "$*" >&2; }

# Keep in step with scripts/setup.sh (the SAM CLI pins its own boto3, so it has its own venv).
SAM_CLI_VERSION="1.170.0"
ZIGLANG_VERSION="0.16.0"
CARGO_LAMBDA_VERSION="1.9.2"

command -v cargo >/dev/null 2>&1 || { say "install Rust from https://rustup.rs first"; exit 1; }
command -v python3 >/dev/null 2>&1 || { say "install python3 and python3-venv first"; exit 1; }

if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  say "adding rust target aarch64-unknown-linux-gnu"
  rustup target add aarch64-unknown-linux-gnu
fi

if cargo lambda --version 2>/dev/null | grep -q "$CARGO_LAMBDA_VERSION"; then
  say "cargo-lambda $CARGO_LAMBDA_VERSION is installed"
else
  say "installing cargo-lambda $CARGO_LAMBDA_VERSION (cargo install, a few minutes)"
  cargo install cargo-lambda --version "$CARGO_LAMBDA_VERSION" --locked
fi

if [ ! -x "$venv/bin/python" ]; then
  say "creating $venv"
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -m pip show ziglang 2>/dev/null | grep -qx "Version: $ZIGLANG_VERSION" \
   || ! "$venv/bin/sam" --version 2>/dev/null | grep -q "$SAM_CLI_VERSION"; then
  say "installing ziglang $ZIGLANG_VERSION and aws-sam-cli $SAM_CLI_VERSION into $venv"
  "$venv/bin/python" -m pip install --quiet "ziglang==$ZIGLANG_VERSION" "aws-sam-cli==$SAM_CLI_VERSION"
fi

cat >&2 <<MSG
install-deploy-tools: ready. Build and deploy from the repository root with the venv on PATH
(cargo-lambda finds zig there):

  export PATH="$venv/bin:\$PATH"
  sam build && sam deploy
MSG
