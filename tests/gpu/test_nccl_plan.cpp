// The expert-parallel layer's bookkeeping emulated on the host, no GPU needed: each rank's packing, the all-to-all's
// layout convention, the receive plan and its segment copies, checked bit for bit against the CPU reference layer.
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
using Rows = std::vector<std::vector<std::int64_t>>;

// alltoallv's convention (kernels/nccl/comm.hpp): rank s's rows for r are consecutive in peer order in its send
// buffer; rank r receives them in source order.
std::vector<std::vector<bf16_t>> exchange(const std::vector<std::vector<bf16_t>>& send, const Rows& send_rows,
                                          const Rows& recv_rows, int d) {
    const int G = int(send.size());
    std::vector<std::vector<bf16_t>> recv(G);
    for (int r = 0; r < G; ++r) {
        std::int64_t total = 0;
        for (int s = 0; s < G; ++s) total += recv_rows[r][s];
        recv[r].assign(std::size_t(total) * d, 0xFFFF);
    }
    for (int s = 0; s < G; ++s)
        for (int r = 0; r < G; ++r) {
            EXPECT_EQ(send_rows[s][r], recv_rows[r][s]);
            std::int64_t so = 0, ro = 0;
            for (int p = 0; p < r; ++p) so += send_rows[s][p];
            for (int q = 0; q < s; ++q) ro += recv_rows[r][q];
            std::copy(send[s].begin() + so * d, send[s].begin() + (so + send_rows[s][r]) * d, recv[r].begin() + ro * d);
        }
    return recv;
}

// The host twin of copy_segments_kernel (kernels/nccl/ep_kernels.cu).
void copy_segments(const std::vector<bf16_t>& src, std::vector<bf16_t>& dst, int d, const std::vector<std::int32_t>& ds,
                   const std::vector<std::int32_t>& ss, std::int64_t rows, std::vector<std::int32_t>* tag) {
    ASSERT_EQ(ds.size(), ss.size() + 1);
    ASSERT_EQ(ds.back(), rows);
    dst.assign(std::size_t(rows) * d, 0xFFFF);
    if (tag) tag->assign(std::size_t(rows), -2);
    for (std::size_t j = 0; j < ss.size(); ++j) {
        ASSERT_LT(ds[j], ds[j + 1]) << "empty or unordered segment " << j;
        for (std::int64_t row = ds[j]; row < ds[j + 1]; ++row) {
            if (tag) (*tag)[row] = ss[j] < 0 ? -1 : std::int32_t(j);
            for (int i = 0; i < d; ++i)
                dst[row * d + i] = ss[j] < 0 ? bf16_t(0) : src.at((std::int64_t(ss[j]) + row - ds[j]) * d + i);
        }
    }
}

void check_case(std::int64_t T, int E, int k, int d, int F, int G, int align, const char* skew, std::uint64_t seed) {
    SCOPED_TRACE("T=" + std::to_string(T) + " E=" + std::to_string(E) + " k=" + std::to_string(k) +
                 " d=" + std::to_string(d) + " G=" + std::to_string(G) + " align=" + std::to_string(align) + " " +
                 skew + " seed " + std::to_string(seed));
    moe::LayerSpec s;
    s.tokens = T, s.experts = E, s.top_k = k, s.hidden = d, s.ffn = F, s.align = align, s.seed = seed;
    s.skew = moe::route::parse_skew(skew);
    moe::LayerRunOptions opt;
    opt.keep_tensors = true;
    opt.threads = 2;
    moe::LayerRun ref;
    moe::cpu::run_layer(s, opt, ref);
    const auto& t = ref.tensors;
    std::vector<bf16_t> w1(std::size_t(E) * 2 * F * d), w2(std::size_t(E) * d * F);
    moe::experts::make_w1(seed, E, F, d, w1.data());
    moe::experts::make_w2(seed, E, d, F, w2.data());
    const int El = E / G;

    // Send side: each rank packs its own tokens over all E experts with align 1.
    std::vector<std::int64_t> t0(G), Tg(G);
    std::vector<std::vector<std::int32_t>> counts(G), inv(G);
    std::vector<std::vector<bf16_t>> xs(G);
    Rows send_rows(G, std::vector<std::int64_t>(G)), recv_rows = send_rows;
    for (int g = 0; g < G; ++g) {
        t0[g] = moe::nccl::token_begin(g, T, G);
        Tg[g] = moe::nccl::token_begin(g + 1, T, G) - t0[g];
        for (std::int64_t tok = t0[g]; tok < t0[g] + Tg[g]; ++tok) ASSERT_EQ(moe::comm::rank_of_token(tok, T, G), g);
        const std::int32_t* ids = t.topk_ids.data() + t0[g] * k;
        counts[g].resize(E);
        std::vector<std::int32_t> offsets(E + 1), row_token(std::max<std::int64_t>(Tg[g] * k, 1));
        inv[g].resize(std::max<std::int64_t>(Tg[g] * k, 1));
        std::int64_t rows =
            moe::dispatch::plan(ids, Tg[g], k, E, 1, counts[g].data(), offsets.data(), row_token.data(), inv[g].data());
        xs[g].resize(std::size_t(rows) * d);
        moe::dispatch::pack(t.x.data() + t0[g] * d, row_token.data(), rows, d, xs[g].data());
        for (int p = 0; p < G; ++p) send_rows[g][p] = offsets[(p + 1) * El] - offsets[p * El];
    }
    // Counts: rank r receives from s the counts of r's experts.
    std::vector<std::vector<std::int32_t>> got(G, std::vector<std::int32_t>(std::size_t(G) * El));
    for (int r = 0; r < G; ++r)
        for (int s2 = 0; s2 < G; ++s2)
            for (int el = 0; el < El; ++el) got[r][s2 * El + el] = counts[s2][r * El + el];
    for (int r = 0; r < G; ++r)
        for (int p = 0; p < G; ++p)
            recv_rows[r][p] = std::accumulate(got[r].begin() + p * El, got[r].begin() + (p + 1) * El, std::int64_t(0));

    auto xr = exchange(xs, send_rows, recv_rows, d);
    std::vector<std::vector<bf16_t>> yr(G);
    for (int r = 0; r < G; ++r) {
        auto P = moe::nccl::plan_receive(got[r].data(), G, El, align);
        EXPECT_EQ(P.R, std::int64_t(xr[r].size()) / d);
        EXPECT_EQ(std::accumulate(P.loc_counts.begin(), P.loc_counts.end(), std::int64_t(0)), P.R);
        for (int el = 0; el < El; ++el) {
            EXPECT_EQ(P.loc_counts[el], ref.counts[r * El + el]);
            EXPECT_EQ((P.loc_offsets[el + 1] - P.loc_offsets[el]) % align, 0);
        }
        std::vector<bf16_t> xe, ye(std::size_t(P.P) * d, 0xFFFF);
        std::vector<std::int32_t> tag;
        copy_segments(xr[r], xe, d, P.fwd_dst, P.fwd_src, P.P, &tag);
        for (auto v : tag) ASSERT_GE(v, -1);
        EXPECT_EQ(std::count(tag.begin(), tag.end(), -1), P.P - P.R);  // padding, and only padding, is tagged −1
        // Expert e's rows are the reference's packed rows of e, in the same order (tokens ascending).
        for (int el = 0; el < El; ++el) {
            const int e = r * El + el;
            for (std::int32_t i = 0; i < P.loc_counts[el]; ++i) {
                const std::int32_t tok = t.row_token[t.offsets[e] + i];
                ASSERT_GE(tok, 0);
                ASSERT_TRUE(std::equal(xe.begin() + (P.loc_offsets[el] + i) * d,
                                       xe.begin() + (P.loc_offsets[el] + i + 1) * d, t.x.begin() + tok * d))
                    << "expert " << e << " row " << i;
                EXPECT_GE(tag[P.loc_offsets[el] + i], 0);
            }
        }
        if (P.P > 0)
            moe::experts::ffn(xe.data(), nullptr, nullptr, P.loc_counts.data(), P.loc_offsets.data(), El, d, F,
                              w1.data() + std::size_t(r) * El * 2 * F * d, w2.data() + std::size_t(r) * El * d * F,
                              ye.data(), 2);
        copy_segments(ye, yr[r], d, P.bwd_dst, P.bwd_src, P.R, nullptr);
    }
    auto yback = exchange(yr, recv_rows, send_rows, d);
    for (int g = 0; g < G; ++g) {
        if (Tg[g] == 0) continue;
        std::vector<bf16_t> out(std::size_t(Tg[g]) * d);
        moe::combine::gather(yback[g].data(), inv[g].data(), t.topk_w.data() + t0[g] * k, Tg[g], k, d, out.data());
        // Same rows in the same order per expert as the reference: the same arithmetic, so the same bits.
        ASSERT_TRUE(std::equal(out.begin(), out.end(), t.out.begin() + t0[g] * d)) << "rank " << g;
    }
}

}  // namespace

TEST(NcclPlan, EmulatedRanksMatchTheCpuReferenceBitForBit) {
    std::mt19937_64 rng(gpu_test::fresh_seed());  // MOELAB_TEST_SEED reproduces a run
    for (int G : {1, 2, 3, 4, 8})
        for (std::int64_t T : {1, 7, 300, 1000})
            for (int E : {8, 16, 24})
                for (int k : {1, 2, 8}) {
                    if (E % G || k > E) continue;
                    const int align = std::array<int, 3>{1, 3, 8}[rng() % 3];
                    const char* skew = std::array<const char*, 3>{"uniform", "hot:8", "zipf:1.2"}[rng() % 3];
                    const int d = (rng() % 2) ? 40 : 36;
                    check_case(T, E, k, d, 24, G, align, skew, rng());
                    if (HasFatalFailure()) return;
                }
}
