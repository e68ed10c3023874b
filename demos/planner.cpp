// Deployment planner: sweeps (n_a, m) through the ping-pong pipeline model and ranks the plans by
// throughput per GPU, the homogeneous form of the paper's objective (B/Ttotal)/(n_a·Cost_a + E·Cost_e).
#include "demos/planner.hpp"

#include "demos/pipeline.hpp"
#include "kernels/common/error.hpp"

namespace demos {

std::vector<PlanPoint> plan_sweep(const Scenario& s) {
    std::vector<PlanPoint> out;
    out.reserve(kPlanMaxReplicas * kPlanMaxMicroBatches);
    Scenario v = s;
    for (int na = 1; na <= kPlanMaxReplicas; ++na) {
        for (int m = 1; m <= kPlanMaxMicroBatches; ++m) {
            v.attention_replicas = na;
            v.micro_batches = m;
            const PipelineInput in = pipeline_input(v);
            const PipelineSummary sum = simulate_pipeline(in, nullptr);
            PlanPoint p;
            p.na = na;
            p.m = m;
            p.total_ms = sum.total_ms;
            const double gpus = static_cast<double>(na) + s.experts;
            // B tokens leave per iteration (one decoding step for each sequence of the global batch).
            p.tokens_per_s_per_gpu =
                sum.total_ms > 0 ? static_cast<double>(s.tokens) / (sum.total_ms * 1e-3) / gpus : 0.0;
            p.hidden = sum.comm_hidden;
            p.ta_ms = in.ta_ms;
            p.te_ms = in.te_ms;
            p.tc_ms = in.tc_ms;
            out.push_back(p);
        }
    }
    return out;
}

PlanPoint best_plan(const std::vector<PlanPoint>& plans) {
    if (plans.empty()) MOE_BAD_INPUT("planner: no plans to choose from");
    const PlanPoint* best = &plans.front();
    for (const PlanPoint& p : plans) {
        // A relative margin, so that rounding in the simulated times cannot flip an exact tie.
        const double a = p.tokens_per_s_per_gpu, b = best->tokens_per_s_per_gpu;
        if (a > b * (1 + 1e-12)) {
            best = &p;
        } else if (a >= b * (1 - 1e-12) && (p.na < best->na || (p.na == best->na && p.m < best->m))) {
            best = &p;
        }
    }
    return *best;
}

PlanPoint best_plan(const Scenario& s) { return best_plan(plan_sweep(s)); }

double balanced_replicas(const Scenario& s) {
    if (!(s.k3 > 0) || s.top_k < 1) MOE_BAD_INPUT("planner: balance rule needs k3 > 0 and top_k ≥ 1");
    return s.k1 * s.experts / (s.k3 * s.top_k);
}

}  // namespace demos
