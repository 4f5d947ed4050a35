#!/usr/bin/env bash
# scripts/granularity_scan.py on H100: six points at equal total and active parameters, each with MFU,
# tokens/s and the MoE layer's parts; dispatch + combine and permutation grow with top-k (they move k x T
# rows), the grouped GEMMs do not get faster with narrower experts, and the measured Qwen3-30B-A3B run
# (128x8) is placed on the scan.
# Usage: bash granularity_scan.sh MOESIM_BINARY SOURCE_DIR
set -u
bin=${1:?usage: granularity_scan.sh MOESIM_BINARY SOURCE_DIR}
src=${2:?usage: granularity_scan.sh MOESIM_BINARY SOURCE_DIR}
source "$src/tests/cli.bash"

if python3 "$src/scripts/granularity_scan.py" --moesim "$bin" --hw h100-sxm >"$tmp/scan.json" 2>"$tmp/err"; then
  python3 - "$tmp/scan.json" <<'PY' || fail "granularity scan checks (see above)"
import json, sys
rows = json.load(open(sys.argv[1]))["h100-sxm"]
problems = []
if [(r["experts"], r["top_k"], r["width"]) for r in rows] != [(16, 1, 6144), (32, 2, 3072), (64, 4, 1536),
                                                               (128, 8, 768), (256, 16, 384), (512, 32, 192)]:
    problems.append("points: %s" % [(r["experts"], r["top_k"]) for r in rows])
for r in rows:
    if not (0 < r["mfu"] < 1 and r["tokens_per_s"] > 0):
        problems.append("point %d: mfu %s tokens/s %s" % (r["experts"], r["mfu"], r["tokens_per_s"]))
    if not all(v > 0 for v in r["parts_us"].values()):
        problems.append("point %d: parts %s" % (r["experts"], r["parts_us"]))
for a, b in zip(rows, rows[1:]):
    for part in ("dispatch+combine", "permutation"):
        if not b["parts_us"][part] > 1.5 * a["parts_us"][part]:
            problems.append("%s does not grow with top-k: %s -> %s" % (part, a["parts_us"][part], b["parts_us"][part]))
    if b["parts_us"]["grouped GEMM"] < a["parts_us"]["grouped GEMM"]:
        problems.append("grouped GEMMs faster with narrower experts at %d" % b["experts"])
measured = [r for r in rows if "measured_tokens_per_s" in r]
if [r["experts"] for r in measured] != [128] or not 0.5 < measured[0]["measured_tokens_per_s"] / measured[0]["tokens_per_s"] < 1.5:
    problems.append("measured point: %s" % measured)
if problems:
    print("\n".join(problems))
    sys.exit(1)
print("scan:", ", ".join("%dx%d %.1f%%" % (r["experts"], r["top_k"], 100 * r["mfu"]) for r in rows))
PY
else
  fail "granularity_scan.py exited $?: $(head -c 300 "$tmp/err")"
fi
finish "granularity_scan"
