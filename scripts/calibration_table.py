#!/usr/bin/env python3
"""Replay error per operator kind before and after `moesim calibrate` on every real trace in
../shared/traces, in-sample (replayed on the traces it was fitted to) and held out (fitted on one
rank or run, replayed on another of the same GPU): the table of issue 7's closing note.

    python3 scripts/calibration_table.py [--moesim build/moesim] [--shared ../shared]
    python3 scripts/calibration_table.py --trace T --hw BASE   (one trace, in-sample: scripts/gpu/after_device.sh)

Cells are "median/p90 |error| % (predicted kernels)" with the base profile -> with the calibrated
one. The V100 traces start from the V100 profile (datasheet rates, A100 assumptions for the
efficiencies), the A100 traces from the A100 profile, the Ascend ones from the 910B2 profile.
"""
import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile

KINDS = ["matmul", "attention", "vector", "collective"]


def main():
    ap = argparse.ArgumentParser()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--moesim", default=os.path.join(root, "build", "moesim"))
    ap.add_argument("--shared", default=os.path.join(root, "..", "shared"))
    ap.add_argument("--trace", help="only this trace (in-sample), instead of the traces of --shared")
    ap.add_argument("--hw", help="base profile of --trace")
    args = ap.parse_args()
    if bool(args.trace) != bool(args.hw):
        ap.error("--trace and --hw go together")
    tmp = tempfile.mkdtemp()
    if args.trace:
        print_table([(os.path.basename(args.trace), args.hw, [args.trace], [])], args.moesim, tmp)
        return
    t = os.path.join(args.shared, "traces")
    with tarfile.open(os.path.join(t, "param-dlrm-kineto-8rank", "dlrm_kineto.tar.gz")) as tar:
        tar.extractall(tmp, filter="data")
    dlrm_dir = os.path.join(tmp, "dlrm_kineto")
    dlrm = sorted(os.path.join(dlrm_dir, f) for f in os.listdir(dlrm_dir))
    hta = lambda p: os.path.join(t, "hta", p)
    a100, v100, ascend = "a100-sxm-80g", "v100-sxm2", "ascend-910b2"
    control, nq = hta("trace_diff/control/control.json.gz"), hta("negative_queue_length_values_check/rank0.json.gz")
    tf = [hta("trace_filter/sampled_rank-0.json.gz"), hta("trace_filter/sampled_rank-1.json.gz")]
    v100_test = hta("trace_diff/test/test.json.gz")
    alex = [os.path.join(t, "ascend-msinsight-alexnet-910b", f"rank{r}_ascend_pt") for r in (0, 1)]
    cases = [  # name, base profile, traces fitted on, [(held-out label, traces replayed)]
        ("HTA A100 control", a100, [control], [("negative_queue", [nq])]),
        ("HTA A100 negative_queue", a100, [nq], [("control", [control])]),
        ("HTA A100 trace_filter rank 0", a100, [tf[0]], [("rank 1", [tf[1]])]),
        ("HTA V100 trace_diff test", v100, [v100_test], [("PARAM DLRM rank 0", dlrm[:1])]),
        ("PARAM DLRM V100 rank 0", v100, dlrm[:1], [("ranks 1-7", dlrm[1:])]),
        ("PARAM DLRM V100 8 ranks", v100, dlrm, [("HTA V100 test", [v100_test])]),
        ("AlexNet 910B rank 0", ascend, alex[:1], [("rank 1", alex[1:])]),
        ("GPT-3 TP8 fp16 910B", ascend, [os.path.join(t, "ascend-msprof-analyze/gpt3_tp8_fp16/kernel_details.csv")], []),
        ("LLM bf16 910B (edited fixture)", ascend, [os.path.join(t, "ascend-msprof-analyze/llm_bf16_flashattn/kernel_details.csv")], []),
    ]
    print_table(cases, args.moesim, tmp)


def print_table(cases, moesim, tmp):
    """cases: [(name, base profile, traces fitted on, [(held-out label, traces replayed)])]."""

    def run(*cmd):
        r = subprocess.run([moesim, *cmd], capture_output=True, text=True)
        if r.returncode:
            sys.exit(f"moesim {' '.join(cmd)}: {r.stderr.strip()}")

    def replay(traces, hw):
        out = os.path.join(tmp, "replay.json")
        run("replay", *traces, "--hw", hw, "--json", out)
        with open(out) as f:
            return json.load(f)

    def cell(report, kind):
        k = report["kinds"][kind]
        return f"{k['median_abs_error_pct']:.0f}/{k['p90_abs_error_pct']:.0f} ({k['count']})" if k["count"] else "-"

    print("| trace | replayed on | " + " | ".join(KINDS) + " | total predicted/measured |")
    print("|---|---|" + "---|" * (len(KINDS) + 1))
    for name, base, fitted_on, held_out in cases:
        calibrated = os.path.join(tmp, "calibrated.json")
        run("calibrate", *fitted_on, "--hw", base, "--out", calibrated)
        for label, traces in [("in-sample", fitted_on)] + [(f"held out: {l}", tr) for l, tr in held_out]:
            before, after = replay(traces, base), replay(traces, calibrated)
            ratio = lambda r: r["total"]["predicted_s"] / r["total"]["measured_s"]
            cells = [f"{cell(before, k)} → {cell(after, k)}" for k in KINDS]
            print(f"| {name} | {label} | " + " | ".join(cells) + f" | {ratio(before):.2f} → {ratio(after):.2f} |")


if __name__ == "__main__":
    main()
