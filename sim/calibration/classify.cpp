// Classification of profiler kernels into the samples the cost models predict (classify and
// align_collectives in calibrate.h): kind, GEMM shape and path, attention and vector work, collective size.
#include "sim/calibration/calibrate.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <numeric>
#include <optional>
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

// is_collective with the kernel's name already in lower case (classify_one has it so).
bool is_collective_lower(const io::KernelSample& k, std::string_view name) {
  const bool deep_ep = contains(name, "dpsk::ep") || contains(name, "deep_ep") || contains(name, "deepep");
  return !k.collective.empty() || contains(name, "nccl") || contains(name, "hcom_") || k.core == "HCCL" || deep_ep;
}

}  // namespace

bool is_collective(const io::KernelSample& k) { return is_collective_lower(k, io::to_lower(k.name)); }

namespace {

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
  if (is_collective_lower(k, name)) {
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

// Adds to each compute sample the time its kernels ran beside a collective kernel: the overlap of each
// compute kernel's span with the union of the collectives' spans. Collectives run on their own streams
// (NCCL's, HCCL's), so an overlap in time is concurrency on the device.
void add_time_beside_collectives(std::vector<sim::Interval> collectives,
                                 const std::vector<std::pair<sim::Interval, std::size_t>>& compute, std::vector<Sample>& samples) {
  if (collectives.empty()) return;
  const std::vector<sim::Interval> busy = sim::merged(std::move(collectives));
  for (const auto& [span, sample] : compute) samples[sample].beside_collective += sim::covered(busy, span);
}

}  // namespace

std::vector<Sample> classify(const io::Trace& trace, const HardwareProfile& hw) {
  std::vector<Sample> out;
  out.reserve(trace.kernels.size());
  std::unordered_map<long long, std::size_t> by_launch;  // launching op -> its sample
  std::vector<sim::Interval> collectives;
  std::vector<std::pair<sim::Interval, std::size_t>> compute;  // each compute kernel's span and its sample
  auto rank = [](const Sample& s) { return s.kind == OpKind::vector ? 0 : 1; };  // the op's GEMM/attention kernel names it
  const double origin_us = trace.kernels.empty() ? 0.0 : trace.kernels.front().start_us;
  for (const io::KernelSample& k : trace.kernels) {
    Sample s = classify_one(k, hw, trace.world_size);
    const sim::Interval span = kernel_span(k, origin_us);
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

}  // namespace moesim::calibrate
