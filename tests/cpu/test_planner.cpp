// The deployment planner: its sweep, its throughput-per-GPU arithmetic, and the paper's balance rule
// (Constraint 1, n_a ≈ k1·E/(k3·K)) recovered as the best plan on hand-picked examples.
#include <gtest/gtest.h>

#include <cmath>

#include "demos/pipeline.hpp"
#include "demos/planner.hpp"
#include "kernels/common/error.hpp"

namespace {

// Large B and small constant terms, so that the slopes k1, k3 dominate Ta and Te and the balance rule
// is sharp; a fast link keeps communication hidden from m = 3 on.
demos::Scenario balance_example(double k1, double k3, int experts, int top_k) {
    demos::Scenario s;
    s.tokens = 65536;
    s.experts = experts;
    s.top_k = top_k;
    s.hidden = 1024;
    s.dtype = "bf16";
    s.layers = 4;
    s.link_gbps = 400;
    s.k1 = k1, s.k2 = 10, s.k3 = k3, s.k4 = 10;
    s.ta_ms = s.te_ms = s.tc_ms = -1;
    return s;
}

TEST(Planner, SweepCoversGridWithThroughputPerGpu) {
    const demos::Scenario s = balance_example(0.05, 0.08, 16, 2);
    const std::vector<demos::PlanPoint> plans = demos::plan_sweep(s);
    ASSERT_EQ(plans.size(), static_cast<std::size_t>(demos::kPlanMaxReplicas * demos::kPlanMaxMicroBatches));
    for (std::size_t j = 0; j < plans.size(); ++j) {
        const demos::PlanPoint& p = plans[j];
        EXPECT_EQ(p.na, 1 + static_cast<int>(j) / demos::kPlanMaxMicroBatches);
        EXPECT_EQ(p.m, 1 + static_cast<int>(j) % demos::kPlanMaxMicroBatches);
        // The same point through the pipeline model directly.
        demos::Scenario v = s;
        v.attention_replicas = p.na;
        v.micro_batches = p.m;
        const demos::PipelineSummary sum = demos::simulate_pipeline(demos::pipeline_input(v), nullptr);
        EXPECT_DOUBLE_EQ(p.total_ms, sum.total_ms);
        EXPECT_EQ(p.hidden, sum.comm_hidden);
        EXPECT_NEAR(p.tokens_per_s_per_gpu, 65536.0 / (sum.total_ms * 1e-3) / (p.na + 16), 1e-6);
    }
}

// Constraint 1: with k1 = 0.05, k3 = 0.08, E = 16, K = 2 the rule gives n_a = 0.05·16/(0.08·2) = 5, where
// ba = B/(5m) and be = 2B/(16m) make Ta = Te exactly (k2 = k4). Fewer replicas leave the experts waiting
// on attention; more add GPUs that only idle.
TEST(Planner, BestReplicasFollowBalanceRule) {
    const demos::Scenario s = balance_example(0.05, 0.08, 16, 2);
    EXPECT_DOUBLE_EQ(demos::balanced_replicas(s), 5.0);
    const demos::PlanPoint best = demos::best_plan(s);
    EXPECT_EQ(best.na, 5);
    EXPECT_NEAR(best.ta_ms, best.te_ms, 1e-12);
    EXPECT_TRUE(best.hidden);

    // Throughput per GPU rises up to the balanced point and falls after it, at the best m.
    const std::vector<demos::PlanPoint> plans = demos::plan_sweep(s);
    double prev = 0;
    for (const demos::PlanPoint& p : plans) {
        if (p.m != best.m) continue;
        if (p.na <= 5) {
            EXPECT_GT(p.tokens_per_s_per_gpu, prev) << "na=" << p.na;
        } else {
            EXPECT_LT(p.tokens_per_s_per_gpu, prev) << "na=" << p.na;
        }
        prev = p.tokens_per_s_per_gpu;
    }
}

// A second shape: k1 = 0.1, k3 = 0.05, E = 8, K = 2 gives n_a = 0.1·8/(0.05·2) = 8.
TEST(Planner, BalanceRuleOtherShape) {
    const demos::Scenario s = balance_example(0.1, 0.05, 8, 2);
    EXPECT_DOUBLE_EQ(demos::balanced_replicas(s), 8.0);
    const demos::PlanPoint best = demos::best_plan(s);
    EXPECT_EQ(best.na, 8);
    EXPECT_NEAR(best.ta_ms / best.te_ms, 1.0, 1e-9);
}

TEST(Planner, BestPlanTieBreaksAndEmpty) {
    std::vector<demos::PlanPoint> plans(3);
    plans[0].na = 4, plans[0].m = 3, plans[0].tokens_per_s_per_gpu = 10;
    plans[1].na = 2, plans[1].m = 4, plans[1].tokens_per_s_per_gpu = 10;
    plans[2].na = 2, plans[2].m = 2, plans[2].tokens_per_s_per_gpu = 10;
    const demos::PlanPoint b = demos::best_plan(plans);
    EXPECT_EQ(b.na, 2);
    EXPECT_EQ(b.m, 2);
    plans[0].tokens_per_s_per_gpu = 11;
    EXPECT_EQ(demos::best_plan(plans).na, 4);
    EXPECT_THROW(demos::best_plan(std::vector<demos::PlanPoint>{}), moe::Error);
}

}  // namespace
