// GPU routing against the CPU reference: inputs and popularity logits bit-equal, softmax + top-k with the tie
// rule on any E and k, and the cuBLAS gate within fp32 tolerance.
#include "tests/gpu/gpu_test.hpp"

#if MOELAB_HAVE_CUDA
#include "kernels/common/rng.hpp"
#include "kernels/cuda/launchers.hpp"

using namespace gpu_test;
using moe::gpu::DeviceBuffer;

TEST(GpuRoute, InputsAreBitEqualToTheReference) {
    MOE_REQUIRE_GPU();
    const std::uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    const std::int64_t T = quick() ? 33 : 1000;
    const int d = 136, E = 12, F = 40;
    DeviceBuffer<moe::bf16_t> x(T * d), wg(E * d), w1(std::size_t(E) * 2 * F * d), w2(std::size_t(E) * d * F);
    x.poison(), wg.poison(), w1.poison(), w2.poison();
    moe::gpu::make_x(seed, T, d, x.data(), nullptr);
    moe::gpu::make_gate(seed, E, d, wg.data(), nullptr);
    moe::gpu::make_w1(seed, E, F, d, w1.data(), nullptr);
    moe::gpu::make_w2(seed, E, d, F, w2.data(), nullptr);
    std::vector<moe::bf16_t> hx(x.size()), hg(wg.size()), h1(w1.size()), h2(w2.size());
    moe::route::make_x(seed, T, d, hx.data());
    moe::route::make_gate(seed, E, d, hg.data());
    moe::experts::make_w1(seed, E, F, d, h1.data());
    moe::experts::make_w2(seed, E, d, F, h2.data());
    EXPECT_EQ(first_difference(x.download(), hx, hx.size(), "x"), "");
    EXPECT_EQ(first_difference(wg.download(), hg, hg.size(), "wg"), "");
    EXPECT_EQ(first_difference(w1.download(), h1, h1.size(), "w1"), "");
    EXPECT_EQ(first_difference(w2.download(), h2, h2.size(), "w2"), "");
}

TEST(GpuRoute, PopularityLogitsAreBitEqual) {
    MOE_REQUIRE_GPU();
    for (const Case& c : covering_cases()) {
        const std::uint64_t seed = fresh_seed();
        SCOPED_TRACE(describe(c) + " seed " + std::to_string(seed));
        auto logp = moe::route::log_popularity(moe::route::parse_skew(c.skew), c.E);
        std::vector<float> want(std::size_t(c.T) * c.E);
        moe::route::popularity_logits(seed, logp.data(), c.T, c.E, want.data());
        DeviceBuffer<float> dlogp(c.E), logits(want.size());
        dlogp.upload(logp);
        logits.poison();
        moe::route::gpu::popularity_logits(seed, dlogp.data(), c.T, c.E, logits.data(), nullptr);
        EXPECT_EQ(first_difference(logits.download(), want, want.size(), "logits"), "");
    }
}

namespace {
// Softmax + top-k on the same logits on both sides: ids must match exactly, weights to fp32 rounding.
void check_topk(const std::vector<float>& logits, std::int64_t T, int E, int k, bool renorm) {
    std::vector<std::int32_t> ids(std::size_t(T) * k);
    std::vector<float> w(ids.size());
    moe::route::softmax_topk(logits.data(), T, E, k, renorm, ids.data(), w.data());
    DeviceBuffer<float> dl(logits.size()), dw(w.size());
    DeviceBuffer<std::int32_t> di(ids.size());
    dl.upload(logits);
    dw.poison(), di.poison();
    moe::route::gpu::softmax_topk(dl.data(), T, E, k, renorm, di.data(), dw.data(), nullptr);
    EXPECT_EQ(first_difference(di.download(), ids, ids.size(), "ids"), "");
    EXPECT_EQ(first_outside(dw.download(), w, 1e-7f, 1e-5f, "weights"), "");
}
}  // namespace

TEST(GpuRoute, SoftmaxTopkMatchesTheReference) {
    MOE_REQUIRE_GPU();
    struct Shape {
        std::int64_t T;
        int E, k;
    };
    // Register paths for E ≤ 512, the looping path above; k up to E.
    std::vector<Shape> shapes = {{1, 1, 1},      {7, 8, 8},      {256, 16, 2},   {300, 64, 8},  {4096, 256, 8},
                                 {1000, 512, 8}, {517, 700, 8},  {64, 33, 33},   {129, 100, 20}, {16384, 64, 8},
                                 {16384, 256, 2}, {5, 1200, 40}};
    for (auto sh : shapes) {
        if (quick() && sh.T > 1000) continue;
        const std::uint64_t seed = fresh_seed();
        SCOPED_TRACE("T=" + std::to_string(sh.T) + " E=" + std::to_string(sh.E) + " k=" + std::to_string(sh.k) +
                     " seed " + std::to_string(seed));
        std::vector<float> logits(std::size_t(sh.T) * sh.E);
        for (std::size_t i = 0; i < logits.size(); ++i) logits[i] = 3.0f * moe::rng_gumbel(seed, i);
        check_topk(logits, sh.T, sh.E, sh.k, true);
        check_topk(logits, sh.T, sh.E, sh.k, false);
        // Many exact ties: logits on a coarse grid. Ties must go to the lower expert id.
        for (std::size_t i = 0; i < logits.size(); ++i)
            logits[i] = std::floor(4.0f * moe::rng_uniform(seed, 9, i)) * 0.5f;
        check_topk(logits, sh.T, sh.E, sh.k, true);
    }
}

TEST(GpuRoute, GateRouteMatchesTheReference) {
    MOE_REQUIRE_GPU();
    struct Shape {
        std::int64_t T;
        int E, k, d;
        const char* skew;
    };
    std::vector<Shape> shapes = {{1, 1, 1, 128, "uniform"},     {7, 8, 2, 2048, "zipf:1.2"},
                                 {256, 64, 8, 7168, "hot:20"},  {4096, 256, 8, 2048, "uniform"},
                                 {4096, 16, 2, 128, "zipf:1.2"}, {300, 8, 1, 100, "hot:20"}};
    for (auto sh : shapes) {
        if (quick() && (sh.T > 300 || sh.d > 2048)) continue;
        const std::uint64_t seed = fresh_seed();
        SCOPED_TRACE("T=" + std::to_string(sh.T) + " E=" + std::to_string(sh.E) + " d=" + std::to_string(sh.d) +
                     " skew=" + sh.skew + " seed " + std::to_string(seed));
        auto logp = moe::route::log_popularity(moe::route::parse_skew(sh.skew), sh.E);
        std::vector<moe::bf16_t> hx(std::size_t(sh.T) * sh.d), hg(std::size_t(sh.E) * sh.d);
        moe::route::make_x(seed, sh.T, sh.d, hx.data());
        moe::route::make_gate(seed, sh.E, sh.d, hg.data());
        std::vector<float> want(std::size_t(sh.T) * sh.E);
        moe::route::gate_logits(hx.data(), hg.data(), logp.data(), sh.T, sh.d, sh.E, want.data());

        DeviceBuffer<moe::bf16_t> x(hx.size()), wg(hg.size());
        DeviceBuffer<float> dlogp(sh.E), logits(want.size()), w(std::size_t(sh.T) * sh.k);
        DeviceBuffer<std::int32_t> ids(std::size_t(sh.T) * sh.k);
        moe::gpu::make_x(seed, sh.T, sh.d, x.data(), nullptr);
        moe::gpu::make_gate(seed, sh.E, sh.d, wg.data(), nullptr);
        dlogp.upload(logp);
        logits.poison(), w.poison(), ids.poison();
        moe::gpu::gate_route(x.data(), wg.data(), dlogp.data(), sh.T, sh.d, sh.E, sh.k, true, logits.data(),
                             ids.data(), w.data(), nullptr);
        auto got = logits.download();
        // fp32 sums in another order: a few ulp of the sum of |x·w| terms.
        EXPECT_EQ(first_outside(got, want, 1e-4f, 1e-4f, "gate logits"), "");
        // Top-k of the GPU's own logits must be what the reference picks from them.
        std::vector<std::int32_t> rid(ids.size());
        std::vector<float> rw(ids.size());
        moe::route::softmax_topk(got.data(), sh.T, sh.E, sh.k, true, rid.data(), rw.data());
        EXPECT_EQ(first_difference(ids.download(), rid, rid.size(), "ids"), "");
        EXPECT_EQ(first_outside(w.download(), rw, 1e-7f, 1e-5f, "weights"), "");
    }
}

#else
TEST(GpuRoute, Skipped) { GTEST_SKIP() << "no GPU to test on: " << moe::gpu::unavailable_reason(); }
#endif
