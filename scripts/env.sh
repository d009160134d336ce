# Shared environment for runway's scripts: source it, don't run it.
runway_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export RUNWAY_ROOT="$runway_root"
# One build directory outside the clone, so fresh clones on the same machine build incrementally.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/runway/target}"
export PATH="$runway_root/.tools/venv/bin:$PATH"
export RUNWAY_NODE_MODULES="$runway_root/scripts/node/node_modules"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
