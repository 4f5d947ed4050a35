#include "sim/calibration/calibrate.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <functional>
#include <numeric>
#include <unordered_map>

namespace moesim::calibrate {

const char* to_string(OpKind k) {
  switch (k) {
    case OpKind::matmul: return "matmul";
    case OpKind::grouped_matmul: return "grouped_matmul";
    case OpKind::attention: return "attention";
    case OpKind::vector: return "vector";
    case OpKind::collective: return "collective";
    case OpKind::other: return "other";
  }
  return "?";
}

const char* to_string(GemmPath p) {
  switch (p) {
    case GemmPath::tensor_core: return "tensor_core";
    case GemmPath::tf32: return "tf32";
    case GemmPath::simt: return "simt";
    case GemmPath::gemv: return "gemv";
  }
  return "?";
}

namespace {

bool contains(std::string_view haystack, const char* needle) { return haystack.find(needle) != std::string_view::npos; }

// Product of dims[from, to).
double product(const std::vector<double>& dims, std::size_t from, std::size_t to) {
  return std::accumulate(dims.begin() + static_cast<std::ptrdiff_t>(std::min(from, dims.size())),
                         dims.begin() + static_cast<std::ptrdiff_t>(std::min(to, dims.size())), 1.0, std::multiplies<>());
}
double product(const std::vector<double>& dims) { return product(dims, 0, dims.size()); }

// Element type of tensor i, else the first type the trace recorded.
std::string_view type_of(std::span<const std::string> types, std::size_t i) {
  if (i < types.size() && io::dtype_bytes(types[i]) > 0) return types[i];
  for (const auto& t : types)
    if (io::dtype_bytes(t) > 0) return t;
  return "";
}

bytes tensor_bytes(std::span<const std::vector<double>> shapes, std::span<const std::string> types) {
  bytes total = 0;
  for (std::size_t i = 0; i < shapes.size(); ++i)
    if (!shapes[i].empty()) total += product(shapes[i]) * io::dtype_bytes(type_of(types, i));
  return total;
}

MatrixPrecision precision_of(std::string_view dtype) {
  const std::string t = io::to_lower(dtype);
  if (contains(t, "bf16") || contains(t, "bfloat16")) return MatrixPrecision::bf16;
  if (contains(t, "float16") || contains(t, "half") || contains(t, "fp16")) return MatrixPrecision::fp16;
  if (io::dtype_bytes(t) == 1) return MatrixPrecision::fp8;
  return MatrixPrecision::fp32;
}

flops_per_second matrix_peak(MatrixPrecision p, const DeviceSpec& d) {
  switch (p) {
    case MatrixPrecision::bf16: return d.matrix_bf16;
    case MatrixPrecision::fp16: return d.matrix_fp16;
    case MatrixPrecision::fp8: return d.matrix_fp8 > 0 ? d.matrix_fp8 : d.matrix_bf16;
    case MatrixPrecision::fp32:
      // Assumption until calibrated: FP32 GEMMs (PyTorch >= 1.12 disables TF32 for matmul by default)
      // run at the FP32 rate of the non-tensor units, half the non-tensor BF16 rate the profiles list
      // (Hopper: 67 vs 133.8 TFLOPS, NVIDIA H100 datasheet).
      return d.matrix_fp32 > 0 ? d.matrix_fp32 : d.vector_flops / 2;
  }
  return d.matrix_bf16;
}

// Rate of a GEMM kernel on its path. TF32 until calibrated: half the BF16 tensor rate (A100: 156 vs
// 312 TFLOPS, H100 SXM: 495 vs 989, NVIDIA A100 / H100 datasheets, dense).
flops_per_second tf32_rate(const DeviceSpec& d) { return d.matrix_tf32 > 0 ? d.matrix_tf32 : d.matrix_bf16 / 2; }

// A TF32 kernel on unaligned operands: CUTLASS names its operand alignment in elements per global
// load (`_align4`: 128-bit vector loads of 4 floats; `_align1`: scalar 32-bit loads, chosen when a
// leading dimension is not a multiple of 4 floats). Scalar loads issue 4x the load instructions and
// cannot use 16-byte asynchronous copies (cp.async.cg), so the main loop is fed more slowly (CUTLASS
// docs/efficient_gemm.md, "Vectorized memory access"; NVIDIA "Matrix Multiplication Background" guide,
// Tensor Core requirements: dimensions in multiples of 16 bytes). Until calibrated: the TF32 rate.
bool unaligned_tf32(const Sample& s) { return s.path == GemmPath::tf32 && s.alignment > 0 && s.alignment * 4 < 16; }
flops_per_second tf32_unaligned_rate(const DeviceSpec& d) {
  return d.matrix_tf32_unaligned > 0 ? d.matrix_tf32_unaligned : tf32_rate(d);
}

// A CUDA-core FP32 kernel's rate by the operand layout its name gives: cuBLAS's SIMT sgemm kernels
// stage each operand tile through shared memory, and an operand stored along K ('t' for A, 'n' for B in
// column-major terms) is read with strided global loads and a transposing shared-memory store, so the
// main loop's load pipeline differs per layout (CUTLASS docs/efficient_gemm.md, "Shared memory
// transposition"; cuBLAS names its kernels per layout for that reason). Until calibrated: matrix_fp32.
flops_per_second simt_rate(const Sample& s, const DeviceSpec& d) {
  if (s.layout >= 0 && d.matrix_fp32_by_layout[static_cast<std::size_t>(s.layout)] > 0)
    return d.matrix_fp32_by_layout[static_cast<std::size_t>(s.layout)];
  return matrix_peak(s.precision, d);
}

flops_per_second gemm_rate(const Sample& s, const DeviceSpec& d) {
  if (unaligned_tf32(s)) return tf32_unaligned_rate(d);
  if (s.path == GemmPath::simt) return simt_rate(s, d);
  return s.path == GemmPath::tf32 ? tf32_rate(d) : matrix_peak(s.precision, d);
}

// Operand layout named by a cuBLAS SIMT kernel, the last `_xx` of its name (`volta_sgemm_128x32_tn`,
// `ampere_sgemm_32x32_sliced1x4_nn`); -1 when not named (gemmSN's layout is in its template name).
int layout_from_name(std::string_view name) {
  const std::string_view kernel = name.substr(0, std::min(name.find('<'), name.find('(')));
  if (kernel.find("sgemm") == std::string_view::npos || kernel.size() < 3 || kernel[kernel.size() - 3] != '_') return -1;
  const std::string_view suffix = kernel.substr(kernel.size() - 2);
  for (std::size_t i = 0; i < gemm_layout_names.size(); ++i)
    if (suffix == gemm_layout_names[i]) return static_cast<int>(i);
  return -1;
}

// Operand alignment (elements) named by a CUTLASS kernel, `..._align<N>`; 0 when not named.
int alignment_from_name(std::string_view name) {
  const std::size_t at = name.find("_align");
  if (at == std::string_view::npos || at + 6 >= name.size()) return 0;
  const char digit = name[at + 6];
  return digit >= '1' && digit <= '9' ? digit - '0' : 0;
}

// Execution path of a GPU GEMM kernel from its name and the GEMM's shape (GemmPath).
GemmPath gemm_path(const std::string& name, const Sample& s) {
  const bool vector_shape = std::min(s.gemm.m, s.gemm.n) == 1 || s.gemm.k == 1;  // cuBLAS dispatches these to GEMV
  // The kernel's own name, not its template arguments (cuBLAS's small-N `gemmSN_TN_kernel<..,
  // cublasGemvTensorStridedBatched<..>>` is a GEMM).
  const std::string kernel = name.substr(0, name.find('<'));
  if (vector_shape || contains(kernel, "gemv") || contains(kernel, "dot_kernel") || contains(kernel, "gemmk1")) return GemmPath::gemv;
  if (s.precision != MatrixPrecision::fp32) return GemmPath::tensor_core;
  for (const char* tensor : {"tensorop", "s1688", "s16816", "tf32", "xmma"})
    if (contains(name, tensor)) return GemmPath::tf32;
  return GemmPath::simt;
}

// Threadblock tile named by a cuBLAS/CUTLASS kernel: `..gemm_<M>x<N>_<K>x<stages>_..` (CUTLASS
// `cutlass_80_tensorop_s1688gemm_64x64_32x6_tn_align4`: 64 x 64 tile, K step 32, 6 stages) or
// `..sgemm_<M>x<N>_..` (cuBLAS `ampere_sgemm_128x64_nn`, K step not named). cuBLAS is column-major, so
// PyTorch computes the row-major C = A B as C^T = B^T A^T: the kernel's M runs along aten's N
// (aten/src/ATen/native/cuda/Blas.cpp swaps the operands), hence the swap below.
compute::KernelTile tile_from_name(const std::string& name) {
  const std::size_t at = name.find("gemm_");
  if (at == std::string::npos) return {};
  int tm = 0, tn = 0, tk = 0, stages = 0, used = 0;
  const char* rest = name.c_str() + at + 5;
  if (std::sscanf(rest, "%dx%d%n", &tm, &tn, &used) != 2) return {};
  std::sscanf(rest + used, "_%dx%d", &tk, &stages);
  return {tn, tm, tk};
}

// Collective kind from an NCCL kernel/collective name or an HCCL op type; nullopt for kinds moesim
// does not model (broadcast, reduce, DeepEP's custom dispatch/combine without sizes).
std::optional<comm::CollectiveKind> collective_kind(std::string_view name) {
  std::string n = io::to_lower(name);
  n.erase(std::remove(n.begin(), n.end(), '_'), n.end());
  if (contains(n, "allreduce")) return comm::CollectiveKind::all_reduce;
  if (contains(n, "allgather")) return comm::CollectiveKind::all_gather;
  if (contains(n, "reducescatter")) return comm::CollectiveKind::reduce_scatter;
  if (contains(n, "alltoall") || contains(n, "sendrecv")) return comm::CollectiveKind::all_to_all;
  if (contains(n, "send") || contains(n, "recv") || contains(n, "receive")) return comm::CollectiveKind::send_recv;
  return std::nullopt;
}

// Bytes a device moves for a collective of buffer S among n members, as a fraction of S (NCCL
// "bus bandwidth" factors, nccl-tests doc/PERFORMANCE.md; Thakur, Rabenseifner & Gropp 2005).
double traffic_fraction(comm::CollectiveKind kind, int n) {
  const double nd = n;
  switch (kind) {
    case comm::CollectiveKind::all_reduce: return 2.0 * (nd - 1) / nd;
    case comm::CollectiveKind::all_gather:
    case comm::CollectiveKind::reduce_scatter:
    case comm::CollectiveKind::all_to_all: return (nd - 1) / nd;
    case comm::CollectiveKind::send_recv: return 1.0;
  }
  return 1.0;
}

bool is_matmul_op(std::string_view op) {
  static const char* names[] = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::linear", "aten::matmul"};
  return std::find(std::begin(names), std::end(names), op) != std::end(names);
}

// M, N, K (and batch count) of a GPU matmul from its launching aten op's Input Dims.
bool gemm_from_aten(const io::KernelSample& k, Sample& s) {
  const auto& d = k.input_shapes;
  auto take = [&](std::size_t a, std::size_t b) -> bool {
    if (d.size() <= std::max(a, b) || d[a].size() < 2 || d[b].size() < 2) return false;
    const auto& A = d[a];
    const auto& B = d[b];
    if (k.op == "aten::linear") {  // input [..., K], weight [N, K]
      s.gemm = {product(A, 0, A.size() - 1), B[0], A.back(), 1};
    } else if (B.size() == 2) {  // [..., M, K] x [K, N]
      s.gemm = {product(A, 0, A.size() - 1), B[1], A.back(), 1};
    } else {  // batched: [b..., M, K] x [b..., K, N]
      s.gemm = {A[A.size() - 2], B.back(), A.back(), product(A, 0, A.size() - 2)};
    }
    s.precision = precision_of(type_of(k.input_types, a));
    s.hbm = (s.gemm.m * s.gemm.k + s.gemm.k * s.gemm.n + s.gemm.m * s.gemm.n) * s.gemm.count *
            io::dtype_bytes(type_of(k.input_types, a));
    return s.gemm.m > 0 && s.gemm.n > 0 && s.gemm.k > 0;
  };
  if (k.op == "aten::addmm" || k.op == "aten::baddbmm") return take(1, 2);
  return take(0, 1);
}

// Ascend MatMul/BatchMatMul/GroupedMatmul from ND Input and Output Shapes: M, N from the output; K from
// the weight B (or A), whichever dimension is not N (M); inputs may be transposed.
bool gemm_from_ascend(const io::KernelSample& k, Sample& s, bool grouped) {
  const auto& in = k.input_shapes;
  if (in.size() < 2 || in[0].size() < 2 || in[1].size() < 2) return false;
  const auto& A = in[0];
  const std::string_view type = type_of(k.input_types, 0);
  if (grouped) {  // x [tokens, K], weight [E, K, N]
    if (in[1].size() != 3) return false;
    const double experts = in[1][0];
    s.gemm = {A[0] / experts, in[1][2], in[1][1], experts};
  } else {
    if (k.output_shapes.empty() || k.output_shapes[0].size() != A.size()) return false;  // non-ND (fractal) layouts
    const auto& C = k.output_shapes[0];
    const auto& B = in[1];
    const double m = C[C.size() - 2], n = C.back();
    // K is the dimension of B that is not N (B may be transposed), else the dimension of A that is not M.
    const double b_rows = B[B.size() - 2], b_cols = B.back();
    const double a_rows = A[A.size() - 2], a_cols = A.back();
    const double kk = b_cols == n && b_rows != n ? b_rows : b_rows == n && b_cols != n ? b_cols : a_rows == m ? a_cols : a_rows;
    s.gemm = {m, n, kk, product(C, 0, C.size() - 2)};
  }
  s.precision = precision_of(type);
  s.hbm = (s.gemm.m * s.gemm.k + s.gemm.k * s.gemm.n + s.gemm.m * s.gemm.n) * s.gemm.count * io::dtype_bytes(type);
  return s.gemm.m > 0 && s.gemm.n > 0 && s.gemm.k > 0 && io::dtype_bytes(type) > 0;
}

// Attention FLOPs: 4 * B * heads * S_q * S_kv * head_dim for QK^T and PV (FlashAttention-2, Dao 2023,
// sec. 4.1 counts 4 * seqlen^2 * head_dim * heads per sequence); the backward does 2.5x the forward's
// matmul FLOPs (5 GEMMs against 2). Causal masking is not visible in the trace and is absorbed by the
// fitted attention_fraction.
bool attention_from_shapes(const io::KernelSample& k, Sample& s) {
  const auto& in = k.input_shapes;
  if (in.size() < 2 || in[0].size() < 3 || in[1].size() != in[0].size()) return false;
  const auto& q = in[0];
  const auto& kv = in[1];
  double work = 0;  // B * heads * S_q * S_kv * head_dim
  const std::string op = io::to_lower(k.op);
  if (q.size() == 3) {  // Ascend SBH layout (MindSpeed default): [S, B, heads * head_dim]
    work = q[1] * q[0] * kv[0] * q[2];
  } else if (contains(op, "aten::_flash_attention")) {  // [B, S, heads, head_dim]
    work = q[0] * q[2] * q[1] * kv[1] * q[3];
  } else {  // SDPA and Ascend BNSD: [B, heads, S, head_dim]
    work = q[0] * q[1] * q[2] * kv[2] * q[3];
  }
  const bool backward = contains(op, "grad") || contains(op, "backward") || contains(io::to_lower(k.name), "bwd");
  s.op_flops = 4.0 * work * (backward ? 2.5 : 1.0);
  s.precision = precision_of(type_of(k.input_types, 0));
  s.hbm = tensor_bytes(in, k.input_types) + product(q) * io::dtype_bytes(type_of(k.input_types, 0));
  return s.op_flops > 0;
}

// Vector op: one operation per element of its largest tensor, HBM traffic = inputs + outputs (outputs
// as recorded by Ascend; on GPUs one output the size of the largest input, the elementwise case).
bool vector_from_shapes(const io::KernelSample& k, Sample& s) {
  double largest = 0;
  bytes largest_bytes = 0;
  for (std::size_t i = 0; i < k.input_shapes.size(); ++i) {
    if (k.input_shapes[i].empty()) continue;
    const double e = product(k.input_shapes[i]);
    if (e > largest) largest = e, largest_bytes = e * io::dtype_bytes(type_of(k.input_types, i));
  }
  bytes out = 0;
  if (!k.output_shapes.empty()) {
    out = tensor_bytes(k.output_shapes, k.output_types.empty() ? k.input_types : k.output_types);
    for (const auto& o : k.output_shapes)
      if (!o.empty()) largest = std::max(largest, product(o));
  } else {
    out = largest_bytes;
  }
  s.op_flops = largest;
  s.hbm = tensor_bytes(k.input_shapes, k.input_types) + out;
  return s.hbm > 0;
}

Sample classify_one(const io::KernelSample& k, const HardwareProfile& hw, int world_size) {
  Sample s;
  s.name = k.name;
  s.measured = k.duration;
  s.occurrences = k.occurrences;
  std::string name = io::to_lower(k.name);
  const std::string op = io::to_lower(k.op);
  const std::string_view core = k.core;
  if (const auto fb = name.find("fbgemm"); fb != std::string::npos) name.erase(fb, 6);  // a library name, not a GEMM
  const bool has_shapes = std::any_of(k.input_shapes.begin(), k.input_shapes.end(), [](const auto& d) { return !d.empty(); });
  auto unpredictable = [&](OpKind kind, const char* why) {
    s.kind = kind;
    s.predictable = false;
    s.why = why;
    return s;
  };
  if (k.occurrences != 1) {  // aggregated op_statistic rows: classified, not predicted (no shapes)
    s.kind = !k.collective.empty() ? OpKind::collective
             : contains(op, "matmul") ? (contains(op, "group") ? OpKind::grouped_matmul : OpKind::matmul)
             : contains(op, "attention") ? OpKind::attention
             : (core == "AI_VECTOR_CORE" || core == "MIX_AIV") ? OpKind::vector
                                                             : OpKind::other;
    s.why = "aggregated statistics carry no shapes";
    return s;
  }
  // Collectives.
  const bool deep_ep = contains(name, "dpsk::ep") || contains(name, "deep_ep") || contains(name, "deepep");
  if (!k.collective.empty() || contains(name, "nccl") || contains(name, "hcom_") || core == "HCCL" || deep_ep) {
    s.kind = OpKind::collective;
    s.excludes_peer_wait = k.excludes_peer_wait;
    const auto kind = collective_kind(!k.collective.empty() ? k.collective : k.name);
    if (!kind) return unpredictable(OpKind::collective, "collective kind not modelled (broadcast, reduce, custom)");
    s.collective = *kind;
    // A send/recv is a pair; other collectives span the recorded group, else (Kineto traces without a
    // group size) the default process group of world_size ranks.
    int n = *kind == comm::CollectiveKind::send_recv ? 2 : k.group_size > 0 ? k.group_size : world_size;
    if (n <= 1) return unpredictable(OpKind::collective, "group size not recorded");
    s.group_size = n;
    if (k.transit_bytes > 0) {  // Ascend communication.json: traffic of this device, time moving it
      if (!(k.transit_time > 0)) return unpredictable(OpKind::collective, "transit time not recorded");
      s.buffer = k.transit_bytes / traffic_fraction(*kind, n);
      s.measured = k.transit_time;
    } else if (k.message_elements > 0) {  // Kineto NCCL kernel args
      s.buffer = k.message_elements * io::dtype_bytes(k.message_type);
    } else if (has_shapes) {  // the launching c10d op: its largest tensor is the buffer
      for (std::size_t i = 0; i < k.input_shapes.size(); ++i)
        if (!k.input_shapes[i].empty())
          s.buffer = std::max(s.buffer, product(k.input_shapes[i]) * io::dtype_bytes(type_of(k.input_types, i)));
    }
    if (s.buffer <= 0) return unpredictable(OpKind::collective, "message size not recorded");
    // RDMA traffic crosses nodes: one member per innermost domain.
    const bool scale_out = k.transport == "RDMA" && hw.tiers.size() > 1;
    const comm::GroupPlacement g{n, scale_out && n <= hw.tiers[0].size ? hw.tiers[0].size : 1};
    s.group_stride = g.stride;
    const auto levels = comm::group_levels(g, hw.tiers);
    s.outer_tier = levels.empty() ? -1 : levels.back().tier;
    s.predictable = true;
    return s;
  }
  // Compute ops.
  const bool ascend = !core.empty();
  if (ascend) {
    if (core == "AI_CPU" || core == "DSA_SQE" || contains(op, "conv")) return unpredictable(OpKind::other, "not modelled");
    if (contains(op, "groupedmatmul")) {
      s.kind = OpKind::grouped_matmul;
      if (!gemm_from_ascend(k, s, true)) return unpredictable(s.kind, "shapes not recorded or not ND");
    } else if (contains(op, "matmul")) {
      s.kind = OpKind::matmul;
      if (!gemm_from_ascend(k, s, false)) return unpredictable(s.kind, "shapes not recorded or not ND");
    } else if (contains(op, "attention")) {
      s.kind = OpKind::attention;
      if (!attention_from_shapes(k, s)) return unpredictable(s.kind, "shapes not recorded");
    } else {
      s.kind = OpKind::vector;
      if (!vector_from_shapes(k, s)) return unpredictable(s.kind, "shapes not recorded");
    }
    s.predictable = true;
    return s;
  }
  if (contains(op, "conv") || contains(name, "conv") || contains(name, "cudnn")) return unpredictable(OpKind::other, "not modelled");
  if (contains(name, "grouped_gemm") || contains(name, "grouped_mm") || contains(name, "groupedgemm")) {
    return unpredictable(OpKind::grouped_matmul, "shapes not recorded");
  }
  if (contains(name, "flash") || contains(name, "fmha") || contains(name, "attn") || contains(op, "attention")) {
    s.kind = OpKind::attention;
    if (!has_shapes || !attention_from_shapes(k, s)) return unpredictable(s.kind, "shapes not recorded");
    s.predictable = true;
    return s;
  }
  // `nvjet_*` is what recent cuBLAS names its Hopper (wgmma) GEMM kernels, e.g. `nvjet_sm90_hss_320x128..`
  // (GindaChen/nsys-ai PR #582, which added it to that tool's tensor-core kernel patterns).
  const bool gemm_kernel = contains(name, "gemm") || contains(name, "gemv") || contains(name, "xmma") ||
                           contains(name, "cutlass") || contains(name, "cublas") || contains(name, "nvjet");
  if (gemm_kernel || is_matmul_op(k.op)) {
    s.kind = gemm_kernel ? OpKind::matmul : OpKind::vector;  // a matmul op's non-GEMM kernels: bias, split-K reduce
    if (gemm_kernel) {
      if (!is_matmul_op(k.op) || !gemm_from_aten(k, s)) return unpredictable(s.kind, "shapes not recorded");
      s.path = gemm_path(name, s);
      if (s.path == GemmPath::tf32 || s.path == GemmPath::simt) s.tile = tile_from_name(name);
      if (s.path == GemmPath::tf32) s.alignment = alignment_from_name(name);
      if (s.path == GemmPath::simt) s.layout = layout_from_name(name);
      s.predictable = true;
      return s;
    }
  }
  s.kind = OpKind::vector;
  // Lookups read the rows their indices select, not the whole table the shapes show.
  for (const char* lookup : {"embedding", "index_select", "gather", "scatter", "index_add", "index_put", "take"})
    if (contains(op, lookup) || contains(name, lookup)) return unpredictable(s.kind, "traffic depends on the indices");
  if (!has_shapes || !vector_from_shapes(k, s)) return unpredictable(s.kind, "shapes not recorded");
  s.predictable = true;
  return s;
}

}  // namespace

int align_collectives(std::vector<io::Trace>& ranks) {
  if (ranks.size() < 2) return 0;
  auto collectives = [](io::Trace& t) {
    std::vector<io::KernelSample*> out;
    for (auto& k : t.kernels)
      if (!k.collective.empty() || io::to_lower(k.name).find("nccl") != std::string::npos) out.push_back(&k);
    std::sort(out.begin(), out.end(), [](const auto* a, const auto* b) { return a->start_us < b->start_us; });
    return out;
  };
  std::vector<std::vector<io::KernelSample*>> per_rank;
  for (io::Trace& t : ranks) {
    if (t.format != io::TraceFormat::chrome_json || t.world_size != static_cast<int>(ranks.size())) return 0;
    per_rank.push_back(collectives(t));
    if (per_rank.back().size() != per_rank.front().size()) return 0;
  }
  const std::size_t n = per_rank.front().size();
  for (std::size_t i = 0; i < n; ++i)
    for (const auto& r : per_rank)
      if (r[i]->name != per_rank.front()[i]->name) return 0;
  for (std::size_t i = 0; i < n; ++i) {
    seconds shortest = per_rank.front()[i]->duration;
    for (const auto& r : per_rank) shortest = std::min(shortest, r[i]->duration);
    // The wait comes first, the transfer once the last rank has arrived: each rank keeps the end of its span.
    for (auto& r : per_rank) {
      r[i]->start_us += (r[i]->duration - shortest) * 1e6;
      r[i]->duration = shortest;
      r[i]->excludes_peer_wait = true;
    }
  }
  return static_cast<int>(n);
}

namespace {

// A kernel's span on the device timeline (us).
struct Span {
  double start_us, end_us;
};

// Adds to each compute sample the time its kernels ran beside a collective kernel: the overlap of each
// compute kernel's span with the union of the collectives' spans. Collectives run on their own streams
// (NCCL's, HCCL's), so an overlap in time is concurrency on the device.
void add_time_beside_collectives(std::vector<Span> collectives, const std::vector<std::pair<Span, std::size_t>>& compute,
                                 std::vector<Sample>& samples) {
  if (collectives.empty()) return;
  std::sort(collectives.begin(), collectives.end(), [](const Span& a, const Span& b) { return a.start_us < b.start_us; });
  std::vector<Span> merged;  // disjoint, sorted
  for (const Span& c : collectives) {
    if (!merged.empty() && c.start_us <= merged.back().end_us) {
      merged.back().end_us = std::max(merged.back().end_us, c.end_us);
    } else {
      merged.push_back(c);
    }
  }
  for (const auto& [span, sample] : compute) {
    auto it = std::upper_bound(merged.begin(), merged.end(), span.start_us, [](double t, const Span& m) { return t < m.end_us; });
    double overlap_us = 0;
    for (; it != merged.end() && it->start_us < span.end_us; ++it)
      overlap_us += std::min(it->end_us, span.end_us) - std::max(it->start_us, span.start_us);
    samples[sample].beside_collective += overlap_us * 1e-6;
  }
}

}  // namespace

std::vector<Sample> classify(const io::Trace& trace, const HardwareProfile& hw) {
  std::vector<Sample> out;
  out.reserve(trace.kernels.size());
  std::unordered_map<long long, std::size_t> by_launch;  // launching op -> its sample
  std::vector<Span> collectives;
  std::vector<std::pair<Span, std::size_t>> compute;  // each compute kernel's span and its sample
  auto rank = [](const Sample& s) { return s.kind == OpKind::vector ? 0 : 1; };  // the op's GEMM/attention kernel names it
  for (const io::KernelSample& k : trace.kernels) {
    Sample s = classify_one(k, hw, trace.world_size);
    const Span span{k.start_us, k.start_us + k.duration * 1e6};
    if (s.kind == OpKind::collective) {
      collectives.push_back(span);
    } else if (s.kind != OpKind::other) {
      compute.push_back({span, out.size()});  // the sample it starts; a merged kernel's index is corrected below
    }
    const bool mergeable = k.launch_id >= 0 && !k.input_shapes.empty() && s.kind != OpKind::collective && s.kind != OpKind::other;
    if (!mergeable) {
      out.push_back(std::move(s));
      continue;
    }
    const auto [it, first] = by_launch.try_emplace(k.launch_id, out.size());
    if (first) {
      out.push_back(std::move(s));
      continue;
    }
    compute.back().second = it->second;
    Sample& merged = out[it->second];
    const seconds total = merged.measured + s.measured;
    const int launches = merged.launches + 1;
    if (rank(s) > rank(merged)) merged = std::move(s);
    merged.measured = total;
    merged.launches = launches;
  }
  add_time_beside_collectives(std::move(collectives), compute, out);
  return out;
}

namespace {

// The device with peak_fraction 1: for kernels whose fitted rate is already the achieved one.
DeviceSpec at_own_rate(DeviceSpec d) {
  d.matrix.peak_fraction = 1;
  return d;
}

// A matrix-vector product (GemmPath::gemv): no threadblock tile, so none of a tiled GEMM's fixed cost of
// filling and draining its software pipeline (the prologue loading the first K stages and the epilogue
// writing the tile, CUTLASS docs/efficient_gemm.md "Software pipelining"; F_half of the saturation curve);
// it streams its operands once (NVIDIA "Matrix Multiplication Background" user's guide: matrix-vector
// products are memory-bound) and then reduces partial sums, a fixed cost of its own (gemv_fixed_cost).
seconds gemv_time(const Sample& s, const DeviceSpec& d) {
  return compute::roofline(s.gemm.flop_count(), s.hbm, gemm_rate(s, d), 1.0, d).time + d.gemv_fixed_cost;
}

// Time of a compute sample had it run alone on the device.
seconds predict_alone(const Sample& s, const HardwareProfile& hw) {
  const DeviceSpec& d = hw.device;
  const seconds extra_launches = (s.launches - 1) * d.launch_overhead;  // the cost models charge one per op
  switch (s.kind) {
    case OpKind::matmul:
      // Replayed kernels off the simulator's tensor-core path: their own tile and rate (TF32, CUDA-core
      // FP32); a matrix-vector product on no tile (gemv_time). Their rate is what
      // their main loop achieves (fitted per path, at most the datasheet peak), so the tensor-core GEMM
      // efficiency peak_fraction (fitted to BF16 training runs) does not scale it again.
      if (s.path == GemmPath::gemv) return gemv_time(s, d) + extra_launches;
      if (s.path != GemmPath::tensor_core)
        return compute::kernel_gemm_time(s.gemm, s.tile, s.hbm, gemm_rate(s, d), at_own_rate(d)).time + extra_launches;
      [[fallthrough]];
    case OpKind::grouped_matmul:
      return compute::gemm_time(s.gemm, s.hbm, matrix_peak(s.precision, d), d, s.kind == OpKind::grouped_matmul).time +
             extra_launches;
    case OpKind::attention:
      return compute::attention_time(s.op_flops, s.hbm, matrix_peak(s.precision, d), d).time + extra_launches;
    case OpKind::vector: return compute::vector_time(s.op_flops, s.hbm, d).time + extra_launches;
    case OpKind::collective:
    case OpKind::other: break;
  }
  return 0;
}

}  // namespace

double fraction_beside_collective(const Sample& s) { return s.measured > 0 ? std::min(1.0, s.beside_collective / s.measured) : 0; }

seconds predict(const Sample& s, const HardwareProfile& hw) {
  if (s.kind == OpKind::collective)
    return comm::collective_time(s.collective, s.buffer, {s.group_size, s.group_stride}, hw.tiers).time;
  // A collective kernel beside a compute kernel holds SMs (NCCL runs its reductions and copies on SMs)
  // and HBM bandwidth: the compute kernel is slowed for the time they share the device, as the simulator
  // charges comm_compute_slowdown per second of communication hidden behind compute.
  return predict_alone(s, hw) * (1.0 + hw.device.comm_compute_slowdown * fraction_beside_collective(s));
}

namespace {

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const std::size_t lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

double abs_error_pct(seconds predicted, seconds measured) { return std::abs(predicted - measured) / measured * 100.0; }

bool scored(const Sample& s) { return s.predictable && s.measured > 0; }

}  // namespace

ReplayReport replay(const std::vector<Sample>& samples, const HardwareProfile& hw) {
  ReplayReport r;
  std::map<OpKind, std::vector<double>> errors;
  for (const Sample& s : samples) {
    r.kernels += 1;
    r.all_kernels_measured += s.measured * s.occurrences;
    KindError& k = r.kinds[s.kind];
    k.recognised += 1;
    if (!scored(s)) continue;
    const seconds p = predict(s, hw);
    k.count += 1;
    k.measured += s.measured;
    k.predicted += p;
    errors[s.kind].push_back(abs_error_pct(p, s.measured));
    r.predicted_kernels += 1;
    r.measured_total += s.measured;
    r.predicted_total += p;
  }
  for (auto& [kind, e] : errors) {
    r.kinds[kind].median_abs_error_pct = percentile(e, 0.5);
    r.kinds[kind].p90_abs_error_pct = percentile(e, 0.9);
  }
  return r;
}

nlohmann::json to_json(const ReplayReport& r) {
  nlohmann::json kinds = nlohmann::json::object();
  for (OpKind k : reported_kinds) {
    const auto it = r.kinds.find(k);
    const int n = it == r.kinds.end() ? 0 : it->second.count;
    nlohmann::json e = {{"count", n}};
    e["median_abs_error_pct"] = n > 0 ? nlohmann::json(it->second.median_abs_error_pct) : nlohmann::json(nullptr);
    e["p90_abs_error_pct"] = n > 0 ? nlohmann::json(it->second.p90_abs_error_pct) : nlohmann::json(nullptr);
    kinds[to_string(k)] = e;
  }
  return {{"kinds", kinds}, {"total", {{"measured_s", r.measured_total}, {"predicted_s", r.predicted_total}}}};
}

// ------------------------------------------------------------------------------------------------
namespace {

// One observation of a linear model target = a*x1 + b*x2, weighted by 1/measured^2 so the fit
// minimises relative residuals.
struct Row {
  double x1, x2, target, measured;
};

struct LinearFit {
  double a = 0, b = 0;
  bool ok = false;
};

// Weighted least squares for target = a*x1 + b*x2 (normal equations).
LinearFit fit_two(const std::vector<Row>& rows) {
  double s11 = 0, s12 = 0, s22 = 0, t1 = 0, t2 = 0;
  for (const Row& r : rows) {
    const double w = 1.0 / (r.measured * r.measured);
    s11 += w * r.x1 * r.x1;
    s12 += w * r.x1 * r.x2;
    s22 += w * r.x2 * r.x2;
    t1 += w * r.x1 * r.target;
    t2 += w * r.x2 * r.target;
  }
  const double det = s11 * s22 - s12 * s12;
  if (rows.size() < 3 || !(std::abs(det) > 1e-9 * s11 * s22)) return {};
  return {(t1 * s22 - t2 * s12) / det, (s11 * t2 - s12 * t1) / det, true};
}

// Weighted least squares for target = a*x1 (x2 ignored).
double fit_one(const std::vector<Row>& rows) {
  double sxx = 0, sxt = 0;
  for (const Row& r : rows) {
    const double w = 1.0 / (r.measured * r.measured);
    sxx += w * r.x1 * r.x1;
    sxt += w * r.x1 * r.target;
  }
  return sxx > 0 ? sxt / sxx : 0;
}

// Weighted least squares for target = sum_j coef_j * x_j (normal equations, Gaussian elimination with
// partial pivoting); empty when the columns are degenerate.
std::vector<double> least_squares(const std::vector<std::vector<double>>& x, const std::vector<double>& target,
                                  const std::vector<double>& weight) {
  if (x.empty()) return {};
  const std::size_t n = x.front().size();
  std::vector<std::vector<double>> a(n, std::vector<double>(n + 1, 0.0));
  for (std::size_t r = 0; r < x.size(); ++r)
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < n; ++j) a[i][j] += weight[r] * x[r][i] * x[r][j];
      a[i][n] += weight[r] * x[r][i] * target[r];
    }
  for (std::size_t c = 0; c < n; ++c) {
    std::size_t pivot = c;
    for (std::size_t r = c + 1; r < n; ++r)
      if (std::abs(a[r][c]) > std::abs(a[pivot][c])) pivot = r;
    if (!(std::abs(a[pivot][c]) > 0)) return {};  // a column of zeros or a repeated column
    std::swap(a[c], a[pivot]);
    for (std::size_t r = 0; r < n; ++r) {
      if (r == c) continue;
      const double f = a[r][c] / a[c][c];
      for (std::size_t k = c; k <= n; ++k) a[r][k] -= f * a[c][k];
    }
  }
  std::vector<double> coef(n);
  for (std::size_t i = 0; i < n; ++i) coef[i] = a[i][n] / a[i][i];
  return coef;
}

// Weighted least absolute deviations by iteratively reweighted least squares (weights 1 / |e|,
// Schlossmacher 1973): the replay scores median |error|, and kernels slowed by what the trace does not
// show (clock changes, other processes) are outliers that would pull a squared-error fit. Weights
// 1/measured^2 make the deviations relative. Empty when the columns are degenerate.
std::vector<double> least_absolute_deviations(const std::vector<std::vector<double>>& x, const std::vector<double>& target,
                                              const std::vector<double>& weight) {
  std::vector<double> irls(weight), coef;
  for (int iteration = 0; iteration < 20; ++iteration) {
    coef = least_squares(x, target, irls);
    if (coef.empty()) return {};
    for (std::size_t r = 0; r < x.size(); ++r) {
      double predicted = 0;
      for (std::size_t j = 0; j < coef.size(); ++j) predicted += coef[j] * x[r][j];
      irls[r] = weight[r] / std::max(std::abs(target[r] - predicted) * std::sqrt(weight[r]), 1e-3);
    }
  }
  return coef;
}

double weighted_sse(const std::vector<Row>& rows, double a, double b) {
  double sse = 0;
  for (const Row& r : rows) {
    const double e = (r.target - a * r.x1 - b * r.x2) / r.measured;
    sse += e * e;
  }
  return sse;
}

// target = a*x1 + b*x2 with a, b >= 0: the unconstrained solution if it is non-negative, else the
// better of the two one-parameter fits on the boundary (the minimum of a convex problem with one
// bound active). `ok` is false when neither parameter can be fitted.
LinearFit fit_two_non_negative(const std::vector<Row>& rows) {
  const LinearFit free = fit_two(rows);
  if (free.ok && free.a >= 0 && free.b >= 0) return free;
  std::vector<Row> only_b;
  for (const Row& r : rows) only_b.push_back({r.x2, 0, r.target, r.measured});
  const double a = std::max(0.0, fit_one(rows)), b = std::max(0.0, fit_one(only_b));
  const double sse_a = weighted_sse(rows, a, 0), sse_b = weighted_sse(rows, 0, b);
  if (a <= 0 && b <= 0) return {};
  return sse_a <= sse_b ? LinearFit{a, 0, a > 0} : LinearFit{0, b, b > 0};
}

double rms_pct(const std::vector<const Sample*>& group, const HardwareProfile& hw) {
  if (group.empty()) return 0;
  double sum = 0;
  for (const Sample* s : group) {
    const double e = abs_error_pct(predict(*s, hw), s->measured);
    sum += e * e;
  }
  return std::sqrt(sum / static_cast<double>(group.size()));
}

// Tile-quantisation product of a GEMM on the profile's tiles (matrix_efficiency with a unit curve).
double quantisation(const compute::GemmShape& g, const MatrixEfficiency& e) {
  MatrixEfficiency unit = e;
  unit.peak_fraction = 1;
  unit.half_saturation_flops = 0;
  unit.grouped_gemm_factor = 1;
  return compute::matrix_efficiency(g, unit, false);
}

std::vector<const Sample*> select(const std::vector<Sample>& samples, const std::function<bool(const Sample&)>& keep) {
  std::vector<const Sample*> out;
  for (const Sample& s : samples)
    if (scored(s) && keep(s)) out.push_back(&s);
  return out;
}

// The samples as if every compute kernel had run alone: a kernel that shared its span with a collective
// for a fraction f of it is given measured / (1 + slowdown * f), the inverse of predict's charge.
std::vector<Sample> as_if_alone(const std::vector<Sample>& samples, double slowdown) {
  std::vector<Sample> out(samples);
  for (Sample& s : out) {
    s.measured /= 1.0 + slowdown * fraction_beside_collective(s);
    s.beside_collective = 0;
  }
  return out;
}

bool is_half_precision(const Sample& s) { return s.precision != MatrixPrecision::fp32; }

std::string fmt_pct(double before, double after, std::size_t samples) {
  char text[160];
  std::snprintf(text, sizeof text, ": rms residual would go %.1f%% -> %.1f%% over %zu samples", before, after, samples);
  return text;
}

}  // namespace

FitResult fit(const std::vector<Sample>& samples, const HardwareProfile& base) {
  FitResult result{base, {}, {}};
  HardwareProfile& p = result.profile;
  DeviceSpec& d = p.device;
  auto record = [&](const std::string& parameter, double before, double after, const std::vector<const Sample*>& group,
                    const HardwareProfile& before_profile, std::string note) {
    result.values.push_back({parameter, before, after, static_cast<int>(group.size()), rms_pct(group, before_profile),
                             rms_pct(group, p), std::move(note)});
  };
  // Keeps a step's fit only if it lowers the rms relative residual of the samples it was fitted to.
  auto improves = [&](const std::vector<const Sample*>& group, const HardwareProfile& before_profile, const std::string& what) {
    const double before_rms = rms_pct(group, before_profile), after_rms = rms_pct(group, p);
    if (after_rms <= before_rms) return true;
    p = before_profile;
    result.rejected.push_back(what + fmt_pct(before_rms, after_rms, group.size()));
    return false;
  };

  // Steps 1-4 fit the compute samples as if they had run alone (as_if_alone with the slowdown of the
  // previous pass, on a copy of the samples; the first pass takes them as measured), step 5 the slowdown
  // on the samples as measured, given the rates and efficiencies of steps 1-4: alternating least squares
  // of the model predict uses, three passes. A slowdown the traces do not support (step 5 undone) leaves
  // the base profile's value and the first pass's rates.
  auto fit_compute = [&](const std::vector<Sample>& alone) {
    // 1. Launch overhead and HBM efficiency from memory-bound vector ops: t = L + (1/e) * bytes / BW
    //    (the roofline's memory term plus the fixed per-kernel cost; DESIGN.md op-time rule).
    {
      const auto group = select(alone, [&](const Sample& s) {
        return s.kind == OpKind::vector && s.hbm / d.hbm_bandwidth >= s.op_flops / (d.vector_flops * d.vector_efficiency);
      });
      std::vector<Row> rows;
      for (const Sample* s : group) rows.push_back({static_cast<double>(s->launches), s->hbm / d.hbm_bandwidth, s->measured, s->measured});
      LinearFit f = rows.size() >= 3 ? fit_two_non_negative(rows) : LinearFit{};
      if (f.ok && f.b > 0) {
        const HardwareProfile before = p;
        double launch = f.a, inverse_efficiency = f.b;
        if (inverse_efficiency < 1) {  // faster than the datasheet bandwidth: keep efficiency 1, refit L
          inverse_efficiency = 1;
          std::vector<Row> l_rows;
          for (const Row& r : rows) l_rows.push_back({r.x1, 0, r.target - r.x2, r.measured});
          launch = fit_one(l_rows);
        }
        launch = std::max(0.0, launch);
        d.launch_overhead = launch;
        d.hbm_efficiency = 1.0 / inverse_efficiency;
        if (improves(group, before, "launch_overhead and hbm_efficiency from vector ops")) {
        record("device.launch_overhead", before.device.launch_overhead, d.launch_overhead, group, before,
               "intercept of kernel time vs HBM bytes over memory-bound vector ops");
        record("device.hbm_efficiency", before.device.hbm_efficiency, d.hbm_efficiency, group, before,
               "inverse slope of kernel time vs bytes / hbm_bandwidth");
        }
      }
    }

    // 2. Matrix curve from half-precision GEMMs: t - L = (F + F_half) / (peak * q * peak_fraction)
    //    (compute::matrix_efficiency), linear in 1/peak_fraction and F_half/peak_fraction.
    auto compute_bound = [&](const Sample& s) {
      return s.gemm.flop_count() / (matrix_peak(s.precision, d) * compute::matrix_efficiency(s.gemm, d.matrix, false)) >=
             s.hbm / (d.hbm_bandwidth * d.hbm_efficiency);
    };
    auto on_tensor_cores = [](const Sample& s) { return s.kind == OpKind::matmul && s.path == GemmPath::tensor_core; };
    const auto half = select(alone, [&](const Sample& s) { return on_tensor_cores(s) && is_half_precision(s) && compute_bound(s); });
    const auto single = select(alone, [&](const Sample& s) { return on_tensor_cores(s) && !is_half_precision(s) && compute_bound(s); });
    auto gemm_rows = [&](const std::vector<const Sample*>& group, bool include_peak) {
      std::vector<Row> rows;
      for (const Sample* s : group) {
        const double scale = quantisation(s->gemm, d.matrix) * (include_peak ? matrix_peak(s->precision, d) : 1.0);
        rows.push_back({s->gemm.flop_count() / scale, 1.0 / scale, s->measured - s->launches * d.launch_overhead, s->measured});
      }
      return rows;
    };
    if (!half.empty()) {
      const HardwareProfile before = p;
      const std::vector<Row> rows = gemm_rows(half, true);
      LinearFit f = rows.size() >= 3 ? fit_two_non_negative(rows) : LinearFit{};
      double inverse_peak = 0, half_saturation = d.matrix.half_saturation_flops;
      if (f.ok && f.a > 0) {
        inverse_peak = f.a;
        half_saturation = f.b / f.a;
      } else {  // too few distinct sizes: fit peak_fraction with the base saturation point
        std::vector<Row> one;
        for (const Row& r : rows) one.push_back({r.x1 + half_saturation * r.x2, 0, r.target, r.measured});
        inverse_peak = fit_one(one);
      }
      d.matrix.peak_fraction = std::min(1.0, 1.0 / inverse_peak);
      d.matrix.half_saturation_flops = half_saturation;
      if (improves(half, before, "matrix curve from half-precision GEMMs")) {
      record("device.matrix_efficiency.peak_fraction", before.device.matrix.peak_fraction, d.matrix.peak_fraction, half, before,
             "half-precision GEMMs");
      record("device.matrix_efficiency.half_saturation_flops", before.device.matrix.half_saturation_flops,
             d.matrix.half_saturation_flops, half, before, f.ok ? "half-precision GEMMs" : "kept (too few distinct sizes)");
      }
    }
    if (!single.empty()) {  // FP32 GEMM rate (and, without half-precision GEMMs, the saturation point)
      const HardwareProfile before = p;
      const std::vector<Row> rows = gemm_rows(single, false);  // target = (F + F_half) / (P32 * q * pf)
      LinearFit f = half.empty() && rows.size() >= 3 ? fit_two_non_negative(rows) : LinearFit{};
      double rate = 0;
      if (f.ok && f.a > 0) {
        d.matrix.half_saturation_flops = f.b / f.a;
        rate = 1.0 / (f.a * d.matrix.peak_fraction);
      } else {
        std::vector<Row> one;
        for (const Row& r : rows) one.push_back({r.x1 + d.matrix.half_saturation_flops * r.x2, 0, r.target, r.measured});
        rate = 1.0 / (fit_one(one) * d.matrix.peak_fraction);
      }
      d.matrix_fp32 = rate;
      if (improves(single, before, "FP32 GEMM rate")) {
      record("device.matrix_flops.fp32", matrix_peak(MatrixPrecision::fp32, before.device), d.matrix_fp32, single, before,
             "FP32 GEMMs (rate at peak_fraction)");
      if (f.ok)
        record("device.matrix_efficiency.half_saturation_flops", before.device.matrix.half_saturation_flops,
               d.matrix.half_saturation_flops, single, before, "FP32 GEMMs (no half-precision GEMMs in the traces)");
      }
    }

    // 2b. Replayed GPU kernels off the tensor-core path, TF32 and CUDA-core FP32 (GemmPath): t - L =
    //     (F / q + F_half) / rate on the kernel's own tile (compute::kernel_gemm_time at peak_fraction 1),
    //     linear in 1/rate_tf32, 1/rate_tf32_unaligned (unaligned_tf32) and 1/rate_fp32 for a given F_half.
    //     Without half-precision GEMMs to fix the saturation point, F_half is the best of a log-spaced scan
    //     (one shared curve, the rates fitted at each point). Matrix-vector kernels, on no tile, add one more
    //     column: their fixed cost beyond launch and memory roofline (gemv_time), t - L - roofline = c_gemv.
    {
      // Kernels whose measured time exceeds their HBM roofline time are limited by their main loop, not by
      // memory: the ones the rates describe. The measured time, not the base rates, decides: an unaligned
      // kernel the base TF32 rate would call memory-bound can run several times slower than its HBM time.
      auto path_bound = [&](const Sample& s) {
        return s.measured - s.launches * d.launch_overhead >= s.hbm / (d.hbm_bandwidth * d.hbm_efficiency);
      };
      const auto group = select(alone, [&](const Sample& s) {
        return s.kind == OpKind::matmul && (s.path == GemmPath::tf32 || s.path == GemmPath::simt || s.path == GemmPath::gemv) &&
               path_bound(s);
      });
      // Rate columns: TF32 on aligned operands, TF32 on unaligned ones, CUDA-core FP32 without a named
      // layout (gemmSN), CUDA-core FP32 per named layout (nn, nt, tn, tt); then the GEMV fixed cost (seconds,
      // not an inverse rate). A column without samples keeps its value.
      constexpr int columns_count = 8, gemv_column = 7;
      auto column_of = [](const Sample& s) {
        if (s.path == GemmPath::gemv) return gemv_column;
        if (s.path == GemmPath::tf32) return unaligned_tf32(s) ? 1 : 0;
        return s.layout >= 0 ? 3 + s.layout : 2;
      };
      std::array<bool, columns_count> present{};
      for (const Sample* s : group) present[column_of(*s)] = true;
      // A rate is at most what the hardware can reach: TF32 (aligned or not) at most the datasheet TF32
      // peak, CUDA-core FP32 at most the base profile's FP32 rate (the datasheet's where the profile gives it,
      // else half the non-tensor rate, matrix_peak).
      // Few distinct shapes otherwise trade the rate against the fixed cost without bound (one A100 trace:
      // 140 PFLOPS TF32 with F_half = 1 TFLOP, every GEMM a constant).
      const flops_per_second tf32_peak = d.matrix_bf16 / 2, simt_peak = matrix_peak(MatrixPrecision::fp32, base.device);
      // As coefficients: an inverse rate at least 1 / its peak above; the GEMV fixed cost at least 0.
      const std::array<double, columns_count> lowest{1 / tf32_peak, 1 / tf32_peak, 1 / simt_peak, 1 / simt_peak,
                                                     1 / simt_peak, 1 / simt_peak, 1 / simt_peak, 0.0};
      // How far a coefficient falls below its bound, relative to it (1: at zero or below a zero bound).
      auto shortfall = [&](int c, double coef) { return lowest[c] > 0 ? 1 - coef / lowest[c] : coef < 0 ? 1.0 : 0.0; };
      struct RateFit {
        std::array<double, columns_count> inverse_rates{};  // per column (the GEMV column: seconds); 0 where absent
        double sse = 0;
        bool ok = false;
      };
      auto fit_rates = [&](flops half_saturation) {
        MatrixEfficiency curve = at_own_rate(d).matrix;
        curve.half_saturation_flops = half_saturation;
        std::vector<double> work, targets, weights;
        for (const Sample* s : group) {
          if (s->path == GemmPath::gemv) {  // t - (launches - 1) L - gemv_time without its fixed cost = c_gemv
            work.push_back(1.0);
            targets.push_back(s->measured - (s->launches - 1) * d.launch_overhead - (gemv_time(*s, d) - d.gemv_fixed_cost));
          } else {
            work.push_back(compute::kernel_gemm_work(s->gemm, s->tile, curve));
            targets.push_back(s->measured - s->launches * d.launch_overhead);
          }
          weights.push_back(1.0 / (s->measured * s->measured));
        }
        // A column whose free fit would pass its bound is pinned there and the others refitted (the
        // minimum of the constrained problem has that bound active); at most one pin per pass.
        std::array<bool, columns_count> pinned{};
        RateFit f;
        for (int pass = 0; pass <= columns_count; ++pass) {
          std::vector<int> free_columns;
          for (int c = 0; c < columns_count; ++c)
            if (present[c] && !pinned[c]) free_columns.push_back(c);
          std::vector<std::vector<double>> x;
          std::vector<double> rest;  // target less the pinned columns' time
          for (std::size_t r = 0; r < group.size(); ++r) {
            const int c = column_of(*group[r]);
            std::vector<double> row;
            for (int free : free_columns) row.push_back(free == c ? work[r] : 0.0);
            x.push_back(std::move(row));
            rest.push_back(targets[r] - (pinned[c] ? work[r] * lowest[c] : 0.0));
          }
          std::vector<double> coef;
          if (!free_columns.empty()) {
            coef = least_absolute_deviations(x, rest, weights);
            if (coef.empty()) return RateFit{};
          }
          f = {};
          for (int c = 0; c < columns_count; ++c)
            if (pinned[c]) f.inverse_rates[static_cast<std::size_t>(c)] = lowest[c];
          for (std::size_t j = 0; j < free_columns.size(); ++j) f.inverse_rates[static_cast<std::size_t>(free_columns[j])] = coef[j];
          int worst = -1;  // the free column furthest past its bound
          for (int c : free_columns) {
            const double past = shortfall(c, f.inverse_rates[static_cast<std::size_t>(c)]);
            if (past > 0 && (worst < 0 || past > shortfall(worst, f.inverse_rates[static_cast<std::size_t>(worst)]))) worst = c;
          }
          if (worst < 0) break;
          pinned[worst] = true;
        }
        for (std::size_t r = 0; r < group.size(); ++r) {
          const double predicted = f.inverse_rates[static_cast<std::size_t>(column_of(*group[r]))] * work[r];
          f.sse += std::abs(targets[r] - predicted) * std::sqrt(weights[r]);  // sum of |relative residual|
        }
        f.ok = true;
        return f;
      };
      flops half_saturation = d.matrix.half_saturation_flops;
      RateFit best = group.size() >= 3 ? fit_rates(half_saturation) : RateFit{};
      if (half.empty() && group.size() >= 3) {
        for (double f_half = 1e6; f_half <= 1e12; f_half *= std::pow(10.0, 0.125)) {  // 1 MFLOP .. 1 TFLOP, 8 per decade
          const RateFit f = fit_rates(f_half);
          if (f.ok && (!best.ok || f.sse < best.sse)) best = f, half_saturation = f_half;
        }
      }
      if (best.ok) {
        const HardwareProfile before = p;
        const auto rate = [&](int column) { return 1.0 / best.inverse_rates[static_cast<std::size_t>(column)]; };
        if (present[0]) d.matrix_tf32 = rate(0);
        if (present[1]) d.matrix_tf32_unaligned = rate(1);
        if (present[2]) d.matrix_fp32 = rate(2);
        for (int layout = 0; layout < 4; ++layout)
          if (present[3 + layout]) d.matrix_fp32_by_layout[static_cast<std::size_t>(layout)] = rate(3 + layout);
        if (present[gemv_column]) d.gemv_fixed_cost = best.inverse_rates[gemv_column];
        d.matrix.half_saturation_flops = half_saturation;
        if (improves(group, before, "TF32 and CUDA-core FP32 GEMM rates and GEMV fixed cost")) {
          if (present[0])
            record("device.matrix_flops.tf32", tf32_rate(before.device), d.matrix_tf32, group, before,
                   "FP32 GEMM kernels on tensor cores (TF32), each on its named tile");
          if (present[1])
            record("device.matrix_flops.tf32_unaligned", tf32_unaligned_rate(before.device), d.matrix_tf32_unaligned, group, before,
                   "TF32 GEMM kernels on unaligned operands (CUTLASS align1/align2)");
          if (present[2])
            record("device.matrix_flops.fp32", matrix_peak(MatrixPrecision::fp32, before.device), d.matrix_fp32, group, before,
                   "FP32 GEMM kernels on CUDA cores without a named layout (gemmSN)");
          for (std::size_t layout = 0; layout < gemm_layout_names.size(); ++layout)
            if (present[3 + layout])
              record(std::string("device.matrix_flops.fp32_") + gemm_layout_names[layout],
                     before.device.matrix_fp32_by_layout[layout] > 0 ? before.device.matrix_fp32_by_layout[layout]
                                                                     : matrix_peak(MatrixPrecision::fp32, before.device),
                     d.matrix_fp32_by_layout[layout], group, before,
                     std::string("FP32 sgemm kernels of layout ") + gemm_layout_names[layout] + ", each on its named tile");
          if (present[gemv_column])
            record("device.gemv_fixed_cost", before.device.gemv_fixed_cost, d.gemv_fixed_cost, group, before,
                   "matrix-vector kernels (gemv, dot, gemmk1): time beyond launch overhead and memory roofline");
          if (half_saturation != before.device.matrix.half_saturation_flops)
            record("device.matrix_efficiency.half_saturation_flops", before.device.matrix.half_saturation_flops, half_saturation, group,
                   before, "TF32 / FP32 GEMM kernels (no half-precision GEMMs in the traces)");
        }
      } else if (group.size() >= 3) {
        result.rejected.push_back("TF32 and CUDA-core FP32 GEMM rates: no least-squares solution over " +
                                  std::to_string(group.size()) + " kernels");
      }
    }

    // 3. Grouped GEMM factor: t - L = F / (peak * matrix_efficiency without the factor) / factor.
    if (const auto group = select(alone, [](const Sample& s) { return s.kind == OpKind::grouped_matmul; }); !group.empty()) {
      const HardwareProfile before = p;
      std::vector<Row> rows;
      for (const Sample* s : group) {
        const double eff = compute::matrix_efficiency(s->gemm, d.matrix, false);
        rows.push_back({s->gemm.flop_count() / (matrix_peak(s->precision, d) * eff), 0, s->measured - s->launches * d.launch_overhead,
                        s->measured});
      }
      d.matrix.grouped_gemm_factor = std::min(1.0, 1.0 / fit_one(rows));
      if (improves(group, before, "grouped_gemm_factor"))
      record("device.matrix_efficiency.grouped_gemm_factor", before.device.matrix.grouped_gemm_factor,
             d.matrix.grouped_gemm_factor, group, before, "grouped GEMMs");
    }

    // 4. Attention fraction: t - L = F / (peak * peak_fraction * attention_fraction).
    if (const auto group = select(alone, [](const Sample& s) { return s.kind == OpKind::attention; }); !group.empty()) {
      const HardwareProfile before = p;
      std::vector<Row> rows;
      for (const Sample* s : group)
        rows.push_back({s->op_flops / (matrix_peak(s->precision, d) * d.matrix.peak_fraction), 0,
                        s->measured - s->launches * d.launch_overhead, s->measured});
      d.matrix.attention_fraction = std::min(1.0 / d.matrix.peak_fraction, 1.0 / fit_one(rows));
      if (improves(group, before, "attention_fraction"))
      record("device.matrix_efficiency.attention_fraction", before.device.matrix.attention_fraction, d.matrix.attention_fraction,
             group, before, "fused attention kernels");
    }

  };

  // 5. Slowdown of compute kernels beside a collective: t = t_alone * (1 + s * f), f the fraction of the
  //    kernel's span that shared the device with a collective (predict), so t - t_alone = s * (t_alone * f):
  //    one coefficient, by least absolute relative deviations as the GEMM rates. At most 1: a kernel
  //    sharing the SMs with one other kernel keeps at least half of them (a fair share), and at least 0.
  const auto beside = select(samples, [](const Sample& s) { return s.kind != OpKind::collective && s.beside_collective > 0; });
  double slowdown = 0;  // the first pass fits the kernels as measured
  FitResult previous = result;
  for (int pass = 0; pass < 3; ++pass) {
    result = FitResult{base, {}, {}};
    if (beside.size() < 3) {  // no slowdown to fit: the samples as measured
      fit_compute(samples);
      break;
    }
    fit_compute(as_if_alone(samples, slowdown));
    const HardwareProfile before = p;
    std::vector<std::vector<double>> x;
    std::vector<double> targets, weights;
    for (const Sample* s : beside) {
      const seconds alone = predict_alone(*s, p);
      x.push_back({alone * fraction_beside_collective(*s)});
      targets.push_back(s->measured - alone);
      weights.push_back(1.0 / (s->measured * s->measured));
    }
    const auto coef = least_absolute_deviations(x, targets, weights);
    if (!coef.empty()) d.comm_compute_slowdown = std::clamp(coef[0], 0.0, 1.0);
    if (coef.empty() || !improves(beside, before, "comm_compute_slowdown")) {
      if (pass > 0) result = previous;  // the last pass whose slowdown held
      break;
    }
    record("device.comm_compute_slowdown", base.device.comm_compute_slowdown, d.comm_compute_slowdown, beside, before,
           "compute kernels that ran beside a collective kernel, by the fraction of their span they shared");
    slowdown = d.comm_compute_slowdown;
    previous = result;
  }

  // 6. Collectives, innermost tier first: the alpha-beta time is linear in the tier's latency and in
  //    1/(bandwidth * efficiency); the coefficients come from comm::collective_time itself, evaluated
  //    with that tier's latency and bandwidth switched on and off (inner tiers at their fitted values).
  for (std::size_t t = 0; t < p.tiers.size(); ++t) {
    const auto group = select(samples, [&](const Sample& s) {
      return s.kind == OpKind::collective && s.excludes_peer_wait && s.outer_tier == static_cast<int>(t);
    });
    if (group.empty()) continue;
    const HardwareProfile before = p;
    auto time_with = [&](const Sample& s, seconds latency, bytes_per_second bandwidth) {
      std::vector<Tier> tiers = p.tiers;
      tiers[t].latency = latency;
      tiers[t].bandwidth = bandwidth;
      tiers[t].efficiency = 1;
      return comm::collective_time(s.collective, s.buffer, {s.group_size, s.group_stride}, tiers).time;
    };
    constexpr double unlimited = 1e30;  // bytes/s: makes the tier's bandwidth term vanish
    std::vector<Row> rows;
    std::vector<double> sizes;
    for (const Sample* s : group) {
      const seconds rest = time_with(*s, 0, unlimited);
      rows.push_back({time_with(*s, 1, unlimited) - rest, time_with(*s, 0, 1) - rest, s->measured - rest, s->measured});
      sizes.push_back(s->buffer);
    }
    std::sort(sizes.begin(), sizes.end());
    const bool spread = sizes.back() > 4 * sizes.front();  // a latency needs small and large messages
    Tier& tier = p.tiers[t];
    // Bandwidth is identifiable only if some message spends longer on bytes than on latency steps.
    const double base_inverse_bandwidth = 1.0 / (tier.bandwidth * tier.efficiency);
    const bool bandwidth_visible = std::any_of(rows.begin(), rows.end(), [&](const Row& r) {
      return r.x2 * base_inverse_bandwidth > r.x1 * tier.latency;
    });
    LinearFit f = spread && bandwidth_visible ? fit_two_non_negative(rows) : LinearFit{};
    double latency = tier.latency, inverse_bandwidth = 0;
    if (f.ok && f.b > 0) {
      latency = f.a;
      inverse_bandwidth = f.b;
    } else if (!bandwidth_visible) {  // latency-bound messages only: fit the latency, keep the bandwidth
      std::vector<Row> alpha_rows;
      for (const Row& r : rows) alpha_rows.push_back({r.x1, 0, r.target - base_inverse_bandwidth * r.x2, r.measured});
      latency = std::max(0.0, fit_one(alpha_rows));
      inverse_bandwidth = base_inverse_bandwidth;
    } else {
      std::vector<Row> beta_rows;
      for (const Row& r : rows) beta_rows.push_back({r.x2, 0, r.target - latency * r.x1, r.measured});
      inverse_bandwidth = fit_one(beta_rows);
    }
    if (inverse_bandwidth > 0) {
      tier.latency = latency;
      tier.efficiency = std::min(1.0, 1.0 / (inverse_bandwidth * tier.bandwidth));
      const std::string where = "tiers[" + std::to_string(t) + "] (" + tier.name + ")";
      if (!improves(group, before, where + " latency and efficiency")) continue;
      if (f.ok || !bandwidth_visible)
        record(where + ".latency", before.tiers[t].latency, tier.latency, group, before,
               bandwidth_visible ? "collectives on this tier" : "latency-bound collectives on this tier");
      if (bandwidth_visible)
        record(where + ".efficiency", before.tiers[t].efficiency, tier.efficiency, group, before,
               spread ? "collectives on this tier" : "collectives on this tier (one message size: latency kept)");
    }
  }
  return result;
}

}  // namespace moesim::calibrate
