// How the engine picks the expert FFN (auto: by tokens per expert, d and the busiest expert's count) and that the
// kernels' output does not depend on how many SMs they are given.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "tests/gpu/gpu_test.hpp"

#if MOELAB_HAVE_CUDA
#include "kernels/cuda/launchers.hpp"
#include "tests/gpu/ffn_case.hpp"

using namespace gpu_test;

TEST(GpuExperts, AutoPicksDecodeForFewTokensPerExpert) {
    using moe::gpu::ExpertsImpl;
    EXPECT_EQ(moe::gpu::experts_auto_choice(1, 1024, 2816, true), ExpertsImpl::Decode);
    // wgmma where the device has it (sm_90), else the cuBLAS, decode or mid paths it beat; it gathers rows too
    const bool wg = moe::gpu::wgmma_available();
    EXPECT_EQ(moe::gpu::experts_auto_choice(4, 7168, 2048, false), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Mid);
    EXPECT_EQ(moe::gpu::experts_auto_choice(8, 4096, 1408, false), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Mid);
    EXPECT_EQ(moe::gpu::experts_auto_choice(8, 1024, 2816, false), ExpertsImpl::Mid);  // mid gathers too
    EXPECT_EQ(moe::gpu::experts_auto_choice(8, 7168, 2048, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Mid);
    EXPECT_EQ(moe::gpu::experts_auto_choice(1, 4096, 1408, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Decode);
    EXPECT_EQ(moe::gpu::experts_auto_choice(4, 7168, 2048, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Mid);
    EXPECT_EQ(moe::gpu::experts_auto_choice(2, 7168, 2048, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Mid);
    EXPECT_EQ(moe::gpu::experts_auto_choice(1, 7168, 2048, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Decode);
    EXPECT_EQ(moe::gpu::experts_auto_choice(8, 4096, 1408, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Mid);
    EXPECT_EQ(moe::gpu::experts_auto_choice(8, 1024, 2816, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Mid);
    EXPECT_EQ(moe::gpu::experts_auto_choice(64, 4096, 1408, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Grouped);
    // without sm_90, mid up to 32 tokens per expert where the experts are many small GEMMs, then cuBLAS's grouped GEMM
    // for them; per-expert calls for large experts or many tokens
    EXPECT_EQ(moe::gpu::experts_auto_choice(16, 4096, 1408, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Mid);
    EXPECT_EQ(moe::gpu::experts_auto_choice(32, 4096, 1408, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Mid);
    EXPECT_EQ(moe::gpu::experts_auto_choice(48, 4096, 1408, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Grouped);
    EXPECT_EQ(moe::gpu::experts_auto_choice(16, 4096, 14336, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Streams);
    // a few large experts (S2) without sm_90: decode up to 2 tokens per expert, then mid, or per-expert calls on side
    // streams where the busiest expert does not fit mid's tile (packed rows)
    EXPECT_EQ(moe::gpu::experts_auto_choice(2, 4096, 14336, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Decode);
    EXPECT_EQ(moe::gpu::experts_auto_choice(4, 4096, 14336, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Mid);
    EXPECT_EQ(moe::gpu::experts_auto_choice(8, 4096, 14336, true, 32), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Mid);
    EXPECT_EQ(moe::gpu::experts_auto_choice(12, 4096, 14336, true, 48), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Streams);
    EXPECT_EQ(moe::gpu::experts_auto_choice(12, 4096, 14336, false, 48), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Mid);
    EXPECT_EQ(moe::gpu::experts_auto_choice(16, 7168, 2048, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Mid);
    EXPECT_EQ(moe::gpu::experts_auto_choice(32, 7168, 2048, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Mid);
    EXPECT_EQ(moe::gpu::experts_auto_choice(16, 4096, 1408, false), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Fused);
    EXPECT_EQ(moe::gpu::experts_auto_choice(128, 4096, 1408, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Grouped);
    EXPECT_EQ(moe::gpu::experts_auto_choice(160, 4096, 1408, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Streams);
    EXPECT_EQ(moe::gpu::experts_auto_choice(64, 4096, 14336, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Streams);
    EXPECT_EQ(moe::gpu::experts_auto_choice(32, 3072, 8192, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Streams);
    EXPECT_EQ(moe::gpu::experts_auto_choice(64, 7168, 2048, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Streams);
    EXPECT_EQ(moe::gpu::experts_auto_choice(64, 1024, 2816, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Batched);
    EXPECT_EQ(moe::gpu::experts_auto_choice(96, 1024, 2816, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Batched);
    EXPECT_EQ(moe::gpu::experts_auto_choice(128, 1024, 2816, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Batched);
    // small d on sm_90: decode up to 2 tokens per expert, then wgmma where its stages hold two k steps (packed rows,
    // d and F multiples of 128); otherwise mid up to 8 where the busiest expert fits its 32-token tile (or is not
    // known), wgmma past that; without sm_90 decode up to 2, then mid
    EXPECT_EQ(moe::gpu::experts_auto_choice(2, 1024, 2816, true), ExpertsImpl::Decode);
    EXPECT_EQ(moe::gpu::experts_auto_choice(3, 1024, 2816, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Mid);
    EXPECT_EQ(moe::gpu::experts_auto_choice(4, 1024, 2816, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Mid);
    EXPECT_EQ(moe::gpu::experts_auto_choice(4, 1024, 2816, false), ExpertsImpl::Mid);
    EXPECT_EQ(moe::gpu::experts_auto_choice(4, 1024, 2816, false, 40), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Mid);
    EXPECT_EQ(moe::gpu::experts_auto_choice(4, 1024, 2776, true), ExpertsImpl::Mid);
    EXPECT_EQ(moe::gpu::experts_auto_choice(8, 1024, 2776, true, 20), ExpertsImpl::Mid);
    EXPECT_EQ(moe::gpu::experts_auto_choice(8, 1024, 2776, true, 60), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Mid);
    EXPECT_EQ(moe::gpu::experts_auto_choice(8, 1024, 2816, true, 20), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Mid);
    // the classroom shape past decode's range: mid up to 32 where the busiest expert fits its tile (or is not known),
    // then batched (grouped where its padding does not fit)
    EXPECT_EQ(moe::gpu::experts_auto_choice(16, 1024, 2816, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Mid);
    EXPECT_EQ(moe::gpu::experts_auto_choice(24, 1024, 2816, true, 40), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Mid);
    EXPECT_EQ(moe::gpu::experts_auto_choice(24, 1024, 2816, true, 219), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Batched);
    EXPECT_EQ(moe::gpu::experts_auto_choice(32, 1024, 2816, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Mid);
    EXPECT_EQ(moe::gpu::experts_auto_choice(40, 1024, 2816, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Batched);
    EXPECT_EQ(moe::gpu::experts_auto_choice(48, 1024, 2816, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Batched);
    EXPECT_EQ(moe::gpu::experts_auto_choice(16, 1024, 2816, false), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Fused);
    EXPECT_EQ(moe::gpu::experts_auto_choice(32, 1024, 2816, false), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Fused);
    EXPECT_EQ(moe::gpu::experts_auto_choice(64, 4096, 1408, false), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Fused);
    EXPECT_EQ(moe::gpu::experts_auto_choice(512, 7168, 2048, false), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Fused);
    EXPECT_EQ(moe::gpu::experts_auto_choice(512, 1024, 2816, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Batched);
    EXPECT_EQ(moe::gpu::experts_auto_choice(4096, 1024, 2816, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Streams);
    EXPECT_EQ(moe::gpu::experts_auto_choice(256, 7168, 2048, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Streams);
    EXPECT_EQ(moe::gpu::experts_auto_choice(1024, 4096, 1408, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Streams);
    EXPECT_EQ(moe::gpu::experts_auto_choice(2048, 4096, 1408, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Streams);
    EXPECT_EQ(moe::gpu::experts_auto_choice(4096, 4096, 1408, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Streams);
    EXPECT_EQ(moe::gpu::experts_auto_choice(512, 4096, 1408, true), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Streams);
    EXPECT_EQ(moe::gpu::experts_auto_choice(512, 7168, 2048, true), ExpertsImpl::Streams);
    EXPECT_EQ(moe::gpu::experts_auto_choice(1024, 4096, 14336, true),  // S2's layer
              wg ? ExpertsImpl::Wgmma : ExpertsImpl::Streams);
    EXPECT_EQ(moe::gpu::experts_auto_choice(4096, 7168, 2048, true), ExpertsImpl::Streams);
    EXPECT_EQ(moe::gpu::experts_auto_choice(4096, 1024, 2816, false), wg ? ExpertsImpl::Wgmma : ExpertsImpl::Fused);
    for (double tpe : {1.0, 5.0, 11.0, 23.0, 48.0}) {
        const int chunk = moe::gpu::decode_chunk_tokens(tpe);
        EXPECT_TRUE(chunk == 8 || chunk == 16 || chunk == 32 || chunk == 64) << chunk;
        EXPECT_GE(chunk, tpe) << "a chunk holds at least the mean tokens per expert";
    }
    for (double tpe : {5.0, 40.0, 64.0, 96.0}) {
        const int tile = moe::gpu::mid_tile_tokens(tpe);
        EXPECT_TRUE(tile == 32 || tile == 64 || tile == 128) << tile;
        EXPECT_GE(tile, tpe) << "a tile holds at least the mean tokens per expert";
    }
}

// Auto on the host plan reads the busiest expert's count: at 8 tokens per expert with small d (F not a multiple of 128,
// where wgmma's stages hold one k step) it runs mid where every expert fits mid's 32-token tile (uniform routing)
// and, on sm_90, wgmma where one expert is 20 times as popular as each other (about 53 of the 128 rows); either way y
// matches the reference.
TEST(GpuExperts, AutoReadsTheBusiestExpertFromTheHostPlan) {
    MOE_REQUIRE_GPU();
    using moe::gpu::ExpertsImpl;
    const bool wg = moe::gpu::wgmma_available();
    for (const char* skew : {"uniform", "hot:20"}) {
        const Case c{64, 16, 2, 256, skew, 0, moe::DropPolicy::TokenOrder, 1, 200};
        const std::uint64_t seed = fresh_seed();
        SCOPED_TRACE(describe(c) + " seed " + std::to_string(seed));
        FfnCase f(c, seed);
        const bool hot = std::string(skew) != "uniform";
        const int busiest = *std::max_element(f.counts.begin(), f.counts.end());
        ASSERT_EQ(busiest > 32, hot) << "the busiest expert has " << busiest << " tokens";
        f.poison();
        const auto ran =
            moe::gpu::experts_ffn(ExpertsImpl::Auto, f.dxp.data(), f.dx.data(), f.drt.data(), f.dcounts.data(),
                                  f.doffsets.data(), f.counts.data(), f.offsets.data(), c.E, c.d, c.F, f.dw1.data(),
                                  f.dw2.data(), f.y.data(), f.ws.data(), f.wsb, nullptr);
        moe::gpu::synchronize(nullptr);
        EXPECT_EQ(ran, wg && hot ? ExpertsImpl::Wgmma : ExpertsImpl::Mid);
        EXPECT_EQ(f.check(), "");
    }
}

// From 128 tokens per expert wgmma's 128 x 256 tiles stage their output in shared memory, beside the ring and the
// tile prefix of the experts; where that does not fit, the consumers store from registers, which costs S3's down items
// about 18% (RESULTS.md, thirty-seventh session). S3 has DeepSeek-V3's 256 routed experts.
TEST(GpuExperts, WgmmaStagesTheOutputUpTo256Experts) {
    MOE_REQUIRE_GPU();
    if (!moe::gpu::wgmma_available()) GTEST_SKIP() << "the wgmma kernels need a compute capability 9.0 device";
    EXPECT_TRUE(moe::gpu::wgmma_staged_fits(16));
    EXPECT_TRUE(moe::gpu::wgmma_staged_fits(256));
    EXPECT_FALSE(moe::gpu::wgmma_staged_fits(1024));  // 4 KB of tile prefix: the ring keeps its stages instead
    // And the staged path at 256 experts gives the reference's answer: S3's counts (about 128 tokens per expert, so one
    // or two token tiles, most of them partial) with a small d and F, staged (the default) and from registers, packed
    // and nopack (scripts/gpu's racecheck also runs S3's layer at 128 tokens per expert).
    const Case c{4096, 256, 8, 256, "uniform", 0, moe::DropPolicy::TokenOrder, 1, 256};
    const std::uint64_t seed = fresh_seed();
    SCOPED_TRACE(describe(c) + " seed " + std::to_string(seed));
    FfnCase f(c, seed);
    for (const char* epi : {"", "0"}) {
        ScopedEnv e_env("MOELAB_WGMMA_EPI", epi);
        for (bool packed : {true, false}) {
            SCOPED_TRACE(std::string(*epi ? "registers" : "staged") + (packed ? "" : ", nopack"));
            EXPECT_EQ(f.run_device(moe::gpu::ExpertsImpl::Wgmma, packed, c.T * c.k), moe::gpu::ExpertsImpl::Wgmma);
            EXPECT_EQ(f.check(), "");
        }
    }
}

// The measured pipeline runs the expert FFN on a pool of the GPU's SMs (SmBudget sizes the persistent grids) and the
// colocated baseline on all of them. mid and wgmma give every output one fp32 sum in one order whatever the grid, so
// y is bit-equal across budgets; decode splits K when its items are too few to fill the grid, so its y may take
// another rounding, within the reference's tolerance.
TEST(GpuExperts, OutputDoesNotDependOnTheSmBudget) {
    MOE_REQUIRE_GPU();
    using moe::gpu::ExpertsImpl;
    const std::vector<Case> cases = {
        {32, 8, 2, 256, "zipf:1.2", 0, moe::DropPolicy::TokenOrder, 1, 200},    // the pipeline test's 8 per expert
        {256, 8, 2, 256, "zipf:1.2", 0, moe::DropPolicy::TokenOrder, 1, 200},   // and its 64
        {64, 16, 2, 1024, "uniform", 0, moe::DropPolicy::TokenOrder, 1, 2816},  // classroom d and F
    };
    for (const Case& c : cases) {
        const std::uint64_t seed = fresh_seed();
        SCOPED_TRACE(describe(c) + " seed " + std::to_string(seed));
        FfnCase f(c, seed);
        const std::size_t n = std::size_t(f.rows) * c.d;
        for (auto impl : {ExpertsImpl::Decode, ExpertsImpl::Mid, ExpertsImpl::Wgmma}) {
            std::vector<moe::bf16_t> all;
            for (int sms : {0, 68, 20}) {
                const moe::gpu::SmBudget budget(sms);
                SCOPED_TRACE(std::string(moe::gpu::experts_impl_name(impl)) + " on " + std::to_string(sms) + " SMs");
                f.run_device(impl, true, c.T * c.k);
                EXPECT_EQ(f.check(), "");
                if (sms == 0) {
                    all = f.y.download(n);
                    continue;
                }
                const std::string bits = first_difference(f.y.download(n), all, n, "y against all SMs");
                if (impl == ExpertsImpl::Decode)
                    std::printf("  %s on %d SMs: %s\n", describe(c).c_str(), sms,
                                bits.empty() ? "bit-equal" : bits.c_str());
                else
                    EXPECT_EQ(bits, "");
            }
        }
    }
}

#else
TEST(GpuExpertsAuto, Skipped) { GTEST_SKIP() << "no GPU to test on: " << moe::gpu::unavailable_reason(); }
#endif
