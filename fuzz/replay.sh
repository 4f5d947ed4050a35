#!/usr/bin/env bash
# Runs a fuzz target once over its seed files (the "// seeds:" globs of fuzz/NAME.cpp, relative to
# the source tree) and its committed reproducers (fuzz/regressions/NAME/*): any crash, sanitizer
# report or non-InputError exception fails. Usage: bash fuzz/replay.sh FUZZ_BINARY SOURCE_DIR
set -euo pipefail
binary=$1
source_dir=$2
name=$(basename "$binary")
mapfile -t inputs < <(bash "$source_dir/fuzz/seeds.sh" "$name" "$source_dir")
[ "${#inputs[@]}" -gt 0 ] || { echo "$name: no seed files" >&2; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! "$binary" "${inputs[@]}" > "$log" 2>&1; then
  tail -n 40 "$log"
  echo "$name: FAILED on one of ${#inputs[@]} inputs" >&2
  exit 1
fi
echo "$name: ${#inputs[@]} inputs replayed"
