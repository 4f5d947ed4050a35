#!/usr/bin/env bash
# Out-of-sample error of the fitted profiles: scripts/fit_to_runs.py --cross-validate holds out each
# source's runs in turn (a paper, a README, a recipe set), fits the profile's efficiencies to the other
# sources' runs and predicts the held-out ones. `moesim validate` is in-sample for the two fitted
# profiles; this is the error to expect on runs they were not fitted to, and CI fails if it grows.
# Now (3 rounds): A100 6.13% over 35 runs (max 19.6%, in-sample 4.57%), H100 10.58% over 60 runs
# (max 43.8%, in-sample 7.53%). The H100 fold that holds out the 48 MoE Parallel Folding runs fits 8
# parameters to 12 runs, and its optimum is not stable: when the fused loss's traffic dropped (three
# moe_recipes runs moved by about 1%), it went from attention_fraction 0.25 / NVLink 0.52 to 0.20 / 0.82
# and its held-out MAPE from 10.3% to 11.4%. The ceiling leaves room for that, not for a drift.
# Registered for the non-sanitized build only: it reruns `moesim validate` a few hundred times, which
# the sanitized suite already covers once in tests/cli/validation.sh.
set -euo pipefail
moesim=$1
root=$2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for profile in a100-sxm-80g h100-sxm; do
  python3 "$root/scripts/fit_to_runs.py" "$profile" "$root/validation/published_runs.json" --cross-validate \
    --moesim "$moesim" --json "$out/$profile.json" | tail -1
done
# Ascend 910B (validation/ascend_runs.json): the fit that wrote the profile (its sources name it) keeps the
# kernel-calibrated GEMM rate, the attention fraction, launch overhead, the host issue time measured on a 910B
# host trace and the measured HCCS / RoCE efficiencies, and holds out by repository or paper (MindSpeed-LLM,
# MindFormers, the two Pangu reports). Now: 26.0% held out over 23 runs (in-sample 25.2%; pass level, where the fit
# runs), with MindSpeed's allgather permutation and SequentialMLP modelled, ring attention's dK/dV exchange counted and
# the Pangu Ultra MoE records at the global batch their Adaptive Pipe Overlap needs (30.6% / 26.4% before them, 33.0%
# / 28.3% before the MindSpeed ops; the pre-fit profile had 53%); held out, the two Pangu Ultra MoE runs come out at
# 1.4%, MindSpeed-LLM's 16 at 28.9%.
python3 "$root/scripts/fit_to_runs.py" ascend-910b2 "$root/validation/ascend_runs.json" --cross-validate \
  --group repository --no-tiers --extra comm_compute_slowdown --keep peak_fraction --keep half_saturation_flops \
  --keep attention_fraction --keep launch_overhead --keep host_op_overhead --rounds 5 --moesim "$moesim" \
  --json "$out/ascend-910b2.json" | tail -1
python3 - "$out" <<'PY'
import json, os, sys
ceilings = {"a100-sxm-80g": 7.0, "h100-sxm": 11.5, "ascend-910b2": 26.5}  # held-out MAPE %
for profile, ceiling in ceilings.items():
    cv = json.load(open(os.path.join(sys.argv[1], profile + ".json")))
    s = cv["summary"]
    sources = {f["held_out_source"] for f in cv["folds"]}
    assert len(sources) == len(cv["folds"]) >= 3, sources
    assert s["runs"] == sum(f["runs"] for f in cv["folds"]) == len(cv["runs"]), s
    for f in cv["folds"]:
        assert f["fit_runs"] + f["runs"] == s["runs"], f  # each fold fits on exactly the other sources' runs
    # Held out, a run is predicted by a fit that never saw it: on average no better than in-sample.
    assert s["held_out_mape_pct"] >= s["in_sample_mape_pct"] - 0.5, s
    assert s["held_out_mape_pct"] < ceiling, (profile, s)
    print(f"{profile}: held-out MAPE {s['held_out_mape_pct']:.2f}% over {s['runs']} runs (ceiling {ceiling}%)")
PY
