// The cuda backend's whole layer against the CPU backend's, tensor by tensor, plus its errors: bad shapes,
// a layer too large for the GPU (OutOfMemory naming the bytes), and the stage timings the engine reads.
#include <algorithm>
#include <string>

#include "kernels/common/error.hpp"
#include "kernels/cuda/launchers.hpp"
#include "tests/gpu/gpu_test.hpp"

#if MOELAB_HAVE_CUDA

using namespace gpu_test;

namespace {

moe::LayerSpec spec_of(const Case& c, moe::Strategy st, moe::Router router, std::uint64_t seed) {
    moe::LayerSpec s;
    s.tokens = c.T, s.experts = c.E, s.top_k = c.k, s.hidden = c.d, s.ffn = c.F;
    s.skew = moe::route::parse_skew(c.skew);
    s.router = router;
    s.capacity_factor = c.cf, s.drop_policy = c.policy, s.align = c.align;
    s.strategy = st, s.seed = seed;
    return s;
}

// The layer on both backends, tensors kept.
void run_both(const moe::LayerSpec& s, int repeats, moe::LayerRun& cpu, moe::LayerRun& gpu) {
    moe::LayerRunOptions opt;
    opt.keep_tensors = true;
    opt.repeats = repeats;
    moe::cpu::run_layer(s, opt, cpu);
    moe::gpu::run_layer(s, opt, gpu);
}

}  // namespace

TEST(GpuLayer, MatchesTheCpuBackend) {
    MOE_REQUIRE_GPU();
    struct Run {
        Case c;
        moe::Strategy st;
        moe::Router router;
    };
    using P = moe::DropPolicy;
    using S = moe::Strategy;
    std::vector<Run> runs = {
        {{256, 16, 2, 128, "uniform", 0, P::TokenOrder, 1, 256}, S::Sort, moe::Router::Popularity},
        {{257, 8, 8, 2048, "zipf:1.2", 1.0, P::TokenOrder, 8, 128}, S::Scan, moe::Router::Popularity},
        {{7, 64, 8, 128, "hot:20", 0.5, P::Probability, 1, 64}, S::Atomic, moe::Router::Popularity},
        {{1000, 16, 2, 256, "zipf:1.2", 0, P::TokenOrder, 4, 128}, S::NoPack, moe::Router::Gate},
        {{4096, 256, 8, 128, "hot:20", 1.25, P::TokenOrder, 1, 64}, S::Scan, moe::Router::Popularity},
        {{300, 8, 2, 100, "uniform", 0, P::TokenOrder, 3, 72}, S::Sort, moe::Router::Gate},
    };
    for (const Run& run : runs) {
        if (quick() && run.c.T > 1000) continue;
        const std::uint64_t seed = fresh_seed();
        SCOPED_TRACE(describe(run.c) + " strategy " + moe::dispatch::strategy_name(run.st) +
                     (run.router == moe::Router::Gate ? " gate" : " popularity") + " seed " + std::to_string(seed));
        moe::LayerSpec s = spec_of(run.c, run.st, run.router, seed);
        moe::LayerRun cpu, gpu;
        run_both(s, 2, cpu, gpu);
        const auto &a = gpu.tensors, &b = cpu.tensors;

        EXPECT_EQ(gpu.backend, "cuda");
        ASSERT_EQ(gpu.stages.size(), 5u);
        for (auto& st : gpu.stages) {
            EXPECT_EQ(st.ms.size(), 2u) << st.stage;
            for (double ms : st.ms) EXPECT_GE(ms, 0.0) << st.stage;
        }
        EXPECT_EQ(first_difference(a.x, b.x, b.x.size(), "x"), "");
        if (run.router == moe::Router::Popularity) {
            EXPECT_EQ(first_difference(a.logits, b.logits, b.logits.size(), "logits"), "");
        } else {
            EXPECT_EQ(first_outside(a.logits, b.logits, 1e-4f, 1e-4f, "logits"), "");
            // Near-ties in the gate logits may pick differently; the rest of the comparison needs equal picks.
            if (a.topk_ids != b.topk_ids) {
                std::vector<std::int32_t> rid(a.topk_ids.size());
                std::vector<float> rw(rid.size());
                moe::route::softmax_topk(a.logits.data(), s.tokens, s.experts, s.top_k, s.renormalize, rid.data(),
                                         rw.data());
                if (s.capacity_factor == 0) {
                    EXPECT_EQ(first_difference(a.topk_ids, rid, rid.size(), "ids of the GPU's logits"), "");
                }
                GTEST_LOG_(INFO) << "gate picks differ from the CPU's on near-ties; checked against its own logits";
                continue;
            }
        }
        EXPECT_EQ(first_difference(a.topk_ids, b.topk_ids, b.topk_ids.size(), "ids"), "");
        EXPECT_EQ(first_outside(a.topk_w, b.topk_w, 1e-7f, 1e-5f, "weights"), "");
        EXPECT_EQ(gpu.capacity, cpu.capacity);
        EXPECT_EQ(gpu.dropped, cpu.dropped);
        EXPECT_EQ(gpu.rows, cpu.rows);
        EXPECT_EQ(gpu.demand, cpu.demand);
        EXPECT_EQ(gpu.counts, cpu.counts);
        EXPECT_EQ(first_difference(a.offsets, b.offsets, b.offsets.size(), "offsets"), "");
        if (run.st != moe::Strategy::Atomic) {
            EXPECT_EQ(first_difference(a.row_token, b.row_token, b.row_token.size(), "row_token"), "");
            EXPECT_EQ(first_difference(a.inv, b.inv, b.inv.size(), "inv"), "");
            EXPECT_EQ(bf16_close(a.y_packed, b.y_packed, b.y_packed.size(), "y_packed"), "");
        }
        EXPECT_EQ(combined_close(a.out, b.out, b.y_packed, "out"), "");
    }
}

// The layer keeps the plan on the device, so auto reads the busiest expert's count from the scenario's skew: at 8
// tokens per expert on the classroom shape's d with F = 2776 (not a multiple of 128, where wgmma's stages hold one k
// step: with the classroom F, wgmma runs either way), mid (32-token tiles) under uniform routing, wgmma (whose
// 64-token tile holds the hot expert's ~53 rows in one) under hot:20 on sm_90; either way the output matches the CPU.
TEST(GpuLayer, AutoReadsTheBusiestExpertFromTheSkew) {
    MOE_REQUIRE_GPU();
    for (const char* skew : {"uniform", "hot:20"}) {
        Case c{64, 16, 2, 1024, skew, 0, moe::DropPolicy::TokenOrder, 1, 2776};
        const std::uint64_t seed = fresh_seed();
        SCOPED_TRACE(describe(c) + " seed " + std::to_string(seed));
        moe::LayerRun cpu, gpu;
        run_both(spec_of(c, moe::Strategy::Scan, moe::Router::Popularity, seed), 1, cpu, gpu);
        const bool hot = std::string(skew) != "uniform";
        EXPECT_EQ(gpu.experts_impl, hot && moe::gpu::wgmma_available() ? "wgmma" : "mid");
        const std::int64_t busiest = *std::max_element(cpu.counts.begin(), cpu.counts.end());
        EXPECT_TRUE(hot ? busiest > 32 : busiest <= 32) << busiest;  // the tile the choice weighs
        EXPECT_EQ(gpu.counts, cpu.counts);
        EXPECT_EQ(bf16_close(gpu.tensors.y_packed, cpu.tensors.y_packed, cpu.tensors.y_packed.size(), "y_packed"), "");
        EXPECT_EQ(combined_close(gpu.tensors.out, cpu.tensors.out, cpu.tensors.y_packed, "out"), "");
    }
}

TEST(GpuLayer, DispatchOnlyRunSkipsTheExperts) {
    MOE_REQUIRE_GPU();
    Case c{4096, 16, 2, 1024, "hot:20", 1.0, moe::DropPolicy::TokenOrder, 1, 2816};
    const std::uint64_t seed = fresh_seed();
    moe::LayerSpec s = spec_of(c, moe::Strategy::Scan, moe::Router::Popularity, seed);
    moe::LayerRunOptions opt;
    opt.run_experts = false;
    opt.warmup = 1;
    opt.repeats = 3;
    moe::LayerRun cpu, gpu;
    moe::cpu::run_layer(s, opt, cpu);
    moe::gpu::run_layer(s, opt, gpu);
    ASSERT_EQ(gpu.stages.size(), 3u);
    EXPECT_EQ(gpu.stages[0].stage, "route");
    EXPECT_EQ(gpu.stages[2].stage, "dispatch");
    EXPECT_EQ(gpu.stages[2].ms.size(), 3u);
    EXPECT_EQ(gpu.counts, cpu.counts);
    EXPECT_EQ(gpu.demand, cpu.demand);
    EXPECT_EQ(gpu.dropped, cpu.dropped);
    EXPECT_EQ(gpu.tensors.topk_ids, cpu.tensors.topk_ids);  // keep_routing is on by default
}

TEST(GpuLayer, ErrorsAreThrownNotCrashes) {
    MOE_REQUIRE_GPU();
    moe::LayerSpec s;
    moe::LayerRunOptions opt;
    moe::LayerRun run;
    s.experts = 0;
    try {
        moe::gpu::run_layer(s, opt, run);
        FAIL() << "experts = 0 was accepted";
    } catch (const moe::Error& e) {
        EXPECT_EQ(e.kind(), moe::ErrorKind::BadInput) << e.what();
    }
    // About 2 TB of activations: refused before any allocation, naming the bytes asked and free.
    s = moe::LayerSpec{};
    s.tokens = std::int64_t(1) << 26;
    s.hidden = 16384;
    s.top_k = 1;
    try {
        moe::gpu::run_layer(s, opt, run);
        FAIL() << "a 2 TB layer was accepted";
    } catch (const moe::Error& e) {
        EXPECT_EQ(e.kind(), moe::ErrorKind::OutOfMemory) << e.what();
        EXPECT_NE(std::string(e.what()).find("bytes"), std::string::npos) << e.what();
    }
    // The device still works after the refusals.
    s = moe::LayerSpec{};
    s.tokens = 64;
    opt.run_experts = false;
    EXPECT_NO_THROW(moe::gpu::run_layer(s, opt, run));
}

#else
TEST(GpuLayer, SkippedWithoutCuda) {
    EXPECT_THROW(
        {
            moe::LayerRun run;
            moe::gpu::run_layer(moe::LayerSpec{}, moe::LayerRunOptions{}, run);
        },
        moe::Error);
    GTEST_SKIP() << "no GPU to test on: " << moe::gpu::unavailable_reason();
}
#endif
