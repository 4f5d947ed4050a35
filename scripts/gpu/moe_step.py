#!/usr/bin/env python3
"""One MoE transformer training step in PyTorch, timed and profiled, for moesim's calibration (issue 7).

    python3 scripts/gpu/moe_step.py --out DIR [--device cuda|cpu] [--tiny] [size options]

Trains a small decoder-only MoE transformer (bf16) for --warmup steps, times --steps more with CUDA
events (outside the profiler), then profiles --profile-steps steps with torch.profiler
(record_shapes=True, CPU + CUDA activities). It writes to DIR:

  trace.json.gz  Kineto Chrome trace of the profiled steps: GPU kernels (cat "kernel") linked to the
                 aten ops that launched them, whose Input Dims / Input type give moesim the GEMM shapes
  step.json      measured step time (median over the timed steps, and every step), device name,
                 torch version, settings
  model.json     the trained model in moesim's models/*.json format
  layout.json    its layout (one device: tp = pp = ep = 1) in moesim's layout format

What the trace shows per layer and micro-batch (forward; the backward has the transposed GEMMs):
  - attention projections: aten::mm (via aten::linear) -> cuBLAS/CUTLASS bf16 GEMM kernels
  - attention core: F.scaled_dot_product_attention -> aten::_flash_attention_forward / _backward ->
    flash_fwd/flash_bwd kernels on GPUs where the flash backend applies (bf16, head_dim <= 256);
    torch < 2.0 (no SDPA) or CPU: explicit QK^T, softmax, PV as aten::bmm/matmul + vector ops
  - router: a small GEMM [tokens, hidden] x [hidden, experts], softmax/topk (vector kernels)
  - experts: one loop over the experts; each expert's tokens are gathered with index_select and run
    through two plain GEMMs (fused gate+up [n_e, hidden] x [hidden, 2*ffn], down [n_e, ffn] x [ffn,
    hidden]) as aten::mm, so every expert GEMM appears as its own matmul kernel with its token count
    as M (moesim replays them as `matmul`, not `grouped_matmul`); outputs are combined by index_add_
  - RMSNorm, SwiGLU, residual adds, cross entropy: vector kernels
  - optimizer: AdamW on fp32 master weights (foreach/multi-tensor kernels) and the bf16 copy back

The script is honest about what ran: nothing here is simulated. It must also run with torch 1.13 on
CPU (--device cpu --tiny) for a dry run of the pipeline; on CPU the trace holds no GPU kernels.
"""
import argparse
import contextlib
import gzip
import json
import math
import os
import platform
import shutil
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    """RMSNorm (Zhang & Sennrich 2019), written out: torch 1.13 has no nn.RMSNorm."""

    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        rms = torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        return (x.float() * rms).to(x.dtype) * self.weight


class Attention(nn.Module):
    """Multi-head causal self-attention without position embedding (no RoPE: moesim's model file then
    describes exactly what ran; RoPE would add only elementwise kernels)."""

    def __init__(self, hidden, heads):
        super().__init__()
        self.heads = heads
        self.head_dim = hidden // heads
        self.qkv = nn.Linear(hidden, 3 * hidden, bias=False)
        self.out = nn.Linear(hidden, hidden, bias=False)

    def forward(self, x):
        b, s, h = x.shape
        q, k, v = self.qkv(x).view(b, s, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # [B, heads, S, d]
        if hasattr(F, "scaled_dot_product_attention"):  # torch >= 2.0: flash kernel on the GPU
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # torch 1.13: the textbook computation
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
            mask = torch.ones(s, s, dtype=torch.bool, device=x.device).triu(1)
            o = torch.matmul(scores.masked_fill(mask, float("-inf")).softmax(-1), v)
        return self.out(o.transpose(1, 2).reshape(b, s, h))


class MoE(nn.Module):
    """Top-k routed experts with SwiGLU (Mixtral's MoE layer, arXiv 2401.04088 sec. 2.1: softmax over
    the top-k router logits), experts run one after another on their gathered tokens."""

    def __init__(self, hidden, experts, top_k, ffn):
        super().__init__()
        self.top_k = top_k
        self.ffn = ffn
        self.router = nn.Linear(hidden, experts, bias=False)
        # One parameter per expert and matrix: slicing one [experts, ...] tensor instead would make
        # autograd's select backward write a full-size zero gradient per expert (extra HBM traffic that
        # a real MoE layer does not have).
        self.fc1 = nn.ParameterList(  # gate and up projections, fused
            nn.Parameter(torch.randn(hidden, 2 * ffn) / math.sqrt(hidden)) for _ in range(experts))
        self.fc2 = nn.ParameterList(nn.Parameter(torch.randn(ffn, hidden) / math.sqrt(ffn)) for _ in range(experts))

    def forward(self, x):
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        top_logits, top_experts = self.router(x).topk(self.top_k, dim=-1)
        top_weights = top_logits.float().softmax(-1).to(x.dtype)
        # Sort the (token, slot) pairs by expert so that each expert's tokens are one slice; the
        # per-expert counts go to the host once per layer (the loop needs them as slice lengths).
        flat_experts = top_experts.reshape(-1)
        sorted_experts, order = torch.sort(flat_experts, stable=True)
        tokens = order // self.top_k
        counts = torch.bincount(sorted_experts, minlength=len(self.fc1)).tolist()
        gathered = x.index_select(0, tokens)
        outputs = []
        start = 0
        for e, n in enumerate(counts):
            if n == 0:
                continue
            xe = gathered[start:start + n]
            gate, up = torch.mm(xe, self.fc1[e]).chunk(2, dim=-1)
            outputs.append(torch.mm(F.silu(gate) * up, self.fc2[e]))
            start += n
        y = torch.cat(outputs) * top_weights.reshape(-1)[order].unsqueeze(-1)
        return torch.zeros_like(x).index_add_(0, tokens, y).reshape(shape)


class Block(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.norm1 = RMSNorm(a.hidden)
        self.attn = Attention(a.hidden, a.heads)
        self.norm2 = RMSNorm(a.hidden)
        self.moe = MoE(a.hidden, a.experts, a.top_k, a.expert_ffn)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.moe(self.norm2(x))


class Model(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.embed = nn.Embedding(a.vocab, a.hidden)
        self.blocks = nn.ModuleList(Block(a) for _ in range(a.layers))
        self.norm = RMSNorm(a.hidden)
        self.head = nn.Linear(a.hidden, a.vocab, bias=False)  # untied

    def forward(self, ids):
        x = self.embed(ids)
        for b in self.blocks:
            x = b(x)
        return self.head(self.norm(x))


class MixedPrecisionAdamW:
    """bf16 parameters and gradients with fp32 master weights and Adam moments, as Megatron-LM's
    mixed-precision optimizer (Micikevicius et al. 2018, arXiv 1710.03740 sec. 3.1): moesim's
    optimizer step assumes this traffic (sim/engine/simulate.cpp, optimizer_bytes_per_param_step)."""

    def __init__(self, params):
        self.params = [p for p in params if p.requires_grad]
        self.master = [p.detach().float().clone().requires_grad_(True) for p in self.params]
        self.opt = torch.optim.AdamW(self.master, lr=1e-4, weight_decay=0.1)

    def step(self):
        for p, m in zip(self.params, self.master):
            m.grad = p.grad.float()
            p.grad = None
        self.opt.step()
        with torch.no_grad():
            for p, m in zip(self.params, self.master):
                p.copy_(m)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--tiny", action="store_true", help="tiny sizes and few steps (CPU dry run)")
    # Defaults: GEMMs of a few hundred GFLOP per step each on an H200 (hidden 2048, 8192 tokens).
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--experts", type=int, default=8)
    ap.add_argument("--top-k", type=int, default=2)
    ap.add_argument("--expert-ffn", type=int, default=4096)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--seq", type=int, default=4096)
    ap.add_argument("--micro-batch", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20, help="timed steps (median reported)")
    ap.add_argument("--profile-steps", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.tiny:
        a.layers, a.hidden, a.heads, a.experts, a.top_k, a.expert_ffn = 2, 64, 4, 4, 2, 128
        a.vocab, a.seq, a.micro_batch, a.warmup, a.steps, a.profile_steps = 512, 64, 2, 1, 3, 1
    if a.hidden % a.heads:
        ap.error("--hidden must be divisible by --heads")
    return a


def flash_attention_only():
    """Pins SDPA to its FlashAttention-2 kernels (flash_fwd/flash_bwd), the attention moesim models
    (costmodels/compute attention_time; Dao 2023). Left to itself, torch may pick cuDNN's fused attention
    on Hopper, whose kernels moesim's replay files under "cudnn", not attention."""
    try:  # torch >= 2.3
        from torch.nn.attention import SDPBackend, sdpa_kernel
        return sdpa_kernel(SDPBackend.FLASH_ATTENTION)
    except ImportError:  # torch 2.0 - 2.2
        return torch.backends.cuda.sdp_kernel(enable_flash=True, enable_math=False, enable_mem_efficient=False)


def main():
    a = parse_args()
    with contextlib.ExitStack() as stack:
        if a.device == "cuda" and hasattr(F, "scaled_dot_product_attention"):
            stack.enter_context(flash_attention_only())
        run(a)


def run(a):
    if a.device == "cuda" and not torch.cuda.is_available():
        sys.exit("moe_step.py: --device cuda but torch.cuda.is_available() is false (use --device cpu for a dry run)")
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    model = Model(a).to(device=dev, dtype=torch.bfloat16)
    opt = MixedPrecisionAdamW(model.parameters())
    n_params = sum(p.numel() for p in model.parameters())
    ids = torch.randint(0, a.vocab, (a.micro_batch, a.seq + 1), device=dev)
    inputs, labels = ids[:, :-1], ids[:, 1:]

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def step():
        logits = model(inputs)
        loss = F.cross_entropy(logits.float().reshape(-1, a.vocab), labels.reshape(-1))
        loss.backward()
        opt.step()
        return loss

    t0 = time.time()
    for _ in range(a.warmup):
        loss = step()
    sync()
    warmup_s = time.time() - t0

    step_s = []
    for _ in range(a.steps):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            loss = step()
            end.record()
            torch.cuda.synchronize()
            step_s.append(start.elapsed_time(end) * 1e-3)
        else:
            t = time.perf_counter()
            loss = step()
            step_s.append(time.perf_counter() - t)
    final_loss = float(loss)

    activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if cuda else [])
    raw_trace = os.path.join(a.out, "trace.json")
    t = time.time()
    # One profiled warm-up step (the profiler's own start-up), then the active steps; the trace is
    # written when the last active step ends.
    with torch.profiler.profile(activities=activities, record_shapes=True,
                                schedule=torch.profiler.schedule(wait=0, warmup=1, active=a.profile_steps),
                                on_trace_ready=lambda p: p.export_chrome_trace(raw_trace)) as prof:
        for _ in range(1 + a.profile_steps):
            step()
            sync()
            prof.step()
    with open(raw_trace, "rb") as f, gzip.open(os.path.join(a.out, "trace.json.gz"), "wb") as g:
        shutil.copyfileobj(f, g)
    os.remove(raw_trace)
    profile_s = time.time() - t

    device_name = torch.cuda.get_device_name(0) if cuda else "cpu " + (platform.processor() or platform.machine())
    flash = cuda and hasattr(F, "scaled_dot_product_attention")
    settings = {k: v for k, v in vars(a).items() if k != "out"}
    command = "python3 scripts/gpu/moe_step.py " + " ".join(
        f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}") for k, v in settings.items() if v is not False)
    step_json = {
        "measured_step_s": statistics.median(step_s),
        "step_s": step_s,
        "timing": "CUDA events around each whole step (forward, backward, optimizer), synchronised, outside the profiler"
                  if cuda else "time.perf_counter around each step (CPU)",
        "device": device_name,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "parameters": n_params,
        "tokens_per_step": a.micro_batch * a.seq,
        "final_loss": final_loss,
        "warmup_s": warmup_s,
        "profile_s": profile_s,
        "profiled_steps": a.profile_steps,
        "settings": settings,
        "command": command,
    }
    source = f"{command} (scripts/gpu/moe_step.py: the model it trained)"
    model_json = {
        "name": f"moe-step-l{a.layers}-h{a.hidden}-e{a.experts}k{a.top_k}",
        "source": {"config": source},
        "layers": a.layers,
        "hidden": a.hidden,
        "vocab": a.vocab,
        "seq_len": a.seq,
        "attention": {"type": "mha", "heads": a.heads, "kv_heads": a.heads, "head_dim": a.hidden // a.heads},
        "ffn": {"intermediate": a.expert_ffn, "activation": "swiglu"},
        "moe": {"experts": a.experts, "top_k": a.top_k, "expert_intermediate": a.expert_ffn, "shared_experts": 0,
                "first_dense_layers": 0},
        "mtp_layers": 0,
        "tie_embeddings": False,
    }
    layout_json = {
        "devices": 1, "tp": 1, "pp": 1, "ep": 1, "cp": 1,
        "micro_batch": a.micro_batch, "global_batch": a.micro_batch, "seq_len": a.seq,
        "precision": "bf16", "recompute": "none", "distributed_optimizer": False,
        "flash_attention": flash,
        "source": f"{command}: one device, one micro-batch per step (no gradient accumulation), "
                  f"attention {'through SDPA (flash kernel)' if flash else 'as explicit matmuls and softmax'}",
    }
    for name, obj in (("step.json", step_json), ("model.json", model_json), ("layout.json", layout_json)):
        with open(os.path.join(a.out, name), "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
    print(f"{device_name}, torch {torch.__version__}: {n_params / 1e6:.1f}M parameters, {a.micro_batch * a.seq} tokens/step; "
          f"step {statistics.median(step_s) * 1e3:.2f} ms median of {a.steps} (min {min(step_s) * 1e3:.2f}, "
          f"max {max(step_s) * 1e3:.2f}); warm-up {warmup_s:.1f} s, profiling {profile_s:.1f} s; loss {final_loss:.3f}")


if __name__ == "__main__":
    main()
