// The NCCL expert-parallel layer's plans and schedules, emulated on the host (no GPU): drops over all ranks from
// the all-gathered, padded slots, and the exchanges split into chunks of local experts, each rank's chunk plan
// checked against the CPU reference bit for bit. kernels/nccl/ep_layer.cu runs exactly these plans on the GPUs.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <numeric>
#include <random>
#include <string>

#include "kernels/api.hpp"
#include "kernels/nccl/recv_plan.hpp"
#include "tests/gpu/gpu_test.hpp"

namespace {

using moe::bf16_t;
using moe::nccl::ChunkPlan;
using moe::nccl::token_begin;

// The host twin of copy_segments_kernel (kernels/nccl/ep_kernels.cu), writing into dst at row `base`.
void copy_segments(const bf16_t* src, std::vector<bf16_t>& dst, std::int64_t base, int d,
                   const std::vector<std::int32_t>& ds, const std::vector<std::int32_t>& ss, std::int64_t rows) {
    ASSERT_EQ(ds.size(), ss.size() + 1);
    ASSERT_EQ(ds.back(), rows);
    for (std::size_t j = 0; j < ss.size(); ++j) {
        ASSERT_LT(ds[j], ds[j + 1]) << "empty or unordered segment " << j;
        for (std::int64_t row = ds[j]; row < ds[j + 1]; ++row)
            for (int i = 0; i < d; ++i)
                dst.at((base + row) * d + i) = ss[j] < 0 ? bf16_t(0) : src[(std::int64_t(ss[j]) + row - ds[j]) * d + i];
    }
}

// The drops of ep_layer.cu: every rank's ids and weights in slots of Tmax tokens (padding id −1), the reference's
// apply_capacity over the slots, each rank's slot back. Must equal the reference's drops over the T tokens.
std::vector<std::int32_t> drops_over_slots(const std::vector<std::int32_t>& ids, const std::vector<float>& w,
                                           std::int64_t T, int k, int E, int G, std::int64_t cap,
                                           moe::DropPolicy policy, std::vector<std::int64_t>* demand) {
    const std::int64_t Tmax = std::max<std::int64_t>(token_begin(1, T, G), 1);
    std::vector<std::int32_t> all(std::size_t(G) * Tmax * k, -1);
    std::vector<float> wall(all.size(), 0.f);
    for (int g = 0; g < G; ++g) {
        const std::int64_t t0 = token_begin(g, T, G), n = token_begin(g + 1, T, G) - t0;
        EXPECT_LE(n, Tmax);
        std::copy(ids.begin() + t0 * k, ids.begin() + (t0 + n) * k, all.begin() + std::size_t(g) * Tmax * k);
        std::copy(w.begin() + t0 * k, w.begin() + (t0 + n) * k, wall.begin() + std::size_t(g) * Tmax * k);
    }
    demand->assign(E, 0);
    for (auto e : all)
        if (e >= 0) ++(*demand)[e];
    moe::route::apply_capacity(all.data(), wall.data(), G * Tmax, k, E, cap, policy);
    std::vector<std::int32_t> out(ids.size());
    for (int g = 0; g < G; ++g) {
        const std::int64_t t0 = token_begin(g, T, G), n = token_begin(g + 1, T, G) - t0;
        std::copy(all.begin() + std::size_t(g) * Tmax * k, all.begin() + (std::size_t(g) * Tmax + n) * k,
                  out.begin() + t0 * k);
        for (std::int64_t i = n * k; i < Tmax * k; ++i) EXPECT_EQ(all[std::size_t(g) * Tmax * k + i], -1);
    }
    return out;
}

struct Case {
    std::int64_t T;
    int E, k, d, F, G, align, K;
    const char* skew;
    double cf;
    moe::DropPolicy policy;
    std::uint64_t seed;
};

std::string name_of(const Case& c) {
    return "T=" + std::to_string(c.T) + " E=" + std::to_string(c.E) + " k=" + std::to_string(c.k) +
           " d=" + std::to_string(c.d) + " G=" + std::to_string(c.G) + " align=" + std::to_string(c.align) +
           " chunks=" + std::to_string(c.K) + " " + c.skew + " cf=" + std::to_string(c.cf) +
           (c.policy == moe::DropPolicy::Probability ? " probability" : " token") + " seed " + std::to_string(c.seed);
}

void check_case(const Case& c) {
    SCOPED_TRACE(name_of(c));
    moe::LayerSpec s;
    s.tokens = c.T, s.experts = c.E, s.top_k = c.k, s.hidden = c.d, s.ffn = c.F, s.align = c.align, s.seed = c.seed;
    s.skew = moe::route::parse_skew(c.skew);
    s.capacity_factor = c.cf;
    s.drop_policy = c.policy;
    moe::LayerRunOptions opt;
    opt.keep_tensors = true;
    opt.threads = 2;
    moe::LayerRun ref;
    moe::cpu::run_layer(s, opt, ref);
    const auto& t = ref.tensors;
    const int G = c.G, E = c.E, k = c.k, d = c.d, F = c.F, El = E / G, K = c.K;
    const std::int64_t T = c.T;

    // Routing before drops (the reference's, recomputed), then the drops over the all-gathered slots.
    std::vector<float> logits(std::size_t(T) * E), w(std::size_t(T) * k);
    std::vector<std::int32_t> ids(std::size_t(T) * k);
    auto logp = moe::route::log_popularity(s.skew, E);
    moe::route::popularity_logits(c.seed, logp.data(), T, E, logits.data());
    moe::route::softmax_topk(logits.data(), T, E, k, s.renormalize, ids.data(), w.data());
    const std::int64_t cap = moe::route::capacity(c.cf, T, k, E);
    if (cap > 0) {
        std::vector<std::int64_t> demand;
        ids = drops_over_slots(ids, w, T, k, E, G, cap, c.policy, &demand);
        EXPECT_EQ(demand, ref.demand);
    }
    ASSERT_EQ(ids, t.topk_ids) << "drops over the padded slots differ from the reference's";
    EXPECT_EQ(w, t.topk_w);

    std::vector<bf16_t> w1(std::size_t(E) * 2 * F * d), w2(std::size_t(E) * d * F);
    moe::experts::make_w1(c.seed, E, F, d, w1.data());
    moe::experts::make_w2(c.seed, E, d, F, w2.data());

    // Send side: each rank packs its own kept rows over all E experts, align 1.
    std::vector<std::int64_t> t0(G), Tg(G);
    std::vector<std::vector<std::int32_t>> own(G), inv(G);
    std::vector<std::vector<bf16_t>> xs(G);
    for (int g = 0; g < G; ++g) {
        t0[g] = token_begin(g, T, G), Tg[g] = token_begin(g + 1, T, G) - t0[g];
        own[g].resize(E);
        std::vector<std::int32_t> offsets(E + 1), row_token(std::max<std::int64_t>(Tg[g] * k, 1));
        inv[g].resize(std::max<std::int64_t>(Tg[g] * k, 1));
        std::int64_t rows = moe::dispatch::plan(ids.data() + t0[g] * k, Tg[g], k, E, 1, own[g].data(), offsets.data(),
                                                row_token.data(), inv[g].data());
        xs[g].resize(std::size_t(rows) * d);
        moe::dispatch::pack(t.x.data() + t0[g] * d, row_token.data(), rows, d, xs[g].data());
    }
    // The counts all-to-all: rank r receives from s the counts of r's experts.
    std::vector<std::vector<std::int32_t>> got(G, std::vector<std::int32_t>(std::size_t(G) * El));
    for (int r = 0; r < G; ++r)
        for (int s2 = 0; s2 < G; ++s2)
            for (int el = 0; el < El; ++el) got[r][s2 * El + el] = own[s2][r * El + el];
    std::vector<std::vector<ChunkPlan>> plans(G);
    std::vector<std::int64_t> Rtot(G, 0), Ptot(G, 0);
    for (int g = 0; g < G; ++g) {
        plans[g] = moe::nccl::plan_chunks(own[g].data(), got[g].data(), G, El, K, c.align);
        ASSERT_EQ(int(plans[g].size()), K);
        for (int i = 0; i < K; ++i) {
            const ChunkPlan& ck = plans[g][i];
            EXPECT_EQ(ck.e0, i == 0 ? 0 : plans[g][i - 1].e1);
            EXPECT_LT(ck.e0, ck.e1);  // every chunk holds at least one expert
            EXPECT_EQ(ck.r_base, Rtot[g]);
            EXPECT_EQ(ck.p_base, Ptot[g]);
            Rtot[g] += ck.recv.R, Ptot[g] += ck.recv.P;
        }
        EXPECT_EQ(plans[g].back().e1, El);
        // The bound ep_setup.cu (ep_shape) sizes its receive buffers with, so that no size waits for the host.
        std::int64_t bound = T * std::min(k, El);
        if (cap > 0) bound = std::min(bound, cap * El);
        EXPECT_LE(Rtot[g], bound);
        EXPECT_LE(Ptot[g], bound + std::int64_t(El) * (c.align - 1));
    }
    // Chunk by chunk: each pair's counts agree on both sides, the sender's runs tile its packed rows exactly once.
    std::vector<std::vector<bf16_t>> xr(G), yr(G), yback(G);
    for (int g = 0; g < G; ++g) xr[g].assign(std::size_t(Rtot[g]) * d, 0xFFFF), yr[g] = xr[g];
    for (int g = 0; g < G; ++g) yback[g].assign(xs[g].size(), 0xFFFF);
    std::vector<std::vector<int>> covered(G);
    for (int g = 0; g < G; ++g) covered[g].assign(xs[g].size() / std::max(d, 1), 0);
    for (int i = 0; i < K; ++i)
        for (int src = 0; src < G; ++src)
            for (int dst = 0; dst < G; ++dst) {
                const ChunkPlan& a = plans[src][i];
                const ChunkPlan& b = plans[dst][i];
                ASSERT_EQ(a.send_rows[dst], b.recv_rows[src]) << "chunk " << i << " " << src << "->" << dst;
                for (std::int64_t r = 0; r < a.send_rows[dst]; ++r) ++covered[src].at(a.send_off[dst] + r);
                std::copy(xs[src].begin() + a.send_off[dst] * d,
                          xs[src].begin() + (a.send_off[dst] + a.send_rows[dst]) * d,
                          xr[dst].begin() + b.recv_off[src] * d);
            }
    for (int g = 0; g < G; ++g)
        for (int v : covered[g]) ASSERT_EQ(v, 1) << "rank " << g << ": a packed row is sent " << v << " times";

    // Receive side: each chunk regrouped by expert, its experts' FFN, back to source-major.
    for (int g = 0; g < G; ++g) {
        std::vector<bf16_t> xe(std::size_t(std::max<std::int64_t>(Ptot[g], 1)) * d, 0xFFFF), ye = xe;
        for (int i = 0; i < K; ++i) {
            const ChunkPlan& ck = plans[g][i];
            const auto& P = ck.recv;
            const int n = ck.e1 - ck.e0;
            copy_segments(xr[g].data() + ck.r_base * d, xe, ck.p_base, d, P.fwd_dst, P.fwd_src, P.P);
            for (int el = 0; el < n; ++el) {
                const int e = g * El + ck.e0 + el;
                EXPECT_EQ(P.loc_counts[el], ref.counts[e]) << "expert " << e;
                for (std::int32_t r = 0; r < P.loc_counts[el]; ++r) {
                    const std::int32_t tok = t.row_token[t.offsets[e] + r];
                    ASSERT_TRUE(std::equal(xe.begin() + (ck.p_base + P.loc_offsets[el] + r) * d,
                                           xe.begin() + (ck.p_base + P.loc_offsets[el] + r + 1) * d,
                                           t.x.begin() + std::int64_t(tok) * d))
                        << "expert " << e << " row " << r;
                }
            }
            if (P.P > 0)
                moe::experts::ffn(xe.data() + ck.p_base * d, nullptr, nullptr, P.loc_counts.data(),
                                  P.loc_offsets.data(), n, d, F, w1.data() + std::size_t(g * El + ck.e0) * 2 * F * d,
                                  w2.data() + std::size_t(g * El + ck.e0) * d * F, ye.data() + ck.p_base * d, 2);
            copy_segments(ye.data() + ck.p_base * d, yr[g], ck.r_base, d, P.bwd_dst, P.bwd_src, P.R);
        }
    }
    // Combine direction: the chunk plans transposed.
    for (int i = 0; i < K; ++i)
        for (int src = 0; src < G; ++src)
            for (int dst = 0; dst < G; ++dst) {
                const ChunkPlan& a = plans[src][i];  // the token owner
                const ChunkPlan& b = plans[dst][i];  // the expert owner, returning
                std::copy(yr[dst].begin() + b.recv_off[src] * d,
                          yr[dst].begin() + (b.recv_off[src] + b.recv_rows[src]) * d,
                          yback[src].begin() + a.send_off[dst] * d);
            }
    for (int g = 0; g < G; ++g) {
        if (Tg[g] == 0) continue;
        std::vector<bf16_t> out(std::size_t(Tg[g]) * d);
        moe::combine::gather(yback[g].data(), inv[g].data(), t.topk_w.data() + t0[g] * k, Tg[g], k, d, out.data());
        ASSERT_TRUE(std::equal(out.begin(), out.end(), t.out.begin() + t0[g] * d)) << "rank " << g;
    }
}

}  // namespace

TEST(NcclChunks, ChunkBoundariesCoverEveryLocalExpertOnce) {
    for (int El = 1; El <= 40; ++El)
        for (int K = 1; K <= El; ++K) {
            std::vector<int> seen(El, 0);
            for (int i = 0; i < K; ++i) {
                const int a = moe::nccl::chunk_begin(i, El, K), b = moe::nccl::chunk_begin(i + 1, El, K);
                ASSERT_LT(a, b) << "El=" << El << " K=" << K << " chunk " << i << " is empty";
                for (int e = a; e < b; ++e) ++seen[e];
            }
            for (int v : seen) ASSERT_EQ(v, 1) << "El=" << El << " K=" << K;
        }
}

// Dropless and with drops (both policies), chunks from 1 to E/G: the emulated ranks equal the reference bit for
// bit (each expert sees the same rows in the same order, so the same arithmetic).
TEST(NcclChunks, EmulatedChunkedRanksWithDropsMatchTheCpuReference) {
    std::mt19937_64 rng(gpu_test::fresh_seed());  // MOELAB_TEST_SEED reproduces a run
    int cases = 0;
    for (int G : {1, 2, 3, 4})
        for (std::int64_t T : {1, 7, 300, 1000})
            for (int E : {8, 12, 24})
                for (int k : {1, 2, 6}) {
                    if (E % G || k > E) continue;
                    const int El = E / G;
                    Case c;
                    c.T = T, c.E = E, c.k = k, c.G = G;
                    c.d = (rng() % 2) ? 40 : 36;
                    c.F = 24;
                    c.align = std::array<int, 3>{1, 3, 8}[rng() % 3];
                    c.K = 1 + int(rng() % El);
                    c.skew = std::array<const char*, 3>{"uniform", "hot:8", "zipf:1.2"}[rng() % 3];
                    c.cf = std::array<double, 4>{0.0, 0.5, 1.0, 1.25}[rng() % 4];
                    c.policy = (rng() % 2) ? moe::DropPolicy::Probability : moe::DropPolicy::TokenOrder;
                    c.seed = rng();
                    check_case(c);
                    ++cases;
                    if (HasFatalFailure()) return;
                }
    EXPECT_GT(cases, 50);
}

// The corners the random draw may miss: every chunk count on one shape, heavy drops, a rank with no token.
TEST(NcclChunks, CornersOfChunksAndDrops) {
    const std::uint64_t seed = gpu_test::fresh_seed();
    for (int K = 1; K <= 8; ++K)
        check_case({500, 16, 2, 32, 16, 2, 1, K, "hot:8", 1.0, moe::DropPolicy::TokenOrder, seed + K});
    check_case({1000, 8, 2, 32, 16, 2, 3, 2, "hot:20", 0.25, moe::DropPolicy::Probability, seed});  // most dropped
    check_case({1000, 8, 2, 32, 16, 2, 1, 4, "hot:20", 0.25, moe::DropPolicy::TokenOrder, seed});
    check_case({1, 8, 2, 32, 16, 2, 1, 2, "uniform", 1.0, moe::DropPolicy::TokenOrder, seed});  // rank 1 has no token
    check_case({3, 16, 8, 32, 16, 4, 2, 4, "uniform", 0.5, moe::DropPolicy::Probability, seed});
}
