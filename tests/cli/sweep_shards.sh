#!/usr/bin/env bash
# moesim sweep --shard I/N + moesim merge: the merged parts are byte-identical to a one-process run,
# a shard resumes like a whole sweep, and merge refuses (exit 2, one line naming the file) parts that
# overlap, leave a point out, were cut off, or belong to a different spec.
# Usage: bash sweep_shards.sh MOESIM_BINARY SOURCE_DIR
set -uo pipefail
moesim=${1:?usage: sweep_shards.sh MOESIM_BINARY SOURCE_DIR}
source_dir=${2:?usage: sweep_shards.sh MOESIM_BINARY SOURCE_DIR}
bin=$moesim
source "$source_dir/tests/cli.bash"
cd "$tmp"

spec=$source_dir/tests/data/sweep-small.json
"$moesim" sweep "$spec" --jobs 1 --out one.jsonl > /dev/null
[ "$(wc -l < one.jsonl)" -eq 8 ] || fail "expected 8 points in the one-process file"

for i in 0 1 2; do "$moesim" sweep "$spec" --jobs 2 --shard "$i/3" --out "part$i.jsonl" > "shard$i.txt"; done
grep -q "^shard 1/3: 3 model points" shard1.txt || fail "shard 1/3 summary: $(head -1 shard1.txt)"
"$moesim" merge part2.jsonl part0.jsonl part1.jsonl --out merged.jsonl > /dev/null
cmp one.jsonl merged.jsonl || fail "shards 0/3..2/3 merged differ from the one-process file"
# The default part name, and a shard count above the point count (empty shards still merge).
"$moesim" sweep "$spec" --jobs 1 --shard 0/1 > /dev/null
[ -f results.shard-0-of-1.jsonl ] || fail "--shard without --out did not write results.shard-0-of-1.jsonl"
"$moesim" merge results.shard-0-of-1.jsonl --out whole.jsonl > /dev/null
cmp one.jsonl whole.jsonl || fail "shard 0/1 merged differs from the one-process file"
for i in $(seq 0 9); do "$moesim" sweep "$spec" --jobs 1 --shard "$i/10" --out "ten$i.jsonl" > /dev/null; done
"$moesim" merge ten*.jsonl --out ten.jsonl > /dev/null
cmp one.jsonl ten.jsonl || fail "shards of 10 merged differ from the one-process file"

# A shard killed mid-line (or mid-header) resumes to the same part file.
for cut in 40 $(( $(wc -c < part1.jsonl) / 2 )) $(( $(wc -c < part1.jsonl) - 1 )); do
  head -c "$cut" part1.jsonl > cut.jsonl
  "$moesim" sweep "$spec" --jobs 2 --shard 1/3 --out cut.jsonl --resume > cut.txt
  cmp part1.jsonl cut.jsonl || fail "shard 1/3 resumed after a cut at byte $cut differs"
done
grep -q "from an earlier run" cut.txt || fail "resume summary: $(head -1 cut.txt)"

# A refused merge leaves no output file behind (nor its half-written .merging file).
expect_refused_merge() {
  rm -f refused.jsonl refused.jsonl.merging
  expect_error "$@"
  [ ! -e refused.jsonl ] && [ ! -e refused.jsonl.merging ] || fail "$1: a refused merge left a file behind"
}

expect_refused_merge "a shard left out" "shard 1/3 is missing" -- merge part0.jsonl part2.jsonl --out refused.jsonl
expect_refused_merge "a shard twice" "part0.jsonl" -- merge part0.jsonl part1.jsonl part2.jsonl part0.jsonl --out refused.jsonl
cp part0.jsonl copy0.jsonl
expect_refused_merge "overlapping copies of a shard" "shard 0/3 again" -- merge part0.jsonl copy0.jsonl part1.jsonl part2.jsonl --out refused.jsonl
expect_refused_merge "parts of different shard counts" "share N" -- merge part0.jsonl ten1.jsonl --out refused.jsonl
sed 's/"tokens_per_s"/"mfu"/' "$spec" > other.json
"$moesim" sweep other.json --jobs 1 --shard 1/3 --out other1.jsonl > /dev/null
expect_refused_merge "a part of another spec" "different specs" -- merge part0.jsonl other1.jsonl part2.jsonl --out refused.jsonl
head -c "$(( $(wc -c < part2.jsonl) - 1 ))" part2.jsonl > short2.jsonl
expect_refused_merge "a part cut off mid-line" "cut off" -- merge part0.jsonl part1.jsonl short2.jsonl --out refused.jsonl
expect_refused_merge "a results file instead of a part" "not a sweep part file" -- merge one.jsonl --out refused.jsonl
expect_error "resuming a part as another shard" "not the part header" -- sweep "$spec" --shard 2/3 --out part1.jsonl --resume
expect_error "resuming a part of another spec" "not the part header" -- sweep other.json --shard 1/3 --out part1.jsonl --resume
expect_error "--shard 3/3" "--shard" -- sweep "$spec" --shard 3/3
expect_error "--shard 1" "--shard" -- sweep "$spec" --shard 1
expect_error "--shard a/b" "--shard" -- sweep "$spec" --shard a/b
expect_error "--mpi with --shard" "--mpi and --shard" -- sweep "$spec" --shard 0/2 --mpi
finish sweep_shards
