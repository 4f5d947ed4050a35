#pragma once
// PreMoe expert pruning (Pei et al., "PreMoe: Lightening MoEs on Constrained Memory by Expert Pruning and
// Retrieval", arXiv 2505.17639; code github.com/JarvisPei/PreMoe @22780f1; notes in
// ../shared/reference/premoe.md). Pure math: expert importance from router outputs (TCESS), keep-top-M
// pruning (PEP) and nearest-task retrieval (TAER). No I/O.
//
// Notation, per MoE layer: a task T has N_T tokens; token t has router logits s_t over E experts.
//   K_t  = TopK_k(s_t): the k largest logits (ties: lower expert index first).
//   q_t,j = exp(s_t,j) / sum_{i in K_t} exp(s_t,i) for j in K_t: the token's confidence in j among its top-k.
//   S_t  = K_t if the threshold r is off (r < 0), else { j in K_t : q_t,j >= r } ("high-confidence" filter).
//
// Two scores (both are means over all task tokens, so tasks with different token counts compare):
//   expected_probability (the paper's TCESS as the issue states it: the expected routing probability of
//     the expert among the token's top-k over the task's tokens, with the optional threshold r):
//       TCESS_e = (1/N_T) sum_t 1[e in S_t] p_t,e,   p_t = softmax(s_t) over all E experts.
//     With r off this is the statistic DeepSeek's ESFT publishes as `gate_scores` (verified on
//     ../shared/routing/esft-deepseek-v2-lite-tasks). The paper body was not retrievable (premoe.md §0),
//     so this follows the wording, not a checked equation.
//   top_logit (the released code, collect_utils.py build_logits_permutations, premoe.md §1.3):
//       TCESS_e = (1/N_T) sum_t 1[e in S_t] s_t,e   (raw signed logits; shipped defaults k = 1, r off).
#include <span>
#include <string>
#include <vector>

namespace moesim::premoe {

enum class ScoreRule { expected_probability, top_logit };

struct ScoreOptions {
  ScoreRule rule = ScoreRule::expected_probability;
  int top_k = 1;           // k of K_t
  double threshold = -1;   // r; negative = off
};

// Numerically stable softmax (max subtracted before exp).
std::vector<double> softmax(std::span<const double> logits);

// Indices of the k largest values, largest first; ties go to the lower index. k is clamped to the size.
std::vector<int> top_k_indices(std::span<const double> values, int k);

// Running TCESS of one MoE layer: add tokens one at a time (or accumulate another task's sums to merge
// tasks), then read the mean.
class ScoreAccumulator {
 public:
  ScoreAccumulator(int experts, ScoreOptions options);

  // One token's router logits (E values).
  void add_logits(std::span<const double> logits);
  // One token given as its routed top-k: expert ids and their probabilities p_t,j (softmax over all E,
  // as routers with softmax gates report them). Only expected_probability can be computed from these.
  void add_top_k(std::span<const int> experts, std::span<const double> probabilities);

  int experts() const { return static_cast<int>(sums_.size()); }
  double tokens() const { return tokens_; }
  const ScoreOptions& options() const { return options_; }
  std::vector<double> scores() const;  // sums / tokens (zeros before any token)

 private:
  void credit(std::span<const int> chosen, std::span<const double> confidence_logits,
              std::span<const double> credit_values);
  ScoreOptions options_;
  std::vector<double> sums_;
  double tokens_ = 0;
};

// Experts of one layer in descending score order (ties: lower index first); keeping M = the first M.
// PEP keeps the same M in every layer (premoe.md §1.4).
std::vector<int> rank_experts(std::span<const double> scores);
std::vector<int> keep_top(std::span<const double> scores, int keep);

// Share of a layer's total score that the kept experts carry (for non-negative scores: the routed
// probability mass the pruned layer still serves). 0 when the total is 0.
double kept_share(std::span<const double> scores, std::span<const int> kept);

// TAER (premoe.md §1.5): squared-L2 nearest stored key to a query vector (FAISS IndexFlatL2, k = 1).
struct Match {
  int index = -1;
  double squared_distance = 0;
};
Match nearest_key(const std::vector<std::vector<double>>& keys, std::span<const double> query);

// A task's pattern: per MoE layer, the experts in descending importance and (where known) their
// scores. PreMoe's shipped patterns carry scores only for the first MoE layer and rank orders for the
// others (premoe.md §1.4), so `scores` may be empty; `order` never is.
struct LayerPattern {
  int layer = 0;               // decoder-layer index (DeepSeek-V3/R1: MoE layers 3..60)
  std::vector<double> scores;  // TCESS per expert, or empty
  std::vector<int> order;      // all experts, most important first
};

struct TaskPattern {
  std::string task;
  int experts = 0;             // routed experts per layer
  double tokens = 0;           // tokens the scores average over (0 when unknown)
  ScoreOptions options;
  std::vector<LayerPattern> layers;  // ascending layer index
};

// A pruned model: per MoE layer the kept experts in rank order (PEP re-indexes them 0..M-1 in this order)
// and the experts each token activates among them.
struct PrunedLayer {
  int layer = 0;
  std::vector<int> experts;
};
struct PrunedModel {
  std::string task;
  int experts = 0;  // routed experts per layer before pruning
  int top_k = 0;
  std::vector<PrunedLayer> layers;
};

// PEP: keep the first `keep` experts of every layer's order; tokens then route to `top_k` of them.
PrunedModel prune(const TaskPattern& pattern, int keep, int top_k);

const char* to_string(ScoreRule rule);

}  // namespace moesim::premoe
