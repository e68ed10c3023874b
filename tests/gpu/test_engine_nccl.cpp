// The engine over real GPUs: `moelab run layer --ranks G` on a machine with G GPUs goes through NCCL, and its
// loads equal the CPU reference's while its communication time is measured, not modelled.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "demos/engine.hpp"
#include "gpu_test.hpp"
#include "kernels/nccl/nccl_api.hpp"

TEST(EngineNccl, LayerOverTwoGpusIsMeasuredAndMatchesTheReferenceLoads) {
    if (!moe::nccl::built() || moe::nccl::usable_gpus() < 2)
        GTEST_SKIP() << "needs NCCL and 2 GPUs; found " << moe::nccl::usable_gpus()
                     << " (built with NCCL: " << (moe::nccl::built() ? "yes" : "no") << ")";
    if (gpu_test::quick())  // NCCL under compute-sanitizer is the nccl phase's job (scripts/gpu), as in test_nccl.cpp
        GTEST_SKIP() << "MOELAB_GPU_TEST_QUICK (sanitizer runs): NCCL tests skipped";
    demos::Scenario s;
    s.tokens = 2048, s.experts = 8, s.top_k = 2, s.hidden = 256, s.ffn = 512, s.ranks = 2, s.skew = "zipf:1.1";
    s.seed = static_cast<std::uint64_t>(::testing::UnitTest::GetInstance()->random_seed());
    s.backend = "cuda";
    s.repeats = 5;
    auto r = demos::run(s, demos::Demo::Layer);
    EXPECT_EQ(r.backend, "nccl");
    EXPECT_EQ(r.comm_time_provenance, demos::Provenance::MeasuredGpu);
    EXPECT_GT(r.comm_ms, 0.0);
    ASSERT_GE(r.stages.size(), 6u);
    for (auto& st : r.stages) EXPECT_EQ(st.provenance, demos::Provenance::MeasuredGpu) << st.stage;
    // Two measured lanes per rank, and each pair's time measured where rows flow.
    std::set<std::string> lanes;
    for (auto& sp : r.timeline) {
        lanes.insert(sp.lane);
        EXPECT_EQ(sp.provenance, demos::Provenance::MeasuredGpu);
        EXPECT_GE(sp.end_ms, sp.start_ms);
    }
    EXPECT_EQ(lanes, (std::set<std::string>{"rank 0 compute", "rank 0 comm", "rank 1 compute", "rank 1 comm"}));
    ASSERT_EQ(r.traffic_ms.size(), 4u);
    EXPECT_EQ(r.traffic_ms_provenance, demos::Provenance::MeasuredGpu);
    for (int a = 0; a < 2; ++a)
        for (int b = 0; b < 2; ++b)
            if (a != b && r.traffic_tokens[a * 2 + b] > 0) {
                EXPECT_GT(r.traffic_ms[a * 2 + b], 0.0) << a << "->" << b;
            }
    s.backend = "cpu";
    auto ref = demos::run(s, demos::Demo::Routing);
    EXPECT_EQ(r.expert_loads, ref.expert_loads);
    EXPECT_EQ(r.traffic_tokens, ref.traffic_tokens);
}

// With a capacity factor the engine stays on the real GPUs now: drops as the CPU reference makes them.
TEST(EngineNccl, LayerWithDropsOverTwoGpusMatchesTheReferenceLoads) {
    if (!moe::nccl::built() || moe::nccl::usable_gpus() < 2)
        GTEST_SKIP() << "needs NCCL and 2 GPUs; found " << moe::nccl::usable_gpus();
    if (gpu_test::quick()) GTEST_SKIP() << "MOELAB_GPU_TEST_QUICK (sanitizer runs): NCCL tests skipped";
    demos::Scenario s;
    s.tokens = 2048, s.experts = 8, s.top_k = 2, s.hidden = 256, s.ffn = 512, s.ranks = 2, s.skew = "hot:8";
    s.capacity_factor = 1.0;
    s.seed = static_cast<std::uint64_t>(::testing::UnitTest::GetInstance()->random_seed());
    s.backend = "cuda";
    s.repeats = 3;
    auto r = demos::run(s, demos::Demo::Layer);
    EXPECT_EQ(r.backend, "nccl");
    s.backend = "cpu";
    auto ref = demos::run(s, demos::Demo::Routing);
    EXPECT_GT(ref.dropped, 0);
    EXPECT_EQ(r.dropped, ref.dropped);
    EXPECT_EQ(r.capacity, ref.capacity);
    EXPECT_EQ(r.demand, ref.demand);
    EXPECT_EQ(r.expert_loads, ref.expert_loads);
    EXPECT_EQ(r.traffic_tokens, ref.traffic_tokens);
}
