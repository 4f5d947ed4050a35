#!/usr/bin/env bash
# HTML reports in a real browser: moesim writes a sweep report (from a small sweep run here), two
# simulate reports (pass level with --pass-level, and operator level, the default: every operator on its stream) and a validate
# report; headless Chromium (web/check_reports.mjs: Debian's chromium driven by playwright-core) opens each, checks that every chart holds the marks the inputs call for
# (points, Pareto fronts, stacked bars, timeline tasks), that tooltips show on hover, that the page
# logs no error and loads nothing from the network, and saves screenshots next to the binary
# (build/html_reports/). Needs node, web/node_modules and /usr/bin/chromium (scripts/setup); their
# absence is a failure, not a skip. Also: bad results files end with a one-line error and exit 2.
# Usage: bash html_reports.sh MOESIM_BINARY SOURCE_DIR
set -uo pipefail
moesim=${1:?usage: html_reports.sh MOESIM_BINARY SOURCE_DIR}
source_dir=${2:?usage: html_reports.sh MOESIM_BINARY SOURCE_DIR}
bin=$moesim
source "$source_dir/tests/cli.bash"
out=$(dirname "$moesim")/html_reports
rm -rf "$out"
mkdir -p "$out"

command -v node > /dev/null || fail "node is missing (scripts/setup installs nodejs)"
[ -d "$source_dir/web/node_modules/playwright-core" ] || fail "web/node_modules is missing (scripts/setup runs npm ci in web/)"

"$moesim" sweep "$source_dir/tests/data/sweep-small.json" --jobs 2 --top 5 --out "$out/sweep.jsonl" \
  --json "$out/sweep.json" > /dev/null || fail "moesim sweep failed"
"$moesim" report "$out/sweep.jsonl" --top 5 --html "$out/sweep-report.html" || fail "moesim report failed"
"$moesim" simulate --model pangu-ultra-moe-718b --hw ascend-910b2 \
  --layout "$source_dir/validation/layouts/pangu-ultra-moe-6k.json" --pass-level --json "$out/simulate.json" \
  --trace "$out/simulate-trace.json" --html "$out/simulate-report.html" > /dev/null || fail "moesim simulate --pass-level failed"
# At operator level (the default) the report's timeline is every operator on its stream (the op-level Chrome trace).
"$moesim" simulate --model pangu-ultra-moe-718b --hw ascend-910b2 \
  --layout "$source_dir/validation/layouts/pangu-ultra-moe-6k.json" --json "$out/simulate-op.json" \
  --trace "$out/simulate-op-trace.json" --html "$out/simulate-op-report.html" > /dev/null || fail "moesim simulate failed"
"$moesim" validate "$source_dir/validation/published_runs.json" "$source_dir/validation/memory_runs.json" --json "$out/validate.json" \
  --html "$out/validate-report.html" > /dev/null || fail "moesim validate failed"

# The reports carry their libraries: no script or stylesheet is loaded from elsewhere.
for html in "$out"/*.html; do
  if grep -Eq '<script[^>]* src=|<link[^>]* href=' "$html"; then fail "$html loads an external script or stylesheet"; fi
done

node "$source_dir/web/check_reports.mjs" --screenshots "$out" \
  --sweep "$out/sweep-report.html" "$out/sweep.jsonl" "$out/sweep.json" \
  --simulation "$out/simulate-report.html" "$out/simulate-trace.json" "$out/simulate.json" \
  --simulation "$out/simulate-op-report.html" "$out/simulate-op-trace.json" "$out/simulate-op.json" \
  --validation "$out/validate-report.html" "$out/validate.json" || fail "the browser check failed (above)"

# The check can fail: a sweep report that lost its dominated points (only the ranked ones left) is caught.
python3 - "$out/sweep-report.html" "$out/tampered-report.html" <<'PY'
import json, re, sys
html = open(sys.argv[1]).read()
start = html.index('id="moesim-data">') + len('id="moesim-data">')
end = html.index("</script>", start)
data = json.loads(html[start:end])
data["points"] = [p for p in data["points"] if p["index"] in data["ranked"]]
open(sys.argv[2], "w").write(html[:start] + json.dumps(data).replace("<", "\\u003c") + html[end:])
PY
if node "$source_dir/web/check_reports.mjs" --screenshots "$out/tampered" \
  --sweep "$out/tampered-report.html" "$out/sweep.jsonl" "$out/sweep.json" > "$out/tampered.txt" 2>&1; then
  fail "the browser check passed a report with points missing"
fi
grep -q "pareto_active' mark 'points': 5 items, expected 7" "$out/tampered.txt" || fail "tampered report: $(cat "$out/tampered.txt")"

# Bad results files: one line naming the file, the line and the field; exit status 2.
expect_error "missing results file" "missing.jsonl: cannot read file" -- report "$out/missing.jsonl" --html "$out/bad.html"
printf '{"index": 0, "status": "ok"\n' > "$out/cut.jsonl"
expect_error "results line cut off" "cut.jsonl: line 1: expected one JSON object per line" -- report "$out/cut.jsonl" --html "$out/bad.html"
: > "$out/empty.jsonl"
expect_error "empty results file" "empty.jsonl: no result lines" -- report "$out/empty.jsonl" --html "$out/bad.html"
python3 - "$out/sweep.jsonl" "$out/no-memory.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
for l in lines:
    l.pop("memory", None)
open(sys.argv[2], "w").write("".join(json.dumps(l) + "\n" for l in lines))
PY
expect_error "results without memory" "no-memory.jsonl: line " "field 'memory': expected an object, got missing" -- report "$out/no-memory.jsonl" --html "$out/bad.html"
finish html_reports
