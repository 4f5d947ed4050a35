#pragma once
// Shared by the simulation tests: one model/layout/hardware triple, simulated after the layout check.
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include "costmodels/graph.h"
#include "costmodels/layout.h"
#include "sim/io/input_error.h"
#include "sim/engine/simulate.h"

namespace moesim::test {

struct Run {
  ModelSpec model;
  LayoutSpec layout;
  HardwareProfile hw;
};

inline sim::SimulationResult simulate(Run r) {
  if (auto err = complete_and_check_layout(r.model, r.layout)) FAIL("layout rejected: " << *err);
  return sim::simulate(r.model, r.layout, r.hw);
}

// One decoder layer's graph on one device: `seq` tokens per sequence split over cp, heads over tp.
inline graph::LayerGraph layer_graph(const ModelSpec& m, graph::LayerKind kind, AttentionSpan span, double seq,
                                     int tp = 1, int cp = 1) {
  graph::GraphContext ctx;
  ctx.seq_len = seq;
  ctx.tokens = seq / cp;
  ctx.tp = tp;
  ctx.cp = cp;
  return graph::build_layer(m, ctx, kind, span);
}

// The model's op graphs under a layout.
inline graph::ModelGraphs graphs_of(const ModelSpec& m, const LayoutSpec& l) {
  return graph::build_model_graphs(m, graph::make_context(m, l));
}

// The op of a layer graph with this name (a failed test where there is none).
inline const graph::Op& op_named(const graph::LayerGraph& g, const char* name) {
  for (const graph::Op& op : g.forward)
    if (std::string_view(op.name) == name) return op;
  FAIL("no op " << name);
  return g.forward.front();
}

// Mean absolute value of relative errors (the kernel-table tests' summary).
inline double mean_abs(const std::vector<double>& errors) {
  double s = 0;
  for (double e : errors) s += std::abs(e);
  return s / static_cast<double>(errors.size());
}

// A layout with expert TP 1 and sequence parallelism whenever TP > 1; seq_len 0 takes the model's.
inline LayoutSpec make_layout(int devices, int tp, int pp, int ep, int global_batch, int seq_len = 0) {
  LayoutSpec l;
  l.devices = devices;
  l.tp = tp;
  l.etp = 1;
  l.pp = pp;
  l.ep = ep;
  l.sequence_parallel = tp > 1;
  l.global_batch = global_batch;
  l.seq_len = seq_len;
  return l;
}

// Runs `f`, which must throw InputError; returns the message (empty and a failed check otherwise).
template <class F>
std::string input_error(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL_CHECK("threw a " << typeid(e).name() << " instead of InputError: " << e.what());
    return "";
  }
  FAIL_CHECK("did not throw");
  return "";
}

// The message is one line naming the file and the field.
inline void check_names(const std::string& message, const std::string& file, const std::string& field) {
  INFO("message: " << message);
  CHECK(message.find(file) != std::string::npos);
  CHECK(message.find(field) != std::string::npos);
  CHECK(message.find('\n') == std::string::npos);  // one line
}

}  // namespace moesim::test
