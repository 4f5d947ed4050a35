#!/usr/bin/env bash
# Every malformed input to `moesim simulate` ends with exit status 2 (not a crash or signal) and exactly
# one line on stderr that names the file (or flag) and the field.
# Usage: bash errors.sh MOESIM_BINARY SOURCE_DIR
set -u
bin=${1:?usage: errors.sh MOESIM_BINARY SOURCE_DIR}
src=${2:?usage: errors.sh MOESIM_BINARY SOURCE_DIR}
data="$src/tests/data"
source "$src/tests/cli.bash"

layout="$data/layout-valid.json"
model="$data/model-valid.json"

# The valid fixtures run (so the failures below are the malformed inputs' doing).
if ! "$bin" simulate --model "$model" --hw "$data/profile-valid.json" --layout "$layout" >"$tmp/out" 2>"$tmp/err"; then
  fail "[valid fixtures]: $(cat "$tmp/err")"
fi

# Malformed model files.
for case in \
  "model-missing-layers.json layers" \
  "model-hidden-string.json hidden" \
  "model-hidden-nan-string.json hidden" \
  "model-infinite.json hidden" \
  "model-negative-vocab.json vocab" \
  "model-zero-heads.json attention.heads" \
  "model-fractional-layers.json layers" \
  "model-topk-exceeds-experts.json moe.top_k" \
  "model-bad-activation.json ffn.activation" \
  "model-missing-attention.json attention" \
  "model-kv-heads-exceed.json attention.kv_heads" \
  "model-nan-literal.json invalid JSON" \
  "model-unparsable.json invalid JSON"; do
  set -- $case
  file=$1
  shift
  expect_error "$file" "$file" "$*" -- simulate --model "$data/$file" --hw h100-sxm --layout "$layout"
done

# Malformed hardware profiles.
for case in \
  "profile-missing-hbm-bytes.json device.hbm_bytes" \
  "profile-peak-fraction-above-one.json device.matrix_efficiency.peak_fraction" \
  "profile-tier-size-not-nested.json tiers[1].size" \
  "profile-zero-bandwidth.json tiers[0].bandwidth" \
  "profile-no-tiers.json tiers" \
  "profile-bf16-string.json device.matrix_flops.bf16" \
  "profile-allocator-cache-share-above-one.json device.allocator_cache_share"; do
  set -- $case
  expect_error "$1" "$1" "$2" -- simulate --model "$model" --hw "$data/$1" --layout "$layout"
done

# Malformed layout files, and layouts that cannot run (the message names the failing product).
for case in \
  "layout-tp-string.json tp" \
  "layout-missing-global-batch.json global_batch" \
  "layout-negative-micro-batch.json micro_batch" \
  "layout-bad-recompute.json recompute" \
  "layout-bad-schedule.json schedule" \
  "layout-overlap-not-bool.json overlap.ep_all_to_all" \
  "layout-pipeline-layers-bad.json pipeline_layers" \
  "layout-heads-not-divisible-by-tp.json tp" \
  "layout-experts-not-divisible-by-ep.json ep" \
  "layout-devices-not-product.json tp*cp*pp" \
  "layout-global-batch-not-multiple.json dp*micro_batch" \
  "layout-too-many-stages.json pp*vpp"; do
  set -- $case
  expect_error "$1" "$1" "$2" -- simulate --model "$model" --hw h100-sxm --layout "$data/$1"
done

# Unknown names, missing and unparsable files, bad flags.
expect_error "unknown model" "no-such-model" "model" -- simulate --model no-such-model --hw h100-sxm --layout "$layout"
expect_error "unknown profile" "no-such-gpu" "profile" -- simulate --model "$model" --hw no-such-gpu --layout "$layout"
expect_error "missing layout file" "no-such-layout.json" "cannot open" -- \
  simulate --model "$model" --hw h100-sxm --layout "$data/no-such-layout.json"
expect_error "unparsable layout" "model-unparsable.json" "invalid JSON" -- \
  simulate --model "$model" --hw h100-sxm --layout "$data/model-unparsable.json"
expect_error "flag of wrong type" "--tp" "abc" -- simulate --model "$model" --hw h100-sxm --layout "$layout" --tp abc
expect_error "flag out of range" "command line" "tp" -- \
  simulate --model "$model" --hw h100-sxm --devices 16 --tp 0 --global-batch 32
expect_error "flags-only layout without devices" "command line" "devices" -- \
  simulate --model "$model" --hw h100-sxm --global-batch 32
expect_error "missing --model" "--model" "required" -- simulate --hw h100-sxm --layout "$layout"
expect_error "bad recompute flag" "recompute" "partial" -- \
  simulate --model "$model" --hw h100-sxm --layout "$layout" --recompute partial
expect_error "unwritable --json" "no-such-dir" "cannot write" -- \
  simulate --model "$model" --hw h100-sxm --layout "$layout" --json "$tmp/no-such-dir/out.json"

# Measured memory in validation records: a bad value or kind names the file and the field.
memory_record() {
  python3 - "$src/validation/memory_runs.json" "$1" "$2" > "$tmp/memory_runs.json" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))[:1]
runs[0]["measured"]["memory_bytes"] = json.loads(sys.argv[2])
runs[0]["measured"]["memory_kind"] = sys.argv[3]
print(json.dumps(runs))
PY
}
memory_record -5 reserved
expect_error "negative memory_bytes" "memory_runs.json" "memory_bytes" -- validate "$tmp/memory_runs.json"
memory_record '"82 GiB"' reserved
expect_error "memory_bytes as text" "memory_runs.json" "memory_bytes" -- validate "$tmp/memory_runs.json"
memory_record 8.8e10 peak
expect_error "unknown memory_kind" "memory_runs.json" "memory_kind" "allocated|reserved|device" -- validate "$tmp/memory_runs.json"

finish "error cases"
