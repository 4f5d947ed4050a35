#!/usr/bin/env bash
# In a build without -DMOESIM_WITH_MPI=ON, `moesim sweep --mpi` stops with exit status 2 and one line
# saying so, before it evaluates anything.
# Usage: bash without_mpi.sh MOESIM_BINARY SOURCE_DIR
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rc=0
"$1" sweep "$2/tests/data/sweep-small.json" --mpi --out "$work/results.jsonl" > /dev/null 2> "$work/err" || rc=$?
[ "$rc" -eq 2 ] || { echo "without_mpi: exit status $rc, expected 2: $(cat "$work/err")" >&2; exit 1; }
[ "$(wc -l < "$work/err")" -eq 1 ] && grep -q "built without MPI" "$work/err" || { echo "without_mpi: stderr: $(cat "$work/err")" >&2; exit 1; }
[ ! -e "$work/results.jsonl" ] || { echo "without_mpi: a results file was written" >&2; exit 1; }
echo "without_mpi: ok: $(cat "$work/err")"
