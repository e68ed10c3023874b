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

// The EP run against the CPU reference: routing (after drops) and expert counts exactly, outputs within bf16
// tolerance, and the bookkeeping (token split, traffic, drops, timeline) consistent with the api's comm:: helpers.
void expect_matches_cpu(const moe::LayerSpec& s, int G, const moe::LayerRunOptions& opt, bool exact_ids = true,
                        const moe::nccl::EpOptions& eo = {}) {
    moe::LayerRun cpu;
    moe::LayerRunOptions copt;
    copt.keep_tensors = true;
    moe::cpu::run_layer(s, copt, cpu);
    moe::nccl::EpRun ep;
    moe::nccl::run_ep_layer(s, G, opt, eo, ep);
    const auto& b = cpu.tensors;

    ASSERT_EQ(ep.ranks, G);
    EXPECT_EQ(ep.chunks, eo.chunks);
    EXPECT_EQ(ep.overlap, eo.overlap);
    // The plain run moves rows over NCCL, an overlapped one over the copy engines when asked (or auto, where they
    // work); overlapped chunks over NCCL leave SMs to the exchanges (16 unless told otherwise).
    using Tr = moe::nccl::EpOptions::Transport;
    if (!eo.overlap || eo.transport == Tr::Nccl) {
        EXPECT_EQ(ep.transport, "nccl");
    }
    if (eo.overlap && eo.transport == Tr::CopyEngines) {
        EXPECT_EQ(ep.transport, "copy engines");
    }
    EXPECT_EQ(ep.comm_sms > 0, eo.overlap && eo.chunks > 1 && eo.comm_sms != 0 && ep.transport == "nccl")
        << ep.comm_sms;
    ASSERT_EQ(int(ep.rank_stages.size()), G);
    ASSERT_EQ(int(ep.rank_layer_ms.size()), G);
    std::vector<std::string> want = {"route"};
    if (s.capacity_factor > 0) want.insert(want.end(), {"capacity", "capacity exchange"});
    want.insert(want.end(), {"counts", "dispatch", "host"});
    if (eo.wait_spans) want.push_back("wait");
    want.push_back("a2a dispatch");
    if (opt.run_experts) want.insert(want.end(), {"experts", "a2a combine", "combine"});
    std::vector<std::string> got = ep.stage_names;
    std::sort(got.begin(), got.end()), std::sort(want.begin(), want.end());
    EXPECT_EQ(got, want);
    for (int g = 0; g < G; ++g) {
        ASSERT_EQ(ep.rank_stages[g].size(), ep.stage_names.size());
        for (auto& st : ep.rank_stages[g]) {
            EXPECT_EQ(int(st.ms.size()), opt.repeats) << st.stage;
            for (double ms : st.ms) EXPECT_GE(ms, 0.0) << st.stage;
        }
        ASSERT_EQ(int(ep.rank_layer_ms[g].size()), opt.repeats);
        const double layer = *std::max_element(ep.rank_layer_ms[g].begin(), ep.rank_layer_ms[g].end());
        int a2a = 0, experts = 0;
        for (auto& sp : ep.spans) {
            if (sp.rank != g) continue;
            EXPECT_TRUE(sp.lane == "compute" || sp.lane == "comm") << sp.lane;
            EXPECT_GE(sp.start_ms, 0.0) << sp.label;
            EXPECT_GE(sp.end_ms, sp.start_ms) << sp.label;
            EXPECT_LE(sp.end_ms, layer + 1e-3) << sp.label << " ends after the layer";
            if (sp.label == "a2a dispatch") {
                EXPECT_EQ(sp.chunk, a2a++);
            }
            if (sp.label == "experts") {
                EXPECT_EQ(sp.chunk, experts++);
            }
        }
        EXPECT_EQ(a2a, eo.chunks) << "rank " << g << ": one dispatch exchange per chunk";
        if (opt.run_experts) {
            EXPECT_EQ(experts, eo.chunks);
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
    EXPECT_EQ(ep.demand, cpu.demand);
    EXPECT_EQ(ep.capacity, cpu.capacity);
    EXPECT_EQ(ep.dropped, cpu.dropped);
    auto tr = moe::comm::traffic(b.topk_ids.data(), s.tokens, s.top_k, s.experts, G, s.hidden, 2);
    EXPECT_EQ(ep.traffic, tr.tokens);
    std::int64_t received = 0;
    for (auto r : ep.rows_received) received += r;
    EXPECT_EQ(received, s.tokens * s.top_k - cpu.dropped);
    if (opt.run_experts && opt.keep_tensors) {
        EXPECT_EQ(combined_close(ep.out, b.out, b.y_packed, "out"), "");
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

// Capacity and drops over real ranks: the reference's semantics (token order and probability) over all T tokens,
// with plain and overlapped schedules.
TEST(Nccl, EpLayerWithDropsMatchesTheCpuReference) {
    MOE_REQUIRE_GPUS(2);
    moe::LayerRunOptions opt;
    opt.keep_tensors = true;
    opt.repeats = 2;
    for (int G : rank_counts())
        for (std::int64_t T : {7, 1000, 4096})
            for (double cf : {0.5, 1.0, 1.25})
                for (auto policy : {moe::DropPolicy::TokenOrder, moe::DropPolicy::Probability}) {
                    const int E = 16, k = 2;
                    if (E % G) continue;
                    const std::uint64_t seed = fresh_seed();
                    moe::LayerSpec s = spec_of(T, E, k, 256, 128, "hot:8", seed);
                    s.capacity_factor = cf;
                    s.drop_policy = policy;
                    moe::nccl::EpOptions eo;
                    eo.overlap = T == 1000;  // both schedules see drops
                    eo.chunks = eo.overlap ? 2 : 1;
                    SCOPED_TRACE("G=" + std::to_string(G) + " T=" + std::to_string(T) + " cf=" + std::to_string(cf) +
                                 (policy == moe::DropPolicy::Probability ? " probability" : " token") + " seed " +
                                 std::to_string(seed));
                    expect_matches_cpu(s, G, opt, true, eo);
                }
}

// Overlap by chunks: the exchanges split into groups of local experts on the comm stream, the experts on a compute
// stream; every chunk count from 1 to E/G, with and without the wait barriers, over NCCL and over the copy engines,
// equals the reference.
TEST(Nccl, EpLayerOverlappedChunksMatchTheCpuReference) {
    MOE_REQUIRE_GPUS(2);
    moe::LayerRunOptions opt;
    opt.keep_tensors = true;
    opt.warmup = 1;
    opt.repeats = 3;
    for (int G : rank_counts()) {
        const int E = 8 * G, El = E / G;
        for (int K = 1; K <= El; K *= 2)
            for (int mode : {0, 1, 2})  // plain, overlapped over NCCL, overlapped over the copy engines
                for (const char* skew : {"uniform", "hot:8"}) {
                    const std::uint64_t seed = fresh_seed();
                    moe::nccl::EpOptions eo;
                    eo.chunks = K, eo.overlap = mode > 0, eo.wait_spans = (K % 2) == 0;
                    eo.transport = mode == 2 ? moe::nccl::EpOptions::Transport::CopyEngines
                                             : moe::nccl::EpOptions::Transport::Nccl;
                    eo.pair_probe = K == El;
                    SCOPED_TRACE("G=" + std::to_string(G) + " chunks=" + std::to_string(K) +
                                 (mode == 0   ? " plain "
                                  : mode == 1 ? " overlap nccl "
                                              : " overlap ce ") +
                                 skew + " seed " + std::to_string(seed));
                    expect_matches_cpu(spec_of(1500, E, 2, 256, 256, skew, seed), G, opt, true, eo);
                }
    }
}

// The per-pair probe times each pair's dispatch bytes alone: a positive time wherever rows flow, none elsewhere.
TEST(Nccl, PairProbeTimesEveryPairWithTraffic) {
    MOE_REQUIRE_GPUS(2);
    for (int G : rank_counts()) {
        moe::LayerRunOptions opt;
        opt.repeats = 2;
        moe::nccl::EpOptions eo;
        eo.pair_probe = true;
        moe::nccl::EpRun ep;
        moe::nccl::run_ep_layer(spec_of(2048, 4 * G, 2, 512, 128, "uniform", fresh_seed()), G, opt, eo, ep);
        ASSERT_EQ(ep.pair_ms.size(), std::size_t(G) * G);
        for (int a = 0; a < G; ++a)
            for (int b = 0; b < G; ++b) {
                const double ms = ep.pair_ms[std::size_t(a) * G + b];
                if (a == b || ep.traffic[std::size_t(a) * G + b] == 0)
                    EXPECT_EQ(ms, 0.0) << a << "->" << b;
                else
                    EXPECT_GT(ms, 0.0) << a << "->" << b;
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
    {
        moe::nccl::EpOptions eo;
        eo.chunks = 5;  // more chunks than the 4 local experts of E=8 over 2 ranks
        auto [kind, msg] = kind_of([&] { moe::nccl::run_ep_layer(s, 2, opt, eo, run); });
        EXPECT_EQ(kind, moe::ErrorKind::BadInput) << msg;
        EXPECT_NE(msg.find("chunks"), std::string::npos) << msg;
        eo.chunks = 0;
        EXPECT_EQ(kind_of([&] { moe::nccl::run_ep_layer(s, 2, opt, eo, run); }).first, moe::ErrorKind::BadInput);
    }
    s.capacity_factor = -1.0;
    auto [kind, msg] = kind_of([&] { moe::nccl::run_ep_layer(s, 2, opt, run); });
    EXPECT_EQ(kind, moe::ErrorKind::BadInput) << msg;
    EXPECT_NE(msg.find("capacity factor"), std::string::npos) << msg;
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
