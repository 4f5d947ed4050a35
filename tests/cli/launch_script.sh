#!/usr/bin/env bash
# moesim simulate / sweep --from-script: a MindSpeed-LLM launch script runs end to end and prints the
# arguments it used, ignored and does not model; sweep --emit-args writes the arguments of its best
# layouts; hostile scripts (unbalanced quotes, a flag without its value, an unknown flag, contradictory
# parallel sizes, 10 MB of junk) end with one line naming the file, the line and the flag, exit 2.
bin=$1
root=$2
. "$root/tests/cli.bash"
scripts=$root/../shared/validation/ascend/scripts
hostile=$root/tests/data/launch/hostile
[ -d "$scripts" ] || { echo "FAIL: $scripts is missing (tests need ../shared)"; exit 1; }

script=$scripts/mindspeed-qwen2-57b-a14b-64npu-4k.sh
if "$bin" simulate --from-script "$script" --hw ascend-910b2 --json "$tmp/sim.json" >"$tmp/out" 2>"$tmp/err"; then
  for word in "arguments used" "ignored (no effect on performance)" "not modelled" "--tensor-model-parallel-size 1" \
              "--moe-router-load-balancing-type" "devices 64 from" "MFU"; do
    grep -qF -- "$word" "$tmp/out" || fail "simulate --from-script: output does not show '$word'"
  done
  python3 - "$tmp/sim.json" <<'PY' || fail "simulate --from-script: layout in the JSON report is not the script's"
import json, sys
l = json.load(open(sys.argv[1]))["layout"]
assert (l["devices"], l["pp"], l["cp"], l["ep"], l["global_batch"], l["seq_len"]) == (64, 4, 4, 4, 64, 4096), l
PY
else
  fail "simulate --from-script $script: exit status $?: $(cat "$tmp/err")"
fi
# --devices overrides the script's placeholder node count; layout flags override the script.
"$bin" simulate --from-script "$script" --hw ascend-910b2 --devices 128 --pp 8 --json "$tmp/sim2.json" >/dev/null 2>"$tmp/err" ||
  fail "simulate --from-script --devices 128 --pp 8: $(cat "$tmp/err")"
python3 -c "import json,sys; l=json.load(open(sys.argv[1]))['layout']; assert (l['devices'], l['pp']) == (128, 8), l" "$tmp/sim2.json" ||
  fail "--devices / --pp did not override the script"
"$bin" ops --from-script "$script" --hw ascend-910b2 >/dev/null 2>"$tmp/err" || fail "ops --from-script: $(cat "$tmp/err")"

# sweep from the script, with the arguments of the best layouts in the results, the JSON and the HTML report.
if "$bin" sweep --from-script "$script" --hw ascend-910b2 --emit-args mindspeed --jobs 1 --top 3 \
    --out "$tmp/results.jsonl" --json "$tmp/top.json" >"$tmp/out" 2>"$tmp/err"; then
  python3 - "$tmp/top.json" <<'PY' || fail "sweep --emit-args: ranked lines lack a GPT_ARGS block"
import json, sys
ranked = json.load(open(sys.argv[1]))["ranked"]
assert ranked, "no point fits"
for line in ranked:
    args = line["launch_args"]
    assert 'GPT_ARGS="' in args and "--tensor-model-parallel-size %d" % line["layout"]["tp"] in args, args
    assert "--global-batch-size 64" in args and "--moe-token-dispatcher-type" in args, args
PY
  "$bin" report "$tmp/results.jsonl" --html "$tmp/report.html" >/dev/null 2>"$tmp/err" || fail "report: $(cat "$tmp/err")"
  grep -qF "launch_args" "$tmp/report.html" || fail "report --html: the page holds no launch_args"
else
  fail "sweep --from-script --emit-args: $(cat "$tmp/err")"
fi
expect_error "emit-args dialect" "--emit-args" "megatron or mindspeed" -- sweep --from-script "$script" --hw ascend-910b2 --emit-args nemo

expect_error "unbalanced quote" "unbalanced_quote.sh:4:" "quote in GPT_ARGS" -- simulate --from-script "$hostile/unbalanced_quote.sh" --hw ascend-910b2
expect_error "flag without value" "missing_value.sh:6:" "--num-layers" "expected a value" -- simulate --from-script "$hostile/missing_value.sh" --hw ascend-910b2
expect_error "unknown flag" "unknown_flag.sh:9:" "--frobnicate-experts" "unknown flag" -- simulate --from-script "$hostile/unknown_flag.sh" --hw ascend-910b2
expect_error "contradictory sizes" "contradictory_sizes.sh:6:" "--tensor-model-parallel-size" "divide the 8 devices" -- simulate --from-script "$hostile/contradictory_sizes.sh" --hw ascend-910b2
expect_error "flag set twice" "tp_set_twice.sh:15:" "--tensor-model-parallel-size" "line 6" -- simulate --from-script "$hostile/tp_set_twice.sh" --hw ascend-910b2
expect_error "no launch command" "no_launch_command.sh" "expected a launch command" -- simulate --from-script "$hostile/no_launch_command.sh" --hw ascend-910b2
expect_error "broken YAML" "broken.yaml:" "YAML" -- simulate --from-script "$hostile/broken.yaml" --hw ascend-910b2
expect_error "vocab in the tokenizer" "mindspeed-mixtral-8x7b-16npu-ep2pp8-4k.sh:" "--tokenizer-type" "--vocab N" -- simulate --from-script "$scripts/mindspeed-mixtral-8x7b-16npu-ep2pp8-4k.sh" --hw ascend-910b2
expect_error "missing file" "nowhere.sh" "cannot read" -- simulate --from-script "$tmp/nowhere.sh" --hw ascend-910b2
# 10 MB of junk (generated here, not committed), as a script and as a YAML.
head -c 10000000 /dev/urandom >"$tmp/junk.sh"
cp "$tmp/junk.sh" "$tmp/junk.yaml"
expect_error "10 MB of junk" "junk.sh" -- simulate --from-script "$tmp/junk.sh" --hw ascend-910b2
expect_error "10 MB of junk YAML" "junk.yaml" -- simulate --from-script "$tmp/junk.yaml" --hw ascend-910b2
finish "launch scripts"
