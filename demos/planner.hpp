// Deployment planner after MegaScale-Infer's Algorithm 1, reduced to its core: sweep attention replicas
// n_a and micro-batches m through the pipeline model and rank the plans by decoding throughput per GPU.
#pragma once
#include <vector>

#include "demos/scenario.hpp"

namespace demos {

struct PlanPoint {
    int na = 1, m = 1;
    double total_ms = 0;              // simulated iteration time for the global batch B
    double tokens_per_s_per_gpu = 0;  // B / Ttotal / (n_a + E): one GPU per attention replica and per expert
    bool hidden = false;              // communication hidden (PipelineSummary::comm_hidden)
    double ta_ms = 0, te_ms = 0, tc_ms = 0;  // the stage times behind it, to show why it ranks where it does
};

constexpr int kPlanMaxReplicas = 16;
constexpr int kPlanMaxMicroBatches = 8;

// Every (n_a, m) with n_a in 1..16 and m in 1..8, n_a-major. The scenario's other fields are kept; its
// attention_replicas and micro_batches are replaced. Direct ta/te/tc times, when given, stay fixed
// across the sweep, so only the linear cost forms make n_a matter.
std::vector<PlanPoint> plan_sweep(const Scenario& s);

// The plan with the highest throughput per GPU; ties go to fewer GPUs, then fewer micro-batches.
// Throws BadInput on an empty list.
PlanPoint best_plan(const std::vector<PlanPoint>& plans);
PlanPoint best_plan(const Scenario& s);

// Constraint 1 of the paper: n_a ≈ k1·E / (k3·K) balances Ta and Te (ignoring the constant terms).
double balanced_replicas(const Scenario& s);

}  // namespace demos
