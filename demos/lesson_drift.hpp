// The load-drift experiment (lesson "load-drift"): how much the experts' loads move from one batch to the next in
// decode and in prefill, counted from the engine's router, and what that means for a planner that places copies of
// the hot experts from one batch's loads and keeps the placement for the next (MegaScale-Infer, Section 8).
//
// The workload is modelled: every sequence has a topic, and a topic favours a few experts on top of the scenario's
// skew (its logits gain log(kTopicBias) there). A decode batch holds one token from each of T running sequences,
// most of them the same from one step to the next; a prefill batch holds the same T tokens from a few prompts.
// The router is the engine's own (moe::route: popularity logits with Gumbel noise, softmax, top-k), so the loads are
// counted, not drawn from a formula.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "demos/experiments.hpp"

namespace demos {

struct DriftWorkload {
    int steps = 8;     // consecutive batches of each kind
    int prompts = 4;   // prompts per prefill batch (each tokens/prompts long)
    int topics = 16;   // topics a sequence may have
    double bias = 8;   // how much more often a topic's favourite experts are picked
    int decode_length = 64;  // steps a decode sequence runs before another takes its slot
};

// The loads (kept tokens per expert) of `steps` consecutive batches of one kind, from the engine's router.
std::vector<std::vector<std::int64_t>> drift_loads(const Scenario& s, const DriftWorkload& w, bool prefill);

// Half the L1 distance between two load vectors' shares: 0 when the experts' shares are equal, 1 when disjoint.
double load_shift(const std::vector<std::int64_t>& a, const std::vector<std::int64_t>& b);

// Runs the experiment on a finished run (its scenario); params: steps, prompts, copies.
void run_load_drift(const Result& r, ExperimentResult& x, const std::map<std::string, double>& params);
const std::vector<ExperimentMetric>& load_drift_metrics();

}  // namespace demos
