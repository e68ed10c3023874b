// The GPU expert FFN (cuBLAS grouped, per-expert streams, our fused gathering GEMM, the decode, mid and wgmma kernels,
// and nopack) against the CPU reference, within bf16 tolerance; padding rows must be zeros and experts with no tokens
// are skipped. The decode, mid and wgmma paths also run from the device plan alone, with every chunk or tile size.
#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>

#include "tests/gpu/gpu_test.hpp"

#if MOELAB_HAVE_CUDA
#include "kernels/bench/bench.hpp"
#include "kernels/cuda/launchers.hpp"
#include "tests/gpu/ffn_case.hpp"

using namespace gpu_test;
using moe::gpu::DeviceBuffer;

TEST(GpuExperts, EveryImplementationMatchesTheReference) {
    MOE_REQUIRE_GPU();
    // The CPU reference costs rows·3·F·d multiply-adds: shapes stay small in rows, but cover each d of the issue,
    // padding, empty experts (skewed routing over many experts) and shapes off the fast kernel's tiles.
    std::vector<Case> cases = {
        {1, 1, 1, 128, "uniform", 0, moe::DropPolicy::TokenOrder, 1, 64},
        {7, 8, 2, 2048, "zipf:1.2", 0, moe::DropPolicy::TokenOrder, 4, 256},
        {256, 16, 2, 128, "hot:20", 1.0, moe::DropPolicy::Probability, 16, 192},
        {300, 64, 8, 256, "zipf:1.2", 0, moe::DropPolicy::TokenOrder, 1, 128},
        {64, 8, 2, 7168, "uniform", 0, moe::DropPolicy::TokenOrder, 8, 128},
        {100, 8, 2, 100, "hot:20", 0, moe::DropPolicy::TokenOrder, 3, 72},  // d % 32, F % 64 ≠ 0: plain kernel
        {1024, 256, 8, 128, "zipf:1.2", 0, moe::DropPolicy::TokenOrder, 1, 64},
        {1, 16, 2, 1024, "uniform", 0, moe::DropPolicy::TokenOrder, 1, 2816},  // one token, classroom d and F
        {5, 8, 2, 264, "zipf:1.2", 0, moe::DropPolicy::TokenOrder, 2, 200},    // d % 32 = 8: a partial last k step
        {40, 4, 2, 136, "uniform", 0, moe::DropPolicy::TokenOrder, 1, 44},     // F % 8 ≠ 0: decode's scalar path
        {33, 8, 1, 97, "hot:20", 0, moe::DropPolicy::TokenOrder, 5, 31},       // odd d and F, padded
        {200, 2, 2, 256, "uniform", 0, moe::DropPolicy::TokenOrder, 1, 96},    // ~200 tokens per expert: many chunks
        // mid's tiles: 64 weight rows of gate/up and 128 of w2 per tile, several token tiles per expert, a partial
        // last tile in every direction (d = 392: 128·3 + 8; F = 200: 64·3 + 8), padded
        {600, 4, 2, 392, "zipf:1.2", 0, moe::DropPolicy::TokenOrder, 4, 200},
        {300, 3, 2, 131, "uniform", 0, moe::DropPolicy::TokenOrder, 2, 77},      // odd d and F: mid's scalar loads
        {1024, 8, 2, 1032, "zipf:1.2", 0, moe::DropPolicy::TokenOrder, 8, 712},  // several wgmma token tiles
    };
    for (const Case& c : cases) {
        if (quick() && (c.T > 300 || c.d > 2048)) continue;
        const std::uint64_t seed = fresh_seed();
        SCOPED_TRACE(describe(c) + " seed " + std::to_string(seed));
        FfnCase f(c, seed);
        using moe::gpu::ExpertsImpl;
        for (auto impl :
             {ExpertsImpl::Grouped, ExpertsImpl::Streams, ExpertsImpl::Serial, ExpertsImpl::Fused, ExpertsImpl::Decode,
              ExpertsImpl::Batched, ExpertsImpl::Mid, ExpertsImpl::Wgmma, ExpertsImpl::Auto}) {
            for (bool packed : {true, false}) {
                const bool gathers = impl == ExpertsImpl::Auto || impl == ExpertsImpl::Decode ||
                                     impl == ExpertsImpl::Mid || impl == ExpertsImpl::Wgmma;
                if (!packed && !gathers) continue;  // nopack: only these gather x's rows
                SCOPED_TRACE(std::string("impl ") + moe::gpu::experts_impl_name(impl) + (packed ? "" : " nopack"));
                f.poison();
                moe::gpu::experts_ffn(impl, packed ? f.dxp.data() : nullptr, f.dx.data(), f.drt.data(),
                                      f.dcounts.data(), f.doffsets.data(), f.counts.data(), f.offsets.data(), c.E, c.d,
                                      c.F, f.dw1.data(), f.dw2.data(), f.y.data(), f.ws.data(), f.wsb, nullptr);
                moe::gpu::synchronize(nullptr);
                EXPECT_EQ(f.check(), "");
            }
        }
        // From the device plan alone: decode with each chunk size (the assignments hint picks it: 8, 16, 32 and 64
        // tokens per chunk, so busy experts take several chunks), and a cuBLAS variant that copies the plan back.
        // The warps that share one item (MOELAB_DECODE_SPLIT: 1, 2, 4; "" = the launcher's own choice) too.
        const std::int64_t hints[] = {c.E, 8LL * c.E, 16LL * c.E, 40LL * c.E};
        for (std::int64_t hint : hints) {
            for (bool packed : {true, false}) {
                for (const char* variant : {"decode", "decode-f1", "decode-f3", "streams"}) {
                    const std::string v = variant;
                    const auto impl = v == "streams" ? ExpertsImpl::Streams : ExpertsImpl::Decode;
                    if (impl == ExpertsImpl::Streams && (!packed || hint != hints[0])) continue;
                    if (!packed && v != "decode" && v != "decode-f3") continue;
                    const char* split = "";
                    if (impl == ExpertsImpl::Decode) split = (hint == hints[1] ? "1" : hint == hints[2] ? "4" : "2");
                    if (!packed && impl == ExpertsImpl::Decode) split = "";
                    ScopedEnv env("MOELAB_DECODE_SPLIT", split);
                    // decode-fN: the weights' load flavor N of the decode kernels
                    ScopedEnv flavor("MOELAB_DECODE_FLAVOR", v.size() == 9 ? v.c_str() + 8 : "");
                    SCOPED_TRACE("device plan, " + v + " chunk " +
                                 std::to_string(moe::gpu::decode_chunk_tokens(double(hint) / c.E)) + " split '" +
                                 split + "'" + (packed ? "" : " nopack"));
                    EXPECT_EQ(f.run_device(impl, packed, hint), impl);
                    EXPECT_EQ(f.check(), "");
                }
            }
            // mid from the device plan with each token tile (32, 64: experts of more tokens take several tiles) and
            // both down tiles (64 or 128 rows of w2; "": the launcher's choice).
            for (bool packed : {true, false}) {
                for (const char* tile : {"32", "64", "128"}) {
                    for (const char* rows : {"", "64", "128"}) {
                        ScopedEnv env("MOELAB_MID_TILE", tile), down("MOELAB_MID_DOWN_ROWS", rows);
                        SCOPED_TRACE(std::string("device plan, mid tile ") + tile + " rows '" + rows + "'" +
                                     (packed ? "" : " nopack"));
                        EXPECT_EQ(f.run_device(ExpertsImpl::Mid, packed, hint), ExpertsImpl::Mid);
                        EXPECT_EQ(f.check(), "");
                    }
                }
            }
        }
    }
}

// The per-expert cuBLAS calls (streams over side streams, serial on one stream) with each expert's two GEMMs in turn
// (MOELAB_STREAMS_CHAIN=1, the default) and with every gate/up before every down (0).
TEST(GpuExperts, PerExpertCallsMatchTheReferenceChainedOrNot) {
    MOE_REQUIRE_GPU();
    std::vector<Case> cases = {
        {300, 64, 8, 256, "zipf:1.2", 0, moe::DropPolicy::TokenOrder, 1, 128},  // empty experts
        {33, 8, 1, 97, "hot:20", 0, moe::DropPolicy::TokenOrder, 5, 31},        // odd d and F, padded
        {1, 16, 2, 1024, "uniform", 0, moe::DropPolicy::TokenOrder, 1, 2816},   // one token
        {512, 256, 8, 128, "hot:20", 0, moe::DropPolicy::TokenOrder, 4, 64},    // a hot expert, padded
    };
    using moe::gpu::ExpertsImpl;
    for (const Case& c : cases) {
        const std::uint64_t seed = fresh_seed();
        SCOPED_TRACE(describe(c) + " seed " + std::to_string(seed));
        FfnCase f(c, seed);
        for (auto impl : {ExpertsImpl::Streams, ExpertsImpl::Serial}) {
            SCOPED_TRACE(moe::gpu::experts_impl_name(impl));
            for (const char* chain : {"0", "1"}) {
                SCOPED_TRACE(std::string("MOELAB_STREAMS_CHAIN=") + chain);
                ScopedEnv env("MOELAB_STREAMS_CHAIN", chain);
                f.poison();
                EXPECT_EQ(moe::gpu::experts_ffn(impl, f.dxp.data(), f.dx.data(), f.drt.data(), f.dcounts.data(),
                                                f.doffsets.data(), f.counts.data(), f.offsets.data(), c.E, c.d, c.F,
                                                f.dw1.data(), f.dw2.data(), f.y.data(), f.ws.data(), f.wsb, nullptr),
                          impl);
                moe::gpu::synchronize(nullptr);
                EXPECT_EQ(f.check(), "");
            }
        }
    }
}

// wgmma from the device plan with both token tiles (64: one consumer warpgroup, 128: two), both weight tiles (128
// or 256 rows), in one launch or two, with full token tiles stored through shared memory (TMA) or from registers,
// and with packed rows (TMA) or x's rows gathered through row_token (cp.async), one k step a stage or (tiles stored
// from registers, 128 weight rows, d and F multiples of 128) two or (64-token tiles) three, k tiles past K zero-filled;
// it runs where the device is sm_90 and d and F are multiples of 8, else mid does. Small enough to run under
// compute-sanitizer's racecheck (only wgmma's kernels run).
TEST(GpuExperts, WgmmaMatchesTheReferenceInEveryTiling) {
    MOE_REQUIRE_GPU();
    using moe::gpu::ExpertsImpl;
    const std::vector<Case> cases = {
        {1, 1, 1, 128, "uniform", 0, moe::DropPolicy::TokenOrder, 1, 64},         // one token
        {256, 16, 2, 128, "hot:20", 1.0, moe::DropPolicy::Probability, 16, 192},  // empty experts, padded
        {600, 4, 2, 392, "zipf:1.2", 0, moe::DropPolicy::TokenOrder, 4, 200},     // K tails, partial tiles
        {300, 8, 2, 520, "uniform", 0, moe::DropPolicy::TokenOrder, 1, 264},      // ~75 tokens per expert
        {300, 3, 2, 131, "uniform", 0, moe::DropPolicy::TokenOrder, 2, 77},       // odd d and F: mid runs
        {1024, 8, 2, 1032, "zipf:1.2", 0, moe::DropPolicy::TokenOrder, 8, 712},   // several token tiles
        {300, 8, 2, 256, "zipf:1.2", 0, moe::DropPolicy::TokenOrder, 1, 384},  // d, F % 128 == 0: two k steps a stage
    };
    struct WgConfig {
        const char *tile, *bn, *fused, *epi;  // fused "1": one launch for both GEMMs, "0": two; epi "1": TMA stores
        const char* group = "";               // MOELAB_WGMMA_GROUP: token tiles an expert's items run in groups of
        const char* early = "";  // MOELAB_WGMMA_EARLY: down items taken among the gate/up ones ("": the default)
        const char* box = "";    // MOELAB_WGMMA_BOX "0": partial token tiles in a box of the whole tile
        const char* snake = "";  // MOELAB_WGMMA_SNAKE "1": every second group takes the weight tiles backwards
        const char* ks = "";     // MOELAB_WGMMA_KS "1", "3": k steps a stage (the default: 3 or 2 where they run)
    };
    for (const Case& c : cases) {
        if (quick() && (c.T > 600 || c.d > 2048)) continue;
        const std::uint64_t seed = fresh_seed();
        SCOPED_TRACE(describe(c) + " seed " + std::to_string(seed));
        FfnCase f(c, seed);
        const bool wg_runs = moe::gpu::wgmma_available() && c.d % 8 == 0 && c.F % 8 == 0;
        for (std::int64_t hint : {std::int64_t(c.E), std::int64_t(40) * c.E, std::int64_t(200) * c.E})
            for (const WgConfig& w : {WgConfig{"64", "256", "1", "1"},
                                      WgConfig{"64", "128", "1", "1"},
                                      WgConfig{"128", "256", "1", "1"},
                                      WgConfig{"128", "128", "1", "1"},
                                      WgConfig{"64", "256", "0", "1"},
                                      WgConfig{"128", "256", "0", "1"},
                                      WgConfig{"64", "256", "1", "0"},
                                      WgConfig{"128", "256", "1", "0"},
                                      WgConfig{"128", "256", "1", "1", "1"},
                                      WgConfig{"64", "128", "1", "1", "2"},
                                      WgConfig{"128", "256", "1", "1", "", "3"},
                                      WgConfig{"64", "128", "1", "1", "", "8"},
                                      WgConfig{"128", "256", "1", "1", "", "0"},
                                      WgConfig{"128", "256", "1", "1", "", "", "0"},
                                      WgConfig{"64", "128", "1", "0", "", "", "0"},
                                      WgConfig{"128", "256", "1", "1", "2", "", "", "1"},
                                      WgConfig{"64", "128", "1", "1", "1", "", "", "1"},
                                      WgConfig{"64", "128", "1", "0"},
                                      WgConfig{"128", "128", "1", "0"},
                                      WgConfig{"128", "128", "0", "0"},
                                      WgConfig{"64", "128", "1", "0", "", "", "", "", "1"},
                                      WgConfig{"64", "128", "1", "0", "", "", "", "", "3"},
                                      WgConfig{"64", "128", "0", "0", "", "", "0", "", "3"}}) {
                // the hint picks the token tile where the tile is not forced
                ScopedEnv t_env("MOELAB_WGMMA_TILE", hint == std::int64_t(200) * c.E ? "" : w.tile),
                    n_env("MOELAB_WGMMA_BN", w.bn), f_env("MOELAB_WGMMA_FUSED", w.fused),
                    e_env("MOELAB_WGMMA_EPI", w.epi), g_env("MOELAB_WGMMA_GROUP", w.group),
                    o_env("MOELAB_WGMMA_EARLY", w.early), b_env("MOELAB_WGMMA_BOX", w.box),
                    s_env("MOELAB_WGMMA_SNAKE", w.snake), k_env("MOELAB_WGMMA_KS", w.ks);
                for (bool packed : {true, false}) {
                    SCOPED_TRACE(std::string("wgmma tile ") + w.tile + " × " + w.bn + ", fused " + w.fused + ", epi " +
                                 w.epi + ", group '" + w.group + "', early '" + w.early + "', box '" + w.box +
                                 "', snake '" + w.snake + "', ks '" + w.ks + "', hint " + std::to_string(hint) +
                                 (packed ? "" : ", nopack"));
                    EXPECT_EQ(f.run_device(ExpertsImpl::Wgmma, packed, hint),
                              wg_runs ? ExpertsImpl::Wgmma : ExpertsImpl::Mid);
                    EXPECT_EQ(f.check(), "");
                }
            }
    }
}

// mid's down kernel and wgmma's waiting down items ask for their first weight tiles before they wait for h (the
// default); MOELAB_EXPERTS_PRELOAD=0 runs them without. mid's down items wait for their own expert's gate/up items
// (the hand-off, the default: each gate/up block publishes its count when it ends) or, with MOELAB_MID_HANDOFF=0,
// for the whole gate/up kernel. Against the reference, from the device plan, on shapes with partial tiles and K
// tails, and one whose gate/up items take several rounds (MOELAB_GPU_TEST_QUICK=1: the three small ones, for
// compute-sanitizer's racecheck).
TEST(GpuExperts, DownGemmsMatchTheReferenceWithAndWithoutPreload) {
    MOE_REQUIRE_GPU();
    using moe::gpu::ExpertsImpl;
    const std::vector<Case> cases = {
        {7, 8, 2, 2048, "zipf:1.2", 0, moe::DropPolicy::TokenOrder, 4, 256},     // a few tokens, wide d
        {600, 4, 2, 392, "zipf:1.2", 0, moe::DropPolicy::TokenOrder, 4, 200},    // K tails, partial tiles, padded
        {256, 16, 2, 128, "hot:20", 0, moe::DropPolicy::TokenOrder, 1, 1032},    // empty experts, long F
        {40, 4, 2, 136, "uniform", 0, moe::DropPolicy::TokenOrder, 1, 44},       // F % 8 ≠ 0: the scalar paths
        {256, 16, 2, 512, "zipf:1.2", 0, moe::DropPolicy::TokenOrder, 1, 2816},  // gate/up items in rounds
    };
    for (const Case& c : cases) {
        if (quick() && (c.d > 1024 || c.F > 1100)) continue;  // small enough for racecheck
        const std::uint64_t seed = fresh_seed();
        SCOPED_TRACE(describe(c) + " seed " + std::to_string(seed));
        FfnCase f(c, seed);
        for (const char* preload : {"0", "1"})
            for (const char* handoff : {"0", ""})
                for (auto impl : {ExpertsImpl::Mid, ExpertsImpl::Wgmma})
                    for (std::int64_t hint : {std::int64_t(c.E), std::int64_t(40) * c.E})
                        for (bool packed : {true, false}) {
                            if (impl == ExpertsImpl::Wgmma && *handoff) continue;  // mid's knob only
                            ScopedEnv env("MOELAB_EXPERTS_PRELOAD", preload), hand("MOELAB_MID_HANDOFF", handoff);
                            SCOPED_TRACE(std::string("preload ") + preload + ", handoff " + handoff + ", " +
                                         moe::gpu::experts_impl_name(impl) + ", hint " + std::to_string(hint) +
                                         (packed ? "" : ", nopack"));
                            f.run_device(impl, packed, hint);
                            EXPECT_EQ(f.check(), "");
                        }
    }
}

// MOELAB_TRACE_ITEMS writes the last call's item timelines (kernels/bench/trace_items.py reads them) for decode, mid
// and wgmma: a header naming the kernel, then one row per item, every expert with tokens in both GEMMs and no other,
// each row's times in order, and y still right.
TEST(GpuExperts, ItemTracesCoverEveryExpertInOrder) {
    MOE_REQUIRE_GPU();
    using moe::gpu::ExpertsImpl;
    const Case c{300, 8, 2, 256, "zipf:1.2", 0, moe::DropPolicy::TokenOrder, 1, 384};
    const std::uint64_t seed = fresh_seed();
    SCOPED_TRACE(describe(c) + " seed " + std::to_string(seed));
    FfnCase f(c, seed);
    const std::string path = ::testing::TempDir() + "moelab_item_trace_" + std::to_string(seed) + ".csv";
    for (auto [impl, hint] :
         {std::pair{ExpertsImpl::Decode, std::int64_t(c.E)}, std::pair{ExpertsImpl::Mid, std::int64_t(8) * c.E},
          std::pair{ExpertsImpl::Wgmma, std::int64_t(200) * c.E}}) {
        std::remove(path.c_str());
        ScopedEnv env("MOELAB_TRACE_ITEMS", path.c_str());
        const auto ran = f.run_device(impl, true, hint);
        SCOPED_TRACE(std::string("asked ") + moe::gpu::experts_impl_name(impl) + ", ran " +
                     moe::gpu::experts_impl_name(ran));
        EXPECT_EQ(f.check(), "");
        std::ifstream in(path);
        ASSERT_TRUE(in.good()) << "no trace written to " << path;
        std::string line;
        std::getline(in, line);
        EXPECT_EQ(line.rfind(std::string("# ") + moe::gpu::experts_impl_name(ran) + " ", 0), 0u) << line;
        // wgmma with 128-token tiles has two consumer warpgroups, and the second's times are in every row
        const bool two = line.rfind("# wgmma ", 0) == 0 && line.find(" bm=128 ") != std::string::npos;
        std::getline(in, line);
        EXPECT_EQ(line, "item,sm,take,ready,first,end,gated,expert,mma,mma2,end2");
        std::vector<std::array<bool, 2>> seen(c.E, {false, false});
        int rows = 0;
        while (std::getline(in, line)) {
            unsigned long long v[11] = {};
            ASSERT_EQ(std::sscanf(line.c_str(), "%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu", &v[0], &v[1],
                                  &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10]),
                      11)
                << line;
            ++rows;
            const auto take = v[2], ready = v[3], first = v[4], end = v[5], mma = v[8], mma2 = v[9], end2 = v[10];
            EXPECT_TRUE(take <= ready && ready <= first && first <= mma && mma <= end) << line;
            if (two) {
                EXPECT_TRUE(take <= mma2 && mma2 <= end2 && mma2 != 0) << line;
            } else {
                EXPECT_TRUE(mma2 == 0 && end2 == 0) << line;
            }
            ASSERT_LT(v[6], 2u) << line;
            ASSERT_LT(v[7], std::uint64_t(c.E)) << line;
            seen[v[7]][v[6]] = true;
        }
        EXPECT_GT(rows, 0);
        for (int e = 0; e < c.E; ++e) {
            EXPECT_EQ(seen[e][1], f.counts[e] > 0) << "gate/up items of expert " << e;
            EXPECT_EQ(seen[e][0], f.counts[e] > 0) << "down items of expert " << e;
        }
    }
    std::remove(path.c_str());
}

// The roofline the app and the decode-vs-prefill lesson read: one checked, timed point per size, under both
// measured ceilings.
TEST(GpuExperts, RooflinePointsAreCheckedAndUnderTheCeilings) {
    MOE_REQUIRE_GPU();
    if (quick()) GTEST_SKIP() << "measures 1-2 GiB ceilings and an 8192^3 GEMM: not under the sanitizer";
    // The classroom shape: 277 MB of weights, well past L2, so no point can be served from the cache.
    const moe::bench::Shape shape{"classroom", 0, 1024, 16, 2, 2816};
    const auto rl = moe::bench::experts_roofline(shape, {1, 8, 64}, 3);
    EXPECT_GT(rl.ceilings.read_gbps, 0);
    EXPECT_GT(rl.ceilings.gemm_tflops, 0);
    ASSERT_EQ(rl.points.size(), 3u);
    for (const auto& p : rl.points) {
        SCOPED_TRACE("tokens per expert " + std::to_string(p.tokens_per_expert));
        EXPECT_EQ(p.wrong, 0);
        EXPECT_FALSE(p.impl.empty());
        EXPECT_GT(p.median_ms, 0);
        EXPECT_NEAR(p.floor_ms, std::max(p.weight_ms, p.math_ms), 1e-12);
        // Nothing beats the roofline by more than timing noise (ceilings and points are medians of one run).
        EXPECT_GT(p.median_ms, 0.8 * p.floor_ms);
        EXPECT_EQ(p.probe, "stream");  // weight-bound at these sizes: the weights read alone, beside the point
        EXPECT_GT(p.probe_ms, 0.8 * p.weight_ms);
    }
    EXPECT_NEAR(rl.points[0].tokens_per_expert, 1.0, 1e-9);
    EXPECT_EQ(rl.points[0].impl, "decode");
}

// A stage that fails at run time leaves a row saying why, and the run goes on: a shape whose weights fit no GPU
// (550 GB), then a small one that is measured and checked.
TEST(GpuExperts, BenchRecordsAFailedStageAndGoesOn) {
    MOE_REQUIRE_GPU();
    moe::bench::Options opt;
    opt.stages = {"experts"};
    opt.shapes = {{"huge", 64, 16384, 256, 2, 32768}, {"small", 64, 256, 8, 2, 512}};
    opt.experts_impls = {"auto"};
    opt.warmup = 1;
    opt.repeats = 3;
    moe::bench::Ceilings ceil;
    ceil.read_gbps = ceil.copy_gbps = 1000, ceil.gemm_tflops = 100;
    std::vector<std::string> seen;
    const auto rows = moe::bench::run(opt, ceil, [&](const moe::bench::Row& r) { seen.push_back(r.shape); });
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(seen, (std::vector<std::string>{"huge", "small"}));  // each row as soon as it is known
    EXPECT_EQ(rows[0].shape, "huge");
    EXPECT_NE(rows[0].error.find("bench w1"), std::string::npos) << rows[0].error;  // names what did not fit
    EXPECT_EQ(rows[0].median_ms, 0);
    EXPECT_EQ(rows[1].shape, "small");
    EXPECT_EQ(rows[1].error, "");
    EXPECT_EQ(rows[1].wrong, 0);
    EXPECT_GT(rows[1].median_ms, 0);
}

// The sweep's probe rows: the one that matches the roofline's bound (the weight bytes streamed alone where the
// weights bound it, cuBLAS over all rows where the FLOPs do), timed and not checked, with the FFN's own bytes or FLOPs;
// where the FLOPs bound it, also auto with every expert T·k/E rows (probe-balanced).
TEST(GpuExperts, BenchProbesMatchTheBound) {
    MOE_REQUIRE_GPU();
    moe::bench::Options opt;
    opt.stages = {"experts"};
    // 16 tokens per expert (weights bound at these ceilings), then 512 (FLOPs bound)
    opt.shapes = {{"few", 64, 256, 8, 2, 512}, {"many", 2048, 256, 8, 2, 512}};
    opt.experts_impls = {"auto"};
    opt.probes = opt.balanced = true;
    opt.warmup = 1;
    opt.repeats = 3;
    moe::bench::Ceilings ceil;
    ceil.read_gbps = ceil.copy_gbps = 1000, ceil.gemm_tflops = 100;
    const auto rows = moe::bench::run(opt, ceil, nullptr);
    ASSERT_EQ(rows.size(), 5u);                      // FLOPs bound: also auto with round-robin routing
    const double weights = 8.0 * 3 * 512 * 256 * 2;  // every expert has tokens at 16 tokens per expert and more
    for (int i = 0; i < 2; ++i) {
        const auto &ffn = rows[2 * i], &probe = rows[2 * i + 1];
        EXPECT_EQ(ffn.variant.rfind("auto:", 0), 0u) << ffn.variant;
        EXPECT_EQ(ffn.wrong, 0);
        EXPECT_EQ(probe.error, "");
        EXPECT_EQ(probe.bound, ffn.bound);
        EXPECT_EQ(probe.variant, i == 0 ? "probe-stream" : "probe-dense");
        EXPECT_EQ(probe.bound, i == 0 ? "weights" : "math");
        EXPECT_EQ(probe.wrong, -1);  // not a result: nothing to check
        EXPECT_GT(probe.median_ms, 0);
        EXPECT_NEAR(probe.floor_ms, ffn.floor_ms, 1e-12);
        if (i == 0) {
            EXPECT_NEAR(probe.bytes, weights, 1e-6);
        } else {
            EXPECT_NEAR(probe.flops, ffn.flops, 1e-3);
        }
    }
    // T·k = 4096 rows over 8 experts: 512 each, whatever the random routing gave them
    const auto& balanced = rows[4];
    EXPECT_EQ(balanced.variant, "probe-balanced");
    EXPECT_EQ(balanced.error, "");
    EXPECT_NE(balanced.note.find("every expert 512 rows"), std::string::npos) << balanced.note;
    EXPECT_EQ(balanced.note.rfind("auto (", 0), 0u) << balanced.note;
    EXPECT_GT(balanced.median_ms, 0);
    EXPECT_NEAR(balanced.flops, rows[2].flops, 1e-3);
}

// The sweep's tuning variants that `moelab bench --experts-impl` takes (no GPU needed).
TEST(GpuExperts, BenchKnowsItsTuningVariants) {
    for (const char* ok : {"decode-f1", "decode-f3", "mid-t32", "mid-t64", "mid-t128", "wgmma-t64", "wgmma-t128-n128",
                           "wgmma-t64-n256-f0", "wgmma-f1-t128", "wgmma-t128-e0"})
        EXPECT_TRUE(moe::bench::is_tuning_variant(ok)) << ok;
    for (const char* bad : {"decode-f2", "mid-t16", "wgmma", "wgmma-", "wgmma-n128", "wgmma-t96", "wgmma-t64-x",
                            "wgmma-t64-", "wgmma-t64-e2", "auto", "wgmmax-t64"})
        EXPECT_FALSE(moe::bench::is_tuning_variant(bad)) << bad;
}

#else
TEST(GpuExperts, Skipped) { GTEST_SKIP() << "no GPU to test on: " << moe::gpu::unavailable_reason(); }
#endif
