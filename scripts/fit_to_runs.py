#!/usr/bin/env python3
"""Fit hardware profiles' efficiency parameters to measured runs (coordinate descent on MAPE).

One profile serves every run on that hardware: this fits the profile's named efficiencies
(matrix peak_fraction, attention_fraction, grouped_gemm_factor, half_saturation_flops, launch
overhead, tier efficiencies) so that `moesim validate` agrees best with all runs of that hardware at
once. It never touches a run's record. Prints the fitted values; with --write, updates the profile
files and notes the fit in their sources.

Several profiles given as A,B,C are fitted jointly: one set of device efficiencies serves all of
them (devices of one generation running the same software stack), which puts more runs behind each
fitted number. Tier efficiencies are then left as they are, since the profiles' tiers differ.

usage: scripts/fit_to_runs.py PROFILE[,PROFILE...] RUNS.json [--exclude-zero3] [--write]
       [--moesim build/moesim]
"""
import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DEVICE_PARAMS = [  # (path in the profile, step, lower, upper)
    (("device", "matrix_efficiency", "peak_fraction"), 0.05, 0.3, 1.0),
    (("device", "matrix_efficiency", "attention_fraction"), 0.1, 0.2, 1.0),
    (("device", "matrix_efficiency", "grouped_gemm_factor"), 0.1, 0.3, 1.0),
    (("device", "matrix_efficiency", "half_saturation_flops"), 1.0, 1e8, 1e11),
    (("device", "launch_overhead"), 0.25, 2e-6, 1e-4),
]
TIER_PARAMS = [
    (("tiers", 0, "efficiency"), 0.1, 0.3, 1.0),
    (("tiers", 1, "efficiency"), 0.1, 0.3, 1.0),
    (("tiers", 1, "all_to_all_efficiency"), 0.05, 0.3, 1.0),  # only where the profile states one
]
# Stepped by a factor (1 + step) instead of by adding the step.
MULTIPLICATIVE = {"half_saturation_flops", "launch_overhead"}


def get(d, path):
    for k in path:
        d = d[k]
    return d


def put(d, path, v):
    for k in path[:-1]:
        d = d[k]
    d[path[-1]] = v


def has(d, path):
    try:
        get(d, path)
        return True
    except (KeyError, IndexError):
        return False


def evaluate(profiles, runs_file, moesim, workdir, exclude_zero3):
    for name, profile in profiles.items():
        with open(os.path.join(workdir, "hw_profiles", name + ".json"), "w") as f:
            json.dump(profile, f)
    out = os.path.join(workdir, "out.json")
    env = dict(os.environ, MOESIM_DATA_DIR=workdir)
    subprocess.run([moesim, "validate", runs_file, "--json", out], env=env, check=True, stdout=subprocess.DEVNULL)
    runs = json.load(open(out))["runs"]
    errs = [abs(r["error_pct"]) for r in runs
            if r.get("hardware") in profiles and not (exclude_zero3 and r["id"] in ZERO3)]
    return sum(errs) / len(errs) if errs else float("nan"), len(errs)


ZERO3 = set()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("profiles", help="profile name, or several joined by commas for a joint fit")
    ap.add_argument("runs")
    ap.add_argument("--moesim", default=os.path.join(ROOT, "build", "moesim"))
    ap.add_argument("--exclude-zero3", action="store_true",
                    help="leave ZeRO-3 runs out of the objective (still reported by validate)")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    names = a.profiles.split(",")
    records = json.load(open(a.runs))
    for r in records:
        if r.get("layout", {}).get("zero_stage") == 3:
            ZERO3.add(r["id"])
    paths = {n: os.path.join(ROOT, "hw_profiles", n + ".json") for n in names}
    profiles = {n: json.load(open(p)) for n, p in paths.items()}
    work = tempfile.mkdtemp()
    shutil.copytree(os.path.join(ROOT, "models"), os.path.join(work, "models"))
    shutil.copytree(os.path.join(ROOT, "hw_profiles"), os.path.join(work, "hw_profiles"))
    # Only these profiles' runs are simulated while fitting (the others cannot move).
    runs_path = os.path.join(work, "runs.json")
    json.dump([r for r in records if r.get("hardware", {}).get("profile") in profiles], open(runs_path, "w"))
    params = DEVICE_PARAMS + (TIER_PARAMS if len(names) == 1 else [])
    best, n = evaluate(profiles, runs_path, a.moesim, work, a.exclude_zero3)
    print(f"{a.profiles}: start MAPE {best:.2f}% over {n} runs")
    first = profiles[names[0]]
    for _ in range(a.rounds):
        for p, step, lo, hi in params:
            if not has(first, p):
                continue
            v0 = get(first, p)
            for direction in (+1, -1):
                while True:
                    v = v0 * (1 + direction * step) if p[-1] in MULTIPLICATIVE else v0 + direction * step
                    v = min(hi, max(lo, v))
                    if v == v0:
                        break
                    v = float(f"{v:.3g}") if p[-1] in MULTIPLICATIVE else round(v, 4)
                    cand = copy.deepcopy(profiles)
                    for prof in cand.values():
                        put(prof, p, v)
                    err, _ = evaluate(cand, runs_path, a.moesim, work, a.exclude_zero3)
                    if err + 1e-9 < best:
                        best, profiles, v0 = err, cand, v
                        first = profiles[names[0]]
                    else:
                        break
        print(f"  MAPE {best:.2f}%  " + str({".".join(map(str, p)): get(first, p) for p, *_ in params if has(first, p)}))
    shutil.rmtree(work)
    if a.write:
        joint = f" jointly with {', '.join(x for x in names)}" if len(names) > 1 else ""
        for name, profile in profiles.items():
            profile["device"]["source"]["calibration"] = (
                f"efficiencies fitted by scripts/fit_to_runs.py to {n} published runs in "
                f"{os.path.relpath(a.runs, ROOT)}{joint} (MAPE {best:.1f}%); one set of values for all runs "
                "on this hardware")
            with open(paths[name], "w") as f:
                json.dump(profile, f, indent=2)
                f.write("\n")
            print("wrote", paths[name])


if __name__ == "__main__":
    sys.exit(main())
