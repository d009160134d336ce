#!/usr/bin/env bash
# Keeps the shared build directory from filling the disk.
#
#   scripts/prune-target.sh                  before a build: make room
#   scripts/prune-target.sh --keep FILE...   after a build: keep only what it used
#
# Before a build: each rebuild of a test or binary leaves the previous executable behind under
# a new hash, and a build cut short by a full disk leaves its object files; neither is used
# again, so they always go. When fewer than RUNWAY_MIN_FREE_GB (default 15) are then free, the
# incremental caches go too, and as a last resort the debug builds: a slower build beats one
# that dies half-way with a linker crash.
#
# After a build: FILE holds cargo's `--message-format=json` output of that build. Every
# library and executable in target/debug/deps that no listed build produced is stale (another
# feature set, an older dependency version) and goes.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=env.sh
source "$root/scripts/env.sh"

target="$CARGO_TARGET_DIR"
min_free_gb="${RUNWAY_MIN_FREE_GB:-15}"
[ -d "$target" ] || exit 0

free_gb() { df -Pk "$target" | awk 'NR == 2 { print int($4 / 1048576) }'; }
say() { printf 'prune-target: %s\n' "$*" >&2; }

if [ "${1:-}" = "--keep" ]; then
  shift
  [ "$#" -gt 0 ] || { say "--keep needs the JSON output of at least one build"; exit 2; }
  before="$(free_gb)"
  python3 - "$target/debug/deps" "$@" <<'PY'
import json, os, sys

deps, listings = sys.argv[1], sys.argv[2:]
live = set()
for listing in listings:
    with open(listing, encoding="utf-8") as lines:
        for line in lines:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if message.get("reason") != "compiler-artifact":
                continue
            for path in message.get("filenames", []) + [message.get("executable") or ""]:
                if os.path.dirname(path) == deps:
                    # `libfoo-HASH.rlib` and `.rmeta` and `.d` share the stem `libfoo-HASH`.
                    live.add(os.path.basename(path).split(".")[0])
if not live:
    sys.exit("prune-target: the build listings name no artifact; nothing pruned")
removed = 0
for name in os.listdir(deps):
    path = os.path.join(deps, name)
    if os.path.isfile(path) and name.split(".")[0] not in live:
        removed += os.path.getsize(path)
        os.remove(path)
print(f"prune-target: removed {removed / 1e9:.1f} GB of stale build artifacts", file=sys.stderr)
PY
  say "${before} GB -> $(free_gb) GB free"
  exit 0
fi

before="$(free_gb)"
for profile in debug release; do
  deps="$target/$profile/deps"
  [ -d "$deps" ] || continue
  # Object files of a link that never finished.
  find "$deps" -maxdepth 1 -type f -name '*.rcgu.o' -delete
  # Executables: keep the newest per (name, main source file); the source file tells apart
  # two crates' tests that share a name.
  find "$deps" -maxdepth 1 -type f -perm -u+x ! -name '*.*' -printf '%T@ %p\n' |
    while read -r mtime path; do
      name="$(basename "$path")"
      stem="${name%-*}"
      source_file=""
      if [ -f "$path.d" ]; then
        source_file="$(awk -F': ' 'NR == 1 { split($2, s, " "); print s[1]; exit }' "$path.d")"
      fi
      printf '%s\t%s|%s\t%s\n' "$mtime" "$stem" "$source_file" "$path"
    done |
    sort -t$'\t' -k2,2 -k1,1nr |
    awk -F'\t' '$2 == seen { print $3; next } { seen = $2 }' |
    while read -r stale; do
      rm -f "$stale" "$stale.d"
    done
done
after="$(free_gb)"
[ "$after" -gt "$before" ] && say "removed stale executables: ${before} GB -> ${after} GB free"

if [ "$(free_gb)" -lt "$min_free_gb" ] && [ -d "$target/debug/incremental" ]; then
  say "under ${min_free_gb} GB free: removing incremental caches"
  rm -rf "$target/debug/incremental"
fi
if [ "$(free_gb)" -lt "$min_free_gb" ]; then
  say "still under ${min_free_gb} GB free ($(free_gb) GB): removing debug builds in $target"
  rm -rf "$target/debug"
fi
exit 0
