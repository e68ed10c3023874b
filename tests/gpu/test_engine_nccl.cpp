// The engine over real GPUs: `moelab run layer --ranks G` on a machine with G GPUs goes through NCCL, and its
// loads equal the CPU reference's while its communication time is measured, not modelled.
#include <gtest/gtest.h>

#include "demos/engine.hpp"
#include "kernels/nccl/nccl_api.hpp"

TEST(EngineNccl, LayerOverTwoGpusIsMeasuredAndMatchesTheReferenceLoads) {
    if (!moe::nccl::built() || moe::nccl::usable_gpus() < 2)
        GTEST_SKIP() << "needs NCCL and 2 GPUs; found " << moe::nccl::usable_gpus() << " (built with NCCL: "
                     << (moe::nccl::built() ? "yes" : "no") << ")";
    demos::Scenario s;
    s.tokens = 2048, s.experts = 8, s.top_k = 2, s.hidden = 256, s.ffn = 512, s.ranks = 2, s.skew = "zipf:1.1";
    s.seed = static_cast<std::uint64_t>(::testing::UnitTest::GetInstance()->random_seed());
    s.backend = "cuda";
    s.repeats = 5;
    auto r = demos::run(s, demos::Demo::Layer);
    EXPECT_EQ(r.backend, "nccl");
    EXPECT_EQ(r.comm_time_provenance, demos::Provenance::MeasuredGpu);
    EXPECT_GT(r.comm_ms, 0.0);
    ASSERT_EQ(r.stages.size(), 6u);
    for (auto& st : r.stages) EXPECT_EQ(st.provenance, demos::Provenance::MeasuredGpu) << st.stage;
    s.backend = "cpu";
    auto ref = demos::run(s, demos::Demo::Routing);
    EXPECT_EQ(r.expert_loads, ref.expert_loads);
    EXPECT_EQ(r.traffic_tokens, ref.traffic_tokens);
}
