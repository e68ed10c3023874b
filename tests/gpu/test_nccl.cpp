// The nccl backend: the expert-parallel layer over G GPUs against the CPU reference, the all-to-all's pattern
// check, and its errors (bogus rank counts, refused specs, a lost peer) arriving as errors rather than hangs.
#include <algorithm>
#include <set>

#include "kernels/common/error.hpp"
#include "kernels/nccl/nccl_api.hpp"
#include "tests/gpu/gpu_test.hpp"
#if MOELAB_HAVE_NCCL
#include "kernels/nccl/comm.hpp"
#endif

using namespace gpu_test;

// Every multi-GPU test starts with this: no NCCL, fewer than n GPUs, or the sanitizer's quick mode → skipped, with
// the reason (NCCL's kernels under compute-sanitizer are not what these tests are for; scripts/gpu's nccl phase runs
// them).
#define MOE_REQUIRE_GPUS(n)                                                                                    \
    do {                                                                                                       \
        if (!moe::nccl::built()) GTEST_SKIP() << "the nccl backend is not built (no NCCL found at configure)"; \
        if (moe::nccl::usable_gpus() < (n))                                                                    \
            GTEST_SKIP() << "needs " << (n) << " GPUs for NCCL, found " << moe::nccl::usable_gpus();           \
        if (gpu_test::quick()) GTEST_SKIP() << "MOELAB_GPU_TEST_QUICK (sanitizer runs): NCCL tests skipped";   \
    } while (0)

namespace {

moe::LayerSpec spec_of(std::int64_t T, int E, int k, int d, int F, const char* skew, std::uint64_t seed) {
    moe::LayerSpec s;
    s.tokens = T, s.experts = E, s.top_k = k, s.hidden = d, s.ffn = F;
    s.skew = moe::route::parse_skew(skew);
    s.strategy = moe::Strategy::Scan;
    s.seed = seed;
    return s;
}

std::vector<int> rank_counts() {
    std::set<int> g = {2, std::max(2, moe::nccl::usable_gpus())};
    return {g.begin(), g.end()};
}

// The EP run against the CPU reference: routing and expert counts exactly, outputs within bf16 tolerance, and the
// bookkeeping (token split, traffic, timings) consistent with the api's comm:: helpers.
void expect_matches_cpu(const moe::LayerSpec& s, int G, const moe::LayerRunOptions& opt, bool exact_ids = true) {
    moe::LayerRun cpu;
    moe::LayerRunOptions copt;
    copt.keep_tensors = true;
    moe::cpu::run_layer(s, copt, cpu);
    moe::nccl::EpRun ep;
    moe::nccl::run_ep_layer(s, G, opt, ep);
    const auto& b = cpu.tensors;

    ASSERT_EQ(ep.ranks, G);
    ASSERT_EQ(int(ep.rank_stages.size()), G);
    const std::size_t nst = opt.run_experts ? 6 : 3;
    for (auto& rank : ep.rank_stages) {
        ASSERT_EQ(rank.size(), nst);
        for (auto& st : rank) {
            EXPECT_EQ(int(st.ms.size()), opt.repeats) << st.stage;
            for (double ms : st.ms) EXPECT_GE(ms, 0.0) << st.stage;
        }
    }
    for (int g = 0; g < G; ++g) {
        std::int64_t own = 0;
        for (std::int64_t t = 0; t < s.tokens; ++t) own += moe::comm::rank_of_token(t, s.tokens, G) == g;
        EXPECT_EQ(ep.rank_tokens[g], own) << "rank " << g;
    }
    if (exact_ids) {
        EXPECT_EQ(first_difference(ep.topk_ids, b.topk_ids, b.topk_ids.size(), "ids"), "");
        EXPECT_EQ(first_outside(ep.topk_w, b.topk_w, 1e-7f, 1e-5f, "weights"), "");
    } else if (ep.topk_ids != b.topk_ids) {
        GTEST_LOG_(INFO) << "gate picks differ from the CPU's on near-ties; outputs not compared";
        return;
    }
    EXPECT_EQ(ep.counts, cpu.counts);
    auto tr = moe::comm::traffic(b.topk_ids.data(), s.tokens, s.top_k, s.experts, G, s.hidden, 2);
    EXPECT_EQ(ep.traffic, tr.tokens);
    std::int64_t received = 0;
    for (auto r : ep.rows_received) received += r;
    EXPECT_EQ(received, s.tokens * s.top_k);  // dropless
    if (opt.run_experts && opt.keep_tensors) {
        EXPECT_EQ(bf16_close(ep.out, b.out, b.out.size(), "out"), "");
    }
}

}  // namespace

TEST(Nccl, EpLayerMatchesTheCpuReference) {
    MOE_REQUIRE_GPUS(2);
    moe::LayerRunOptions opt;
    opt.keep_tensors = true;
    opt.repeats = 2;
    for (int G : rank_counts())
        for (std::int64_t T : {7, 1000, 4096})
            for (int E : {8, 16}) {
                if (E % G) continue;
                for (int k : {1, 2})
                    for (const char* skew : {"uniform", "hot:8"}) {
                        const std::uint64_t seed = fresh_seed();
                        SCOPED_TRACE("G=" + std::to_string(G) + " T=" + std::to_string(T) + " E=" + std::to_string(E) +
                                     " k=" + std::to_string(k) + " skew=" + skew + " seed " + std::to_string(seed));
                        expect_matches_cpu(spec_of(T, E, k, 256, 128, skew, seed), G, opt);
                    }
            }
}

// Corners: a rank with no tokens, odd hidden sizes (scalar copies), padding, every pack strategy, the gate router,
// a top-k that reaches all of one rank's experts, and a dispatch-only run.
TEST(Nccl, EpLayerVariants) {
    MOE_REQUIRE_GPUS(2);
    struct V {
        std::int64_t T;
        int E, k, d, F;
        const char* skew;
        moe::Strategy st;
        int align;
        moe::Router router;
        bool experts;
    };
    using S = moe::Strategy;
    using R = moe::Router;
    const std::vector<V> vs = {
        {1, 8, 2, 64, 32, "uniform", S::Scan, 1, R::Popularity, true},  // rank 1 owns no token
        {3, 16, 2, 128, 64, "hot:8", S::Sort, 1, R::Popularity, true},
        {300, 8, 2, 100, 72, "zipf:1.2", S::Sort, 3, R::Popularity, true},     // d % 8 != 0, padded segments
        {1000, 16, 8, 256, 128, "hot:20", S::Atomic, 8, R::Popularity, true},  // k = E/2: every rank gets many
        {1000, 8, 2, 256, 128, "uniform", S::NoPack, 1, R::Popularity, true},  // nopack sends scan-packed rows
        {513, 16, 2, 256, 128, "zipf:1.2", S::Scan, 1, R::Gate, true},
        {4096, 16, 2, 256, 128, "hot:8", S::Scan, 1, R::Popularity, false},  // dispatch only
    };
    for (int G : rank_counts())
        for (const V& v : vs) {
            if (v.E % G) continue;
            const std::uint64_t seed = fresh_seed();
            SCOPED_TRACE("G=" + std::to_string(G) + " T=" + std::to_string(v.T) + " E=" + std::to_string(v.E) +
                         " k=" + std::to_string(v.k) + " d=" + std::to_string(v.d) + " " + v.skew + " " +
                         moe::dispatch::strategy_name(v.st) + " align " + std::to_string(v.align) +
                         (v.router == R::Gate ? " gate" : "") + " seed " + std::to_string(seed));
            moe::LayerSpec s = spec_of(v.T, v.E, v.k, v.d, v.F, v.skew, seed);
            s.strategy = v.st, s.align = v.align, s.router = v.router;
            moe::LayerRunOptions opt;
            opt.keep_tensors = true;
            opt.run_experts = v.experts;
            opt.warmup = 1;
            opt.repeats = 2;
            expect_matches_cpu(s, G, opt, v.router == R::Popularity);
        }
}

TEST(Nccl, AllToAllCarriesItsPattern) {
    MOE_REQUIRE_GPUS(2);
    const std::vector<std::size_t> sizes = {1, 4096 + 12, std::size_t(1) << 20, (std::size_t(3) << 20) + 5};
    for (int G : rank_counts()) {
        SCOPED_TRACE("G=" + std::to_string(G));
        auto pts = moe::nccl::bench_alltoall(G, sizes, 3, 60.0, 1);
        ASSERT_EQ(pts.size(), sizes.size());
        for (std::size_t i = 0; i < sizes.size(); ++i) {
            const std::size_t per_peer = std::max<std::size_t>(sizes[i] / (4 * std::size_t(G)), 1);
            EXPECT_EQ(pts[i].count, per_peer * G);
            EXPECT_EQ(pts[i].bytes_per_rank, per_peer * G * 4);
            EXPECT_EQ(pts[i].wrong, 0) << pts[i].bytes_per_rank << " bytes per rank";
            EXPECT_GT(pts[i].time_ms_median, 0.0);
            EXPECT_GE(pts[i].p95, pts[i].time_ms_median);
            EXPECT_NEAR(pts[i].busbw, pts[i].algbw * (G - 1) / G, 1e-9 * pts[i].algbw + 1e-12);
        }
    }
}

// Refusals come before any NCCL call: a bogus rank count is a clear error at once, never a hang.
TEST(Nccl, BogusRankCountsAndSpecsAreClearErrors) {
    moe::LayerSpec s = spec_of(64, 8, 2, 64, 32, "uniform", 1);
    moe::LayerRunOptions opt;
    moe::nccl::EpRun run;
    auto kind_of = [&](auto&& call) {
        try {
            call();
        } catch (const moe::Error& e) {
            return std::make_pair(e.kind(), std::string(e.what()));
        }
        return std::make_pair(moe::ErrorKind::Runtime, std::string("no error"));
    };
    if (!moe::nccl::built()) {
        auto [kind, msg] = kind_of([&] { moe::nccl::run_ep_layer(s, 2, opt, run); });
        EXPECT_EQ(kind, moe::ErrorKind::NoDevice) << msg;
        EXPECT_NE(msg.find("NCCL"), std::string::npos) << msg;
        GTEST_SKIP() << "the nccl backend is not built: only its NoDevice error was checked";
    }
    const int gpus = moe::nccl::usable_gpus();
    {
        s.experts = 8 * (gpus + 1);  // divisible, so the refusal is about the GPUs
        auto [kind, msg] = kind_of([&] { moe::nccl::run_ep_layer(s, gpus + 1, opt, run); });
        EXPECT_EQ(kind, moe::ErrorKind::NoDevice) << msg;
        EXPECT_NE(msg.find("found"), std::string::npos) << msg;
        s.experts = 8;
    }
    {
        auto [kind, msg] = kind_of([&] { moe::nccl::bench_alltoall(gpus + 7, {1024}, 1, 5.0); });
        EXPECT_EQ(kind, moe::ErrorKind::NoDevice) << msg;
        EXPECT_NE(msg.find(std::to_string(gpus + 7)), std::string::npos) << msg;
    }
    EXPECT_EQ(kind_of([&] { moe::nccl::run_ep_layer(s, 0, opt, run); }).first, moe::ErrorKind::BadInput);
    EXPECT_EQ(kind_of([&] { moe::nccl::run_ep_layer(s, 3, opt, run); }).first, moe::ErrorKind::BadInput);  // 8 % 3
    s.capacity_factor = 1.0;
    auto [kind, msg] = kind_of([&] { moe::nccl::run_ep_layer(s, 2, opt, run); });
    EXPECT_EQ(kind, moe::ErrorKind::BadInput) << msg;
    EXPECT_NE(msg.find("dropless"), std::string::npos) << msg;
    EXPECT_EQ(kind_of([&] { moe::nccl::set_timeout_s(0); }).first, moe::ErrorKind::BadInput);
}

#if MOELAB_HAVE_NCCL
// A send nobody receives: the wait gives up at the deadline, the communicator is aborted (its kernel quits), and
// the next run makes a fresh communicator and works.
TEST(Nccl, LostPeerTimesOutInsteadOfHanging) {
    MOE_REQUIRE_GPUS(2);
    using namespace moe::nccl;
    const double saved = timeout_s();
    set_timeout_s(3.0);
    {
        auto lock = shared_lock();
        DeviceRestore restore;
        Communicator& c = shared_communicator(2);
        // Small sends can complete into NCCL's own buffers with no receiver (seen on 2×H200 with 1 MiB), so the
        // message is far larger than any internal buffer.
        const std::size_t bytes = std::size_t(256) << 20;
        void* buf = nullptr;
        c.use(0);
        ASSERT_EQ(cudaMalloc(&buf, bytes), cudaSuccess);
        ASSERT_EQ(ncclGroupStart(), ncclSuccess);
        ncclResult_t res = ncclSend(buf, bytes, ncclUint8, 1, c.comm(0), c.stream(0));
        ncclGroupEnd();
        EXPECT_TRUE(res == ncclSuccess || res == ncclInProgress) << ncclGetErrorString(res);
        try {
            c.wait_ready("the unmatched send");
            c.wait_streams("the unmatched send");
            ADD_FAILURE() << "a send with no receiver completed";
        } catch (const moe::Error& e) {
            EXPECT_EQ(e.kind(), moe::ErrorKind::Runtime) << e.what();
            EXPECT_NE(std::string(e.what()).find("timed out"), std::string::npos) << e.what();
        }
        EXPECT_TRUE(c.aborted());
        c.use(0);
        cudaFree(buf);
    }
    drop_shared_communicator();  // whatever happened above, the next run starts from a fresh communicator
    set_timeout_s(saved);
    moe::LayerRunOptions opt;
    opt.keep_tensors = true;
    expect_matches_cpu(spec_of(100, 8, 2, 64, 32, "uniform", fresh_seed()), 2, opt);
}
#endif
