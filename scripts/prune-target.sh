#!/usr/bin/env bash
# Keeps the shared build directory from filling the disk. Each rebuild of a test or binary
# leaves the previous executable behind under a new hash, and a build cut short by a full
# disk leaves its object files; neither is ever used again. Pruning them is always safe.
# When the disk is still short of space, incremental caches go next, and as a last resort
# the whole build directory: a slower build beats a build that dies half-way.
#
# Usage: scripts/prune-target.sh   (honours CARGO_TARGET_DIR, RUNWAY_MIN_FREE_GB)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=env.sh
source "$root/scripts/env.sh"

target="$CARGO_TARGET_DIR"
min_free_gb="${RUNWAY_MIN_FREE_GB:-25}"
[ -d "$target" ] || exit 0

free_gb() { df -Pk "$target" | awk 'NR == 2 { print int($4 / 1048576) }'; }
say() { printf 'prune-target: %s\n' "$*" >&2; }

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
