// GPU capacity and drops against the CPU reference: demand per expert, and exactly the same assignments dropped
// under token order and under probability (ties to the lower (t, j)) on the covering set of shapes.
#include "tests/gpu/gpu_test.hpp"

#if MOELAB_HAVE_CUDA
#include "kernels/common/rng.hpp"
#include "kernels/cuda/launchers.hpp"

using namespace gpu_test;
using moe::gpu::DeviceBuffer;

namespace {
void check_capacity(const Case& c, const std::vector<std::int32_t>& routed, const std::vector<float>& w) {
    const std::int64_t cap = moe::route::capacity(c.cf, c.T, c.k, c.E);
    std::vector<std::int32_t> want = routed;
    moe::route::apply_capacity(want.data(), w.data(), c.T, c.k, c.E, cap, c.policy);
    std::vector<std::int32_t> demand_want(c.E, 0);
    for (auto e : routed)
        if (e >= 0) demand_want[e]++;

    DeviceBuffer<std::int32_t> ids(routed.size()), demand(c.E);
    DeviceBuffer<float> dw(w.size());
    ids.upload(routed);
    dw.upload(w);
    demand.poison();
    const std::size_t wsb = moe::gpu::capacity_workspace_bytes(c.T, c.k, c.E);
    DeviceBuffer<std::uint8_t> ws(wsb);
    ws.poison();
    moe::gpu::capacity(ids.data(), dw.data(), c.T, c.k, c.E, cap, c.policy, demand.data(), ws.data(), wsb, nullptr);
    EXPECT_EQ(first_difference(ids.download(), want, want.size(), "ids after drops"), "");
    EXPECT_EQ(first_difference(demand.download(), demand_want, c.E, "demand"), "");
}
}  // namespace

TEST(GpuCapacity, DropsMatchTheReference) {
    MOE_REQUIRE_GPU();
    for (Case c : covering_cases()) {
        for (double cf : {c.cf, 0.5, 1.0}) {
            for (auto policy : {moe::DropPolicy::TokenOrder, moe::DropPolicy::Probability}) {
                c.cf = cf;
                c.policy = policy;
                const std::uint64_t seed = fresh_seed();
                SCOPED_TRACE(describe(c) + " seed " + std::to_string(seed));
                HostRouting r = host_routing(seed, c);
                check_capacity(c, r.routed, r.w);
            }
        }
    }
}

TEST(GpuCapacity, ProbabilityTiesGoToTheEarlierAssignment) {
    MOE_REQUIRE_GPU();
    // Few distinct weights: most comparisons are ties, broken by (t, j).
    for (std::int64_t T : {7, 256, 4096}) {
        if (quick() && T > 256) continue;
        Case c{T, 8, 2, 128, "uniform", 0.75, moe::DropPolicy::Probability};
        const std::uint64_t seed = fresh_seed();
        SCOPED_TRACE(describe(c) + " seed " + std::to_string(seed));
        HostRouting r = host_routing(seed, c);
        for (std::size_t i = 0; i < r.w.size(); ++i) r.w[i] = 0.25f * (1 + int(4 * moe::rng_uniform(seed, 7, i)));
        check_capacity(c, r.routed, r.w);
    }
}

#else
TEST(GpuCapacity, Skipped) { GTEST_SKIP() << "no GPU to test on: " << moe::gpu::unavailable_reason(); }
#endif
