#!/usr/bin/env bash
# mpirun -np N moesim sweep SPEC --mpi writes the same results file, byte for byte, as a one-process
# run (2 ranks, and 3 oversubscribed ranks with 2 threads each), resumes a cut-off file the same way,
# reports how many points each rank evaluated, and prints an input error once, not once per rank.
# Usage: bash sweep_mpi.sh MOESIM_BINARY SOURCE_DIR
set -euo pipefail
moesim=${1:?usage: sweep_mpi.sh MOESIM_BINARY SOURCE_DIR}
source_dir=${2:?usage: sweep_mpi.sh MOESIM_BINARY SOURCE_DIR}
bin=$moesim
source "$source_dir/tests/cli.bash"
work=$tmp
# CI runs as root, which Open MPI refuses unless told.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi() { local ranks=$1; shift; mpirun -np "$ranks" --oversubscribe "$moesim" "$@"; }

# tests/data/sweep-uneven.json: 60 points of uneven cost (4 to 32 layers); wide.json: 400 mostly cheap
# points (the parameter cap rejects most before any layout is simulated), more than rank 0's reorder
# window of 64 per thread.
cat > "$work/wide.json" <<'JSON'
{
  "base_model": "mixtral-8x7b",
  "hardware": "h100-sxm",
  "devices": 8,
  "seq_len": 2048,
  "global_batch_tokens": 65536,
  "model_axes": {"layers": {"from": 1, "to": 200}, "hidden": [1024, 2048]},
  "layout": "auto",
  "layout_axes": {"tp": [1, 2], "pp": [1, 2], "vpp": [1], "micro_batch": [1]},
  "constraints": {"total_params": {"max": 3e9}},
  "objective": "tokens_per_s"
}
JSON

for spec in "$source_dir/tests/data/sweep-small.json" "$source_dir/tests/data/sweep-uneven.json" "$work/wide.json"; do
  name=$(basename "$spec" .json)
  "$moesim" sweep "$spec" --jobs 1 --out "$work/$name.one.jsonl" > /dev/null
  mpi 2 sweep "$spec" --mpi --out "$work/$name.mpi2.jsonl" > "$work/$name.out" 2> "$work/$name.err"
  cmp "$work/$name.one.jsonl" "$work/$name.mpi2.jsonl" || fail "$name: mpirun -np 2 differs from the one-process file"
  points=$(wc -l < "$work/$name.one.jsonl")
  grep -q "^$points model points ($points evaluated now" "$work/$name.out" || fail "$name: summary: $(head -1 "$work/$name.out")"
  # The load-balance report: one line per rank, adding up to the points evaluated.
  sum=$(awk '/^  rank [0-9]+: [0-9]+ points/ {s += $3} END {print s + 0}' "$work/$name.err")
  ranks=$(grep -c '^  rank ' "$work/$name.err")
  [ "$sum" -eq "$points" ] && [ "$ranks" -eq 2 ] || fail "$name: per-rank report does not add up to $points: $(cat "$work/$name.err")"
  echo "$name: $(tr '\n' ' ' < "$work/$name.err")"
done

mpi 3 sweep "$source_dir/tests/data/sweep-uneven.json" --mpi --jobs 2 --out "$work/sweep-uneven.mpi3.jsonl" > /dev/null 2>&1
cmp "$work/sweep-uneven.one.jsonl" "$work/sweep-uneven.mpi3.jsonl" || fail "sweep-uneven: mpirun -np 3 --jobs 2 differs from the one-process file"

# Resume across MPI runs: cut mid-line, rerun with --resume, same file; only the rest is evaluated.
size=$(wc -c < "$work/sweep-uneven.one.jsonl")
head -c $((size / 2)) "$work/sweep-uneven.one.jsonl" > "$work/cut.jsonl"
kept=$(wc -l < "$work/cut.jsonl")
mpi 2 sweep "$source_dir/tests/data/sweep-uneven.json" --mpi --out "$work/cut.jsonl" --resume > "$work/cut.out" 2> /dev/null
cmp "$work/sweep-uneven.one.jsonl" "$work/cut.jsonl" || fail "sweep-uneven: resume under mpirun differs from the one-process file"
grep -q "($((60 - kept)) evaluated now, $kept from an earlier run)" "$work/cut.out" || fail "resume summary: $(head -1 "$work/cut.out")"

# A bad spec: a non-zero exit and the error once (the lowest failing rank prints it).
rc=0
mpi 2 sweep "$work/missing.json" --mpi --out "$work/none.jsonl" > /dev/null 2> "$work/bad.err" || rc=$?
[ "$rc" -ne 0 ] || fail "a missing spec under mpirun exited 0"
[ "$(grep -c "^moesim: .*missing.json" "$work/bad.err")" -eq 1 ] || fail "a missing spec: expected one error line: $(cat "$work/bad.err")"
[ ! -e "$work/none.jsonl" ] || fail "a missing spec wrote a results file"
finish sweep_mpi
