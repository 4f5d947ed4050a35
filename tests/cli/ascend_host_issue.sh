#!/usr/bin/env bash
# The Ascend profiles' eager host issue time (device.host_op_overhead) is a measurement, not a fit: it is
# the mean interval between operator enqueues on the main Python thread of the one real 910B host timeline
# in ../shared (torch_npu profiler, msprof-analyze's timeline_advice sample), taken while the NPU waits for
# the host (busy under a quarter of the window). This recomputes it from the trace and checks that every
# Ascend profile holds that value within 2%, so the number cannot drift from its source.
# Usage: bash ascend_host_issue.sh MOESIM_BINARY SOURCE_DIR
set -u
bin=${1:?usage: ascend_host_issue.sh MOESIM_BINARY SOURCE_DIR}
src=${2:?usage: ascend_host_issue.sh MOESIM_BINARY SOURCE_DIR}
source "$src/tests/cli.bash"

trace="$src/../shared/traces/ascend-msprof-analyze/timeline_advice/trace_view.json"
[ -f "$trace" ] || fail "no trace at $trace (../shared is needed)"
python3 - "$trace" "$src/hw_profiles" <<'PY' || fail "host issue time against the 910B host trace (see above)"
import json, os, sys
events = json.load(open(sys.argv[1]))  # torch_npu writes a bare Chrome-trace array
process = {e["pid"]: e["args"]["name"] for e in events if e.get("ph") == "M" and e.get("name") == "process_name"}
spans = [e for e in events if e.get("ph") == "X"]
python = [e for e in spans if process.get(e["pid"]) == "Python"]
main_thread = python[0]["pid"]  # the main Python thread's tid is the process id
enqueues = sorted(float(e["ts"]) for e in python if e["tid"] == main_thread and e["name"] == "Enqueue")
issue_s = (enqueues[-1] - enqueues[0]) / (len(enqueues) - 1) * 1e-6
device = sorted((float(e["ts"]), float(e["ts"]) + float(e["dur"])) for e in spans
                if process.get(e["pid"]) == "Ascend Hardware")
busy = sum(b - a for a, b in device) / (device[-1][1] - device[0][0])
print(f"910B host trace: {len(enqueues)} enqueues on the main thread, {issue_s * 1e6:.1f} us each; NPU busy {100 * busy:.0f}%")
problems = []
if len(enqueues) < 100:
    problems.append(f"only {len(enqueues)} enqueues")
if busy > 0.25:
    problems.append(f"NPU busy {100 * busy:.0f}%: not host-bound, the interval is not the host's issue time")
for name in ("ascend-910b2", "ascend-910b3", "ascend-910c-cm384"):
    value = json.load(open(os.path.join(sys.argv[2], name + ".json")))["device"]["host_op_overhead"]
    if abs(value / issue_s - 1) > 0.02:
        problems.append(f"{name}: host_op_overhead {value * 1e6:.1f} us, the trace gives {issue_s * 1e6:.1f} us")
if problems:
    sys.exit("\n".join(problems))
PY
finish "ascend_host_issue"
