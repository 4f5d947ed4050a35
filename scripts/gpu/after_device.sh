#!/usr/bin/env bash
# After scripts/gpu/run_on_device.sh: calibrate moesim on the returned trace and predict the step.
#   bash scripts/gpu/after_device.sh DIR [DEST]
# DIR holds trace.json.gz, step.json, model.json, layout.json (the device tool's files_at, or a CPU dry
# run's --out). They are copied to DEST (default validation/gpu/<device>-<UTC date>/), then:
#   moesim replay with the base profile, moesim calibrate -> DEST/calibrated.json, replay with it,
#   scripts/calibration_table.py's row (median/p90 |error| per kind, before -> after),
#   moesim simulate on model.json + layout.json with both profiles against the measured step time.
# Logs go to DEST/calibrate.txt, DEST/replay.txt, DEST/simulate.txt; the summary is printed.
# Environment: MOESIM (default build/moesim), BASE_HW (default: from the device name, else h200).
# A CPU dry run (step.json's device starts with "cpu") has no GPU kernels: it stops after the first
# replay with a note, simulates the step, and exits with status 0; a GPU trace with no kernel moesim
# predicts is an error (status 1).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
src="${1:?usage: after_device.sh DIR [DEST]}"
moesim="${MOESIM:-$root/build/moesim}"
[[ -x "$moesim" ]] || { echo "after_device.sh: $moesim not found: build it (scripts/build) or set MOESIM" >&2; exit 1; }
for f in trace.json.gz step.json model.json layout.json; do
  [[ -f "$src/$f" ]] || { echo "after_device.sh: $src/$f missing (expected the files of run_on_device.sh)" >&2; exit 1; }
done
device="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["device"])' "$src/step.json")"
slug="$(echo "$device" | tr 'A-Z' 'a-z' | sed -e 's/[^a-z0-9]\+/-/g' -e 's/^-//' -e 's/-$//')"
dest="${2:-$root/validation/gpu/$slug-$(date -u +%Y%m%d)}"
mkdir -p "$dest"
for f in trace.json.gz step.json model.json layout.json nvidia-smi.txt run.log; do
  [[ ! -f "$src/$f" ]] || [[ "$src/$f" -ef "$dest/$f" ]] || cp "$src/$f" "$dest/$f"
done
# The profile moesim has for the GPU the trace came from (hw_profiles/); h200 when none matches.
case "$device" in
  *H200*) guess=h200 ;; *H100*) guess=h100-sxm ;; *H800*) guess=h800 ;; *A100*) guess=a100-sxm-80g ;; *B200*) guess=b200 ;;
  *) guess=h200 ;;
esac
base="${BASE_HW:-$guess}"
echo "device: $device; base profile: $base; files in $dest"

# A CPU dry run's trace has no GPU kernels: moesim replay says so in one line and exits with status 2.
dry_run() {
  echo "DRY RUN on CPU: the trace has no GPU kernels, so moesim replayed and calibrated nothing." \
       "The files parse; on a GPU this step prints the calibration and the predicted step time."
  "$moesim" simulate --model "$dest/model.json" --layout "$dest/layout.json" --hw "$base" > "$dest/simulate.txt"
  grep -m1 '^iteration' "$dest/simulate.txt"
  exit 0
}
if ! "$moesim" replay "$dest/trace.json.gz" --hw "$base" --json "$dest/replay_base.json" > "$dest/replay.txt"; then
  [[ "$device" == cpu* ]] && dry_run
  exit 1
fi
cat "$dest/replay.txt"
predicted="$(python3 -c 'import json,sys; print(sum(k["count"] for k in json.load(open(sys.argv[1]))["kinds"].values()))' "$dest/replay_base.json")"
if [[ "$predicted" == 0 ]]; then
  [[ "$device" == cpu* ]] && dry_run
  echo "after_device.sh: moesim predicted no kernel of $dest/trace.json.gz (profiled without record_shapes?):" \
       "nothing to calibrate" >&2
  exit 1
fi

"$moesim" calibrate "$dest/trace.json.gz" --hw "$base" --out "$dest/calibrated.json" --name "$base-moe-step" \
  | tee "$dest/calibrate.txt"
"$moesim" replay "$dest/trace.json.gz" --hw "$dest/calibrated.json" --json "$dest/replay_calibrated.json" | tee -a "$dest/replay.txt"
"$moesim" simulate --model "$dest/model.json" --layout "$dest/layout.json" --hw "$base" --json "$dest/simulate_base.json" \
  > "$dest/simulate.txt"
"$moesim" simulate --model "$dest/model.json" --layout "$dest/layout.json" --hw "$dest/calibrated.json" \
  --json "$dest/simulate_calibrated.json" >> "$dest/simulate.txt"

echo
echo "## replay |error| per kernel kind, median/p90 % (predicted kernels), base -> calibrated"
python3 "$root/scripts/calibration_table.py" --moesim "$moesim" --trace "$dest/trace.json.gz" --hw "$base"
echo
python3 - "$dest" "$base" <<'EOF'
import json, os, sys
dest, base = sys.argv[1], sys.argv[2]
load = lambda f: json.load(open(os.path.join(dest, f)))
step = load("step.json")
measured = step["measured_step_s"]
print(f"## step time: {step['device']}, torch {step['torch']}, median of {len(step['step_s'])} steps")
print("| profile | predicted step ms | measured step ms | error |")
print("|---|---:|---:|---:|")
for label, f in ((base, "simulate_base.json"), ("calibrated", "simulate_calibrated.json")):
    p = load(f)["iteration_time_s"]
    print(f"| {label} | {p * 1e3:.2f} | {measured * 1e3:.2f} | {(p / measured - 1) * 100:+.1f}% |")
for label, f in ((base, "replay_base.json"), ("calibrated", "replay_calibrated.json")):
    t = load(f)["total"]
    print(f"replay total over predicted kernels ({label}): measured {t['measured_s'] * 1e3:.2f} ms, "
          f"predicted {t['predicted_s'] * 1e3:.2f} ms")
EOF
