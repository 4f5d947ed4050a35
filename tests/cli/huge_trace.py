#!/usr/bin/env python3
"""A profiler trace of gigabytes through `moesim replay`, generated on the fly into a FIFO (never on disk):
repeated training steps of a small transformer written the way PyTorch's profiler (Kineto) writes them,
each kernel with its cpu_op (Input Dims, Input type), cudaLaunchKernel, flow event, and the ops around it
that launch nothing (aten::view, aten::empty, Python frames), about 1.9 KB of JSON per kernel as in the real
traces of ../shared/traces. Checks that the replay counts every kernel and sums every duration exactly,
that its peak resident memory stays under a bound far below the trace size, and that a trace cut off in
the middle of an event is one line of error naming the byte.

Usage: huge_trace.py MOESIM_BINARY [BYTES] [MAX_RSS_MB]"""
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading

OPS = []  # (cpu op, kernel, input dims, input types, kind)
for _ in range(4):
    OPS += [
        ("aten::mm", "ampere_bf16_s16816gemm_bf16_128x128_ldg8_f2f_stages_64x3_tn", [[4096, 4096], [4096, 12288]],
         ["c10::BFloat16", "c10::BFloat16"], "matmul"),
        ("aten::_flash_attention_forward", "flash_fwd_kernel", [[4, 1024, 32, 128]] * 3, ["c10::BFloat16"] * 3, "attention"),
        ("aten::mm", "ampere_bf16_s16816gemm_bf16_256x128_ldg8_f2f_stages_64x3_tn", [[4096, 4096], [4096, 4096]],
         ["c10::BFloat16", "c10::BFloat16"], "matmul"),
        ("aten::add", "vectorized_elementwise_kernel", [[4096, 4096], [4096, 4096]], ["c10::BFloat16", "c10::BFloat16"], "vector"),
        ("aten::native_layer_norm", "vectorized_layer_norm_kernel", [[4096, 4096], [4096], [4096]],
         ["c10::BFloat16", "float", "float"], "vector"),
    ]

EVENTS = (
    '{"ph": "X", "cat": "cpu_op", "name": "%(op)s", "pid": 1, "tid": 1, "ts": %(ts)d, "dur": 30, "args": {"External id": %(id)d, '
    '"Record function id": 0, "Ev Idx": %(id)d, "Input Dims": %(dims)s, "Input type": %(types)s, "Input Strides": %(dims)s, '
    '"Sequence number": %(id)d, "Fwd thread id": 0}},\n'
    '{"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1, "ts": %(ts_launch)d, "dur": 8, '
    '"args": {"External id": %(id)d, "cbid": 211, "correlation": %(id)d}},\n'
    '{"ph": "X", "cat": "kernel", "name": "%(kernel)s", "pid": 0, "tid": 7, "ts": %(ts_kernel)d, "dur": %(dur)d, '
    '"args": {"External id": %(id)d, "queued": 0, "device": 0, "context": 1, "stream": 7, "correlation": %(id)d, '
    '"registers per thread": 168, "shared memory": 73728, "blocks per SM": 0.5, "warps per SM": 4, "grid": [96, 2, 1], '
    '"block": [256, 1, 1], "est. achieved occupancy %%": 13}},\n'
    '{"ph": "f", "id": %(id)d, "pid": 0, "tid": 7, "ts": %(ts_kernel)d, "cat": "ac2g", "name": "ac2g", "bp": "e"},\n'
    '{"ph": "X", "cat": "cpu_op", "name": "aten::view", "pid": 1, "tid": 1, "ts": %(ts_view)d, "dur": 2, "args": '
    '{"External id": %(view_id)d, "Record function id": 0, "Ev Idx": %(id)d, "Input Dims": %(dims1)s, "Input type": %(types1)s, '
    '"Input Strides": %(dims1)s}},\n'
    '{"ph": "X", "cat": "cpu_op", "name": "aten::empty", "pid": 1, "tid": 1, "ts": %(ts_empty)d, "dur": 3, "args": '
    '{"External id": %(empty_id)d, "Record function id": 0, "Ev Idx": %(id)d, "Input Dims": [[], [], [], [], [], []], '
    '"Input type": ["", "ScalarType", "", "Device", "Scalar", ""], "Input Strides": [[], [], [], [], [], []]}},\n'
    '{"ph": "X", "cat": "python_function", "name": "torch/nn/modules/module.py(1736): _call_impl", "pid": 1, "tid": 1, '
    '"ts": %(ts)d, "dur": 40, "args": {"Python parent id": %(id)d, "Python id": %(next_id)d, "Python thread": 0}},\n')


def generate(out, target_bytes, stats, cut=False):
    """Writes the trace; `stats` gets the kernel count per kind and the sum of kernel durations in us."""
    out.write('{"schemaVersion": 1, "deviceProperties": [{"id": 0, "name": "NVIDIA A100-SXM4-80GB"}],\n "traceEvents": [\n')
    written, event_id, ts = 0, 0, 1_000_000
    while written < target_bytes:
        parts = []
        for op, kernel, dims, types, kind in OPS:
            event_id += 1
            dur = 50 + (event_id * 7919) % 400
            stats[kind] = stats.get(kind, 0) + 1
            stats["duration_us"] = stats.get("duration_us", 0) + dur
            compact = lambda v: json.dumps(v, separators=(",", ":"))
            parts.append(EVENTS % dict(op=op, kernel=kernel, ts=ts, id=event_id, dims=compact(dims), types=compact(types),
                                       ts_launch=ts + 5, ts_kernel=ts + 20, dur=dur, ts_view=ts + 1, view_id=10**9 + event_id,
                                       dims1=compact(dims[:1]), types1=compact(types[:1]), ts_empty=ts + 2,
                                       empty_id=2 * 10**9 + event_id, next_id=event_id + 1))
            ts += dur + 30
        block = "".join(parts)
        out.write(block)
        written += len(block)
    if cut:
        out.write('{"ph": "X", "cat": "kernel", "name": "cut off her')
    else:
        out.write('{"ph": "i", "name": "end", "pid": 1, "tid": 1, "ts": %d, "s": "t"}\n]}\n' % ts)
    out.close()


def replay_from_fifo(binary, folder, target_bytes, cut):
    fifo = os.path.join(folder, "cut.json" if cut else "trace.json")
    os.mkfifo(fifo)
    stats = {}
    # The writer opens the FIFO in its own thread: opening blocks until moesim opens it for reading.
    writer = threading.Thread(target=lambda: generate(open(fifo, "w"), target_bytes, stats, cut))
    writer.start()
    out_json = os.path.join(folder, "replay.json")
    proc = subprocess.run([binary, "replay", fifo, "--hw", "a100-sxm-80g", "--json", out_json], capture_output=True, text=True)
    writer.join()
    return proc, stats, out_json


def main():
    binary = sys.argv[1]
    target_bytes = int(float(sys.argv[2])) if len(sys.argv) > 2 else 2_100_000_000
    max_rss_mb = float(sys.argv[3]) if len(sys.argv) > 3 else 1024
    failures = []
    with tempfile.TemporaryDirectory() as folder:
        proc, stats, out_json = replay_from_fifo(binary, folder, target_bytes, cut=False)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        kernels = sum(v for k, v in stats.items() if k != "duration_us")
        print(f"{target_bytes / 1e9:.2f} GB trace, {kernels} kernels: exit {proc.returncode}, peak RSS {peak_mb:.0f} MB "
              f"(bound {max_rss_mb:.0f} MB)")
        if proc.returncode != 0:
            failures.append(f"replay failed: {proc.stderr.strip()[:400]}")
        else:
            report = json.load(open(out_json))
            for kind in ("matmul", "attention", "vector"):
                got = report["kinds"].get(kind, {}).get("count")
                if got != stats[kind]:
                    failures.append(f"{kind}: {got} kernels replayed, {stats[kind]} in the trace")
            measured = report["total"]["measured_s"]
            if abs(measured - stats["duration_us"] * 1e-6) > 1e-9 * measured:
                failures.append(f"measured total {measured} s, the trace's kernels sum to {stats['duration_us'] * 1e-6} s")
        if peak_mb > max_rss_mb:
            failures.append(f"peak RSS {peak_mb:.0f} MB above the bound {max_rss_mb:.0f} MB")

        proc, _, _ = replay_from_fifo(binary, folder, 5_000_000, cut=True)
        lines = proc.stderr.strip().splitlines()
        print(f"cut trace: exit {proc.returncode}: {proc.stderr.strip()[:200]}")
        if proc.returncode != 2 or len(lines) != 1 or "cut.json" not in lines[0] or "byte" not in lines[0]:
            failures.append(f"cut trace: expected exit 2 and one line naming the file and byte, got exit {proc.returncode}: "
                            f"{proc.stderr.strip()[:400]}")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
