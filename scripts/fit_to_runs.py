#!/usr/bin/env python3
"""Fit hardware profiles' efficiency parameters to measured runs (coordinate descent on MAPE).

One profile serves every run on that hardware: this fits the profile's named efficiencies
(matrix peak_fraction, attention_fraction, grouped_gemm_factor, half_saturation_flops, launch
overhead, tier efficiencies) so that `moesim validate` agrees best with all runs of that hardware at
once, at the pass level (`validate --pass-level`): a fit reruns validate hundreds of times, and the
operator-level simulation, the default prediction, takes about 20 times longer per run (4-6 s against
0.2 s for the published runs); the operator level starts from the same per-op times (--op-level fits to
it instead, for a profile whose runs the two levels predict differently). It never touches a run's record. Prints the fitted values; with --write, updates the profile
files and notes the fit in their sources.

Several profiles given as A,B,C are fitted jointly: one set of device efficiencies serves all of
them (devices of one generation running the same software stack), which puts more runs behind each
fitted number. Tier efficiencies are then left as they are, since the profiles' tiers differ.

With --cross-validate, nothing is written: the runs of each source (paper, README, recipe set) are
held out in turn, the efficiencies are fitted to the other sources' runs, and the held-out runs are
predicted with that fit. This is the error to expect on runs the profile was not fitted to (the MAPE
`moesim validate` prints is in-sample for fitted profiles). --json writes the folds.

usage: scripts/fit_to_runs.py PROFILE[,PROFILE...] RUNS.json [--exclude-zero3] [--write]
       [--cross-validate [--json FILE]] [--rounds N] [--moesim build/moesim]
"""
import argparse
import copy
import re
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
    # Only where the profile states it (Grace- and Kunpeng-hosted systems): the eager host issue time.
    (("device", "host_op_overhead"), 0.25, 1e-6, 1e-3),
]
# Fitted only when named with --extra (the published GPU fits leave them at their sources' values).
EXTRA_PARAMS = {
    # At most half: a collective beside compute takes some of its cores and HBM, not all of them.
    "comm_compute_slowdown": (("device", "comm_compute_slowdown"), 0.05, 0.0, 0.5),
    "vector_efficiency": (("device", "vector_efficiency"), 0.1, 0.1, 1.0),
}
TIER_PARAMS = [
    (("tiers", 0, "efficiency"), 0.1, 0.3, 1.0),
    (("tiers", 1, "efficiency"), 0.1, 0.3, 1.0),
    (("tiers", 1, "all_to_all_efficiency"), 0.05, 0.3, 1.0),  # only where the profile states one
]
# Stepped by a factor (1 + step) instead of by adding the step.
MULTIPLICATIVE = {"half_saturation_flops", "launch_overhead", "host_op_overhead"}


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


class Moesim:
    """The moesim binary and the level validate predicts at: the pass level unless op_level (about 20 times
    slower per run, so a fit's hundreds of validate runs take minutes instead of seconds)."""

    def __init__(self, binary, op_level):
        self.binary, self.op_level = binary, op_level

    def validate_command(self, runs_path, out):
        return [self.binary, "validate", runs_path] + ([] if self.op_level else ["--pass-level"]) + ["--json", out]


def validate(profiles, runs_path, moesim, workdir):
    """Signed error % per run id of `moesim validate` with these profiles."""
    for name, profile in profiles.items():
        with open(os.path.join(workdir, "hw_profiles", name + ".json"), "w") as f:
            json.dump(profile, f)
    out = os.path.join(workdir, "out.json")
    env = dict(os.environ, MOESIM_DATA_DIR=workdir)
    subprocess.run(moesim.validate_command(runs_path, out), env=env, check=True, stdout=subprocess.DEVNULL)
    return {r["id"]: r["error_pct"] for r in json.load(open(out))["runs"] if r.get("hardware") in profiles}


def mape(errors):
    return sum(abs(e) for e in errors) / len(errors) if errors else float("nan")


def fit(profiles, runs_path, params, rounds, objective_ids, moesim, workdir, log):
    """Coordinate descent on the MAPE of the runs in objective_ids (None: all runs of runs_path).
    Returns the fitted profiles and their MAPE."""
    def objective(cand):
        errs = validate(cand, runs_path, moesim, workdir)
        return mape([e for i, e in errs.items() if objective_ids is None or i in objective_ids])

    best = objective(profiles)
    log(f"  start MAPE {best:.2f}%")
    first = profiles[next(iter(profiles))]
    for _ in range(rounds):
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
                    err = objective(cand)
                    if err + 1e-9 < best:
                        best, profiles, v0 = err, cand, v
                        first = profiles[next(iter(profiles))]
                    else:
                        break
        log(f"  MAPE {best:.2f}%  " + str(fitted_values(first, params)))
    return profiles, best


def fitted_values(profile, params):
    return {".".join(map(str, p)): get(profile, p) for p, *_ in params if has(profile, p)}


def source_of(record, group="url"):
    """The source a run is held out with: its URL, or with group 'repository' the repository or paper the
    URL lies in (github.com/OWNER/REPO, arxiv.org/abs/ID), so that every table of one publisher goes out
    together."""
    s = record.get("source", {})
    url = s.get("url") or s.get("title") or "unknown"
    if group == "repository":
        m = re.match(r"https?://(github\.com/[^/]+/[^/]+|arxiv\.org/abs/[0-9.]+)", url)
        if m:
            return m.group(1)
    return url


def cross_validate(profiles, in_sample, records, runs_path, params, rounds, objective_ids, moesim, workdir,
                   group="url"):
    """Leave one source out: fit on the other sources' runs, predict the held-out ones. `in_sample` holds
    each run's error with the profiles as given."""
    by_source = {}
    for r in records:
        if r["id"] in objective_ids:
            by_source.setdefault(source_of(r, group), set()).add(r["id"])
    folds, held_out = [], {}
    for source, ids in sorted(by_source.items(), key=lambda kv: -len(kv[1])):
        print(f"fold: hold out {len(ids)} runs of {source}", flush=True)
        fitted, train_mape = fit(copy.deepcopy(profiles), runs_path, params, rounds, objective_ids - ids, moesim,
                                 workdir, lambda line: None)
        errs = validate(fitted, runs_path, moesim, workdir)
        for i in ids:
            held_out[i] = errs[i]
        folds.append({"held_out_source": source, "runs": len(ids), "fit_runs": len(objective_ids - ids),
                      "fit_mape_pct": train_mape, "held_out_mape_pct": mape([errs[i] for i in ids]),
                      "held_out_mape_pct_with_current_profile": mape([in_sample[i] for i in ids]),
                      "fitted": fitted_values(fitted[next(iter(fitted))], params)})
        f = folds[-1]
        print(f"  fitted on {f['fit_runs']} runs: MAPE {f['fit_mape_pct']:.2f}%; held out: MAPE "
              f"{f['held_out_mape_pct']:.2f}% (current profile: {f['held_out_mape_pct_with_current_profile']:.2f}%)",
              flush=True)
    summary = {"runs": len(held_out), "held_out_mape_pct": mape(held_out.values()),
               "held_out_max_abs_error_pct": max(abs(e) for e in held_out.values()),
               "in_sample_mape_pct": mape([in_sample[i] for i in held_out]),
               "in_sample_max_abs_error_pct": max(abs(in_sample[i]) for i in held_out)}
    print(f"leave-one-source-out over {summary['runs']} runs: held-out MAPE {summary['held_out_mape_pct']:.2f}% "
          f"(max {summary['held_out_max_abs_error_pct']:.1f}%), in-sample {summary['in_sample_mape_pct']:.2f}% "
          f"(max {summary['in_sample_max_abs_error_pct']:.1f}%)")
    return {"folds": folds, "summary": summary,
            "runs": [{"id": i, "held_out_error_pct": e, "in_sample_error_pct": in_sample[i]}
                     for i, e in sorted(held_out.items())]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("profiles", help="profile name, or several joined by commas for a joint fit")
    ap.add_argument("runs")
    ap.add_argument("--moesim", default=os.path.join(ROOT, "build", "moesim"))
    ap.add_argument("--op-level", action="store_true",
                    help="fit to the operator-level prediction (validate's default) instead of the pass level")
    ap.add_argument("--exclude-zero3", action="store_true",
                    help="leave ZeRO-3 runs out of the objective (still reported by validate)")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--cross-validate", action="store_true",
                    help="hold out each source's runs in turn and predict them with a fit to the others")
    ap.add_argument("--json", help="with --cross-validate: write the folds and per-run errors here")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--extra", action="append", default=[], choices=sorted(EXTRA_PARAMS),
                    help="also fit this device parameter (repeatable)")
    ap.add_argument("--keep", action="append", default=[],
                    help="leave this parameter (last name of its path, e.g. peak_fraction) at the profile's value")
    ap.add_argument("--no-tiers", action="store_true",
                    help="keep the profile's tier efficiencies (measured ones) instead of fitting them")
    ap.add_argument("--group", choices=["url", "repository"], default="url",
                    help="with --cross-validate: hold out runs by source URL or by repository / paper")
    a = ap.parse_args()
    moesim = Moesim(a.moesim, a.op_level)
    if a.write and a.cross_validate:
        ap.error("--write and --cross-validate exclude each other")
    if a.json and not a.cross_validate:
        ap.error("--json goes with --cross-validate")
    names = a.profiles.split(",")
    records = json.load(open(a.runs))
    paths = {n: os.path.join(ROOT, "hw_profiles", n + ".json") for n in names}
    profiles = {n: json.load(open(p)) for n, p in paths.items()}
    work = tempfile.mkdtemp()
    try:
        shutil.copytree(os.path.join(ROOT, "models"), os.path.join(work, "models"))
        shutil.copytree(os.path.join(ROOT, "hw_profiles"), os.path.join(work, "hw_profiles"))
        # Only these profiles' runs are simulated while fitting (the others cannot move).
        mine = [r for r in records if r.get("hardware", {}).get("profile") in profiles]
        runs_path = os.path.join(work, "runs.json")
        json.dump(mine, open(runs_path, "w"))
        in_sample = validate(profiles, runs_path, moesim, work)  # records validate skips are not in it
        objective_ids = {r["id"] for r in mine if r["id"] in in_sample
                         and not (a.exclude_zero3 and r.get("layout", {}).get("zero_stage") == 3)}
        params = DEVICE_PARAMS + [EXTRA_PARAMS[e] for e in a.extra] + (
            TIER_PARAMS if len(names) == 1 and not a.no_tiers else [])
        params = [p for p in params if p[0][-1] not in a.keep]
        if a.cross_validate:
            result = cross_validate(profiles, in_sample, mine, runs_path, params, a.rounds, objective_ids, moesim, work,
                                    a.group)
            if a.json:
                with open(a.json, "w") as f:
                    json.dump({"profiles": names, "runs_file": a.runs, "rounds": a.rounds, **result}, f, indent=1)
                    f.write("\n")
            return 0
        print(f"{a.profiles}: {len(objective_ids)} runs")
        profiles, best = fit(profiles, runs_path, params, a.rounds, objective_ids, moesim, work, print)
    finally:
        shutil.rmtree(work)
    if a.write:
        joint = f" jointly with {', '.join(x for x in names)}" if len(names) > 1 else ""
        for name, profile in profiles.items():
            profile["device"]["source"]["calibration"] = (
                f"efficiencies fitted by scripts/fit_to_runs.py to {len(objective_ids)} published runs in "
                f"{os.path.relpath(a.runs, ROOT)}{joint} (MAPE {best:.1f}%); one set of values for all runs "
                "on this hardware")
            with open(paths[name], "w") as f:
                json.dump(profile, f, indent=2)
                f.write("\n")
            print("wrote", paths[name])
    return 0


if __name__ == "__main__":
    sys.exit(main())
