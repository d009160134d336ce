#!/usr/bin/env bash
# Builds the SAM application for AWS Lambda (arm64) and checks what it built.
#
#   scripts/sam-build.sh [--smoke] [-- SAM_BUILD_ARGS...]
#
# 1. Installs the deploy tools (scripts/install-deploy-tools.sh; idempotent, a second run
#    only checks).
# 2. Runs `sam build` from the repository root, as typed (samconfig.toml there enables the
#    Rust builder's beta feature). The build directory is $RUNWAY_SAM_BUILD_DIR (default
#    .aws-sam/build, where `sam deploy` looks); cargo builds in $RUNWAY_LAMBDA_TARGET_DIR (default
#    ~/.cache/runway/target-lambda), apart from the test builds.
# 3. Checks the built template: every function's code is a directory holding an arm64 ELF
#    `bootstrap`, and all functions share the one executable.
# 4. With --smoke, runs the executable's Runtime API tests (handlers/lambda/tests/runtime_api.rs:
#    webhook, a step, the reaper, an unknown Handler; AWS on moto) on that arm64 `bootstrap`
#    under qemu-aarch64. Needs scripts/setup.sh (moto) and, from apt, qemu-user and
#    libc6-arm64-cross.
#
# Not run by CI: a first build takes about a quarter of an hour on two cores.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf 'sam-build: %s\n' "$*" >&2; }

smoke=0
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) say "unknown option $1 (see --help)"; exit 2 ;;
  esac
done

"$root/scripts/install-deploy-tools.sh"

build_dir="${RUNWAY_SAM_BUILD_DIR:-$root/.aws-sam/build}"
export CARGO_TARGET_DIR="${RUNWAY_LAMBDA_TARGET_DIR:-$HOME/.cache/runway/target-lambda}"
export PATH="$root/.tools/sam-venv/bin:$PATH"
export SAM_CLI_TELEMETRY=0

cd "$root"
started=$(date +%s)
sam build --build-dir "$build_dir" "$@"
say "sam build took $(( $(date +%s) - started )) s"

# The built template, read by the Python that runs the SAM CLI (PyYAML is there).
bootstrap=$("$root/.tools/sam-venv/bin/python" - "$build_dir" <<'PY'
import os, sys, yaml

class Loader(yaml.SafeLoader):
    pass

# CloudFormation's short forms (!Ref, !GetAtt, ...) as plain values.
Loader.add_multi_constructor("!", lambda loader, suffix, node: None)

build_dir = sys.argv[1]
with open(os.path.join(build_dir, "template.yaml")) as file:
    template = yaml.load(file, Loader=Loader)
functions = {
    name: resource["Properties"]
    for name, resource in template["Resources"].items()
    if resource.get("Type") == "AWS::Serverless::Function"
}
if not functions:
    sys.exit("sam-build: the built template has no functions")
code_dirs = set()
for name, properties in sorted(functions.items()):
    code = os.path.join(build_dir, properties.get("CodeUri") or "")
    bootstrap = os.path.join(code, "bootstrap")
    try:
        with open(bootstrap, "rb") as file:
            header = file.read(20)
    except OSError as error:
        sys.exit(f"sam-build: {name}: no bootstrap ({error})")
    # ELF, 64-bit, e_machine 0xB7 (AArch64).
    if header[:4] != b"\x7fELF" or header[4] != 2 or int.from_bytes(header[18:20], "little") != 0xB7:
        sys.exit(f"sam-build: {name}: {bootstrap} is not an arm64 ELF executable")
    if not properties.get("Handler"):
        sys.exit(f"sam-build: {name} has no Handler: it names the entry point the executable runs")
    code_dirs.add(os.path.realpath(code))
    print(f"sam-build: {name}: Handler {properties['Handler']}, {bootstrap}", file=sys.stderr)
if len(code_dirs) != 1:
    sys.exit(f"sam-build: the functions do not share one executable: {sorted(code_dirs)}")
(code,) = code_dirs
size = os.path.getsize(os.path.join(code, "bootstrap"))
print(f"sam-build: {len(functions)} functions share one arm64 bootstrap of {size / 1e6:.1f} MB",
      file=sys.stderr)
print(os.path.join(code, "bootstrap"))
PY
)

[ "$smoke" = 1 ] || exit 0

sysroot=/usr/aarch64-linux-gnu
if ! command -v qemu-aarch64 >/dev/null 2>&1 || [ ! -e "$sysroot/lib/ld-linux-aarch64.so.1" ]; then
  say "--smoke runs the arm64 bootstrap under qemu: apt-get install qemu-user libc6-arm64-cross"
  exit 1
fi
# The tests build where, and as, the test suite builds them: a build of the whole workspace's
# tests (`--test runtime_api` alone would resolve other features and rebuild everything).
unset CARGO_TARGET_DIR
# shellcheck source=scripts/env.sh
source "$root/scripts/env.sh"
tests=$(cargo test --workspace --locked --no-run --message-format=json-render-diagnostics |
  python3 -c '
import json, sys
for line in sys.stdin:
    artifact = json.loads(line)
    if artifact.get("reason") == "compiler-artifact" and artifact["target"]["name"] == "runtime_api" \
            and artifact.get("executable"):
        print(artifact["executable"])
')
[ -n "$tests" ] || { say "cargo built no runtime_api test"; exit 1; }
say "running the Runtime API tests on $bootstrap under qemu-aarch64"
cd "$root/handlers/lambda"
RUNWAY_LAMBDA_EXECUTABLE="qemu-aarch64 -L $sysroot $bootstrap" "$tests"
