#!/usr/bin/env bash
# The one command for the device tool (an NVIDIA GPU machine with PyTorch; see scripts/gpu/README.md):
#   bash scripts/gpu/run_on_device.sh [moe_step.py options]
# Runs scripts/gpu/moe_step.py on the GPU and leaves trace.json.gz, step.json, model.json, layout.json,
# nvidia-smi.txt and run.log flat in $OUT (the tool brings back at most 8 files, 16 MiB each).
# Outside the device tool set OUT yourself. Expected: about a minute (torch import, CUDA start-up, 5 warm-up,
# 20 timed and 3 profiled steps: moesim predicts 39 ms a step with the base h200 profile, trace export);
# the model run is cut off at 280 s.
set -euo pipefail
: "${OUT:?set OUT to the folder the results go to}"
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv > "$OUT/nvidia-smi.txt" 2>&1 || true
timeout 280 python3 scripts/gpu/moe_step.py --out "$OUT" "$@" 2>&1 | tee "$OUT/run.log"
ls -l "$OUT"
