#!/usr/bin/env python3
"""Fit a hardware profile's efficiency parameters to measured runs (coordinate descent on MAPE).

One profile serves every run on that hardware: this fits the profile's named efficiencies
(matrix peak_fraction, attention_fraction, grouped_gemm_factor, half_saturation_flops, tier
efficiencies) so that `moesim validate` agrees best with all runs of that hardware at once. It never
touches a run's record. Prints the fitted values; with --write, updates the profile file and notes
the fit in its sources.

usage: scripts/fit_to_runs.py PROFILE RUNS.json [--exclude-zero3] [--write] [--moesim build/moesim]
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

PARAMS = [  # (path in the profile, candidate multipliers, lower, upper)
    (("device", "matrix_efficiency", "peak_fraction"), 0.05, 0.3, 1.0),
    (("device", "matrix_efficiency", "attention_fraction"), 0.1, 0.2, 1.0),
    (("device", "matrix_efficiency", "grouped_gemm_factor"), 0.1, 0.3, 1.0),
    (("device", "matrix_efficiency", "half_saturation_flops"), 1.0, 1e8, 1e11),
    (("tiers", 0, "efficiency"), 0.1, 0.3, 1.0),
    (("tiers", 1, "efficiency"), 0.1, 0.3, 1.0),
]


def get(d, path):
    for k in path:
        d = d[k]
    return d


def put(d, path, v):
    for k in path[:-1]:
        d = d[k]
    d[path[-1]] = v


def evaluate(profile, runs_file, moesim, workdir, name, exclude_zero3):
    with open(os.path.join(workdir, "hw_profiles", name + ".json"), "w") as f:
        json.dump(profile, f)
    out = os.path.join(workdir, "out.json")
    env = dict(os.environ, MOESIM_DATA_DIR=workdir)
    subprocess.run([moesim, "validate", runs_file, "--json", out], env=env, check=True, stdout=subprocess.DEVNULL)
    runs = json.load(open(out))["runs"]
    errs = [abs(r["error_pct"]) for r in runs
            if r.get("hardware") == name and not (exclude_zero3 and r["id"] in ZERO3)]
    return sum(errs) / len(errs) if errs else float("nan"), len(errs)


ZERO3 = set()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("profile")
    ap.add_argument("runs")
    ap.add_argument("--moesim", default=os.path.join(ROOT, "build", "moesim"))
    ap.add_argument("--exclude-zero3", action="store_true",
                    help="leave ZeRO-3 runs out of the objective (still reported by validate)")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    for r in json.load(open(a.runs)):
        if r.get("layout", {}).get("zero_stage") == 3:
            ZERO3.add(r["id"])
    path = os.path.join(ROOT, "hw_profiles", a.profile + ".json")
    profile = json.load(open(path))
    work = tempfile.mkdtemp()
    shutil.copytree(os.path.join(ROOT, "models"), os.path.join(work, "models"))
    shutil.copytree(os.path.join(ROOT, "hw_profiles"), os.path.join(work, "hw_profiles"))
    best, n = evaluate(profile, a.runs, a.moesim, work, a.profile, a.exclude_zero3)
    print(f"{a.profile}: start MAPE {best:.2f}% over {n} runs")
    for _ in range(a.rounds):
        for p, step, lo, hi in PARAMS:
            try:
                v0 = get(profile, p)
            except (KeyError, IndexError):
                continue
            for direction in (+1, -1):
                while True:
                    cand = copy.deepcopy(profile)
                    v = v0 * (1 + direction * step) if p[-1] == "half_saturation_flops" else v0 + direction * step
                    v = min(hi, max(lo, v))
                    if v == v0:
                        break
                    put(cand, p, round(v, 4) if v < 10 else float(f"{v:.3g}"))
                    err, _ = evaluate(cand, a.runs, a.moesim, work, a.profile, a.exclude_zero3)
                    if err + 1e-9 < best:
                        best, profile, v0 = err, cand, get(cand, p)
                    else:
                        break
        step_note = {".".join(map(str, p)): get(profile, p) for p, *_ in PARAMS if _has(profile, p)}
        print(f"  MAPE {best:.2f}%  {step_note}")
    shutil.rmtree(work)
    if a.write:
        src = profile["device"]["source"]
        src["calibration"] = (f"efficiencies fitted by scripts/fit_to_runs.py to {n} published runs in "
                              f"{os.path.relpath(a.runs, ROOT)} (MAPE {best:.1f}%); one set of values for all runs "
                              "on this hardware")
        json.dump(profile, open(path, "w"), indent=2)
        open(path, "a").write("\n")
        print("wrote", path)


def _has(d, p):
    try:
        get(d, p)
        return True
    except (KeyError, IndexError):
        return False


if __name__ == "__main__":
    sys.exit(main())
