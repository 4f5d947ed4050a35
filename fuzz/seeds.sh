#!/usr/bin/env bash
# Prints the seed files of fuzz target NAME: the globs on the "// seeds:" line of fuzz/NAME.cpp,
# relative to the source tree, plus fuzz/regressions/NAME/*. Usage: bash fuzz/seeds.sh NAME SOURCE_DIR
set -euo pipefail
name=$1
source_dir=$2
line=$(grep -m1 '^// seeds:' "$source_dir/fuzz/$name.cpp" || true)
[ -n "$line" ] || { echo "fuzz/$name.cpp: no '// seeds:' line" >&2; exit 1; }
cd "$source_dir"
shopt -s nullglob
for pattern in ${line#// seeds:} "fuzz/regressions/$name/*"; do
  for f in $pattern; do [ -f "$f" ] && echo "$source_dir/$f"; done
done
