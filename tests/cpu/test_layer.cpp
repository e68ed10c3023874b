// Properties of the CPU reference layer: counts, the packed order as a bijection, padded offsets,
// identity experts, E = 1 as a dense FFN, and the expert-parallel traffic matrix.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <set>

#include "kernels/api.hpp"
#include "kernels/common/rng.hpp"

using namespace moe;

namespace {
LayerRun run_small(LayerSpec s, bool experts = true) {
    LayerRunOptions o;
    o.keep_tensors = true;
    o.run_experts = experts;
    LayerRun r;
    cpu::run_layer(s, o, r);
    return r;
}
LayerSpec small_spec(std::int64_t T, int E, int k, int d, int F, const char* skew = "zipf:1.2") {
    LayerSpec s;
    s.tokens = T, s.experts = E, s.top_k = k, s.hidden = d, s.ffn = F;
    s.skew = route::parse_skew(skew);
    s.seed = 42;
    return s;
}
}  // namespace

TEST(Dispatch, PaddedOffsetsGolden) {
    // T=4, k=2, E=3, align 4. Assignments (t, j): (0:0,2) (1:1,0) (2:2,-1) (3:0,1)
    std::vector<std::int32_t> ids = {0, 2, 1, 0, 2, -1, 0, 1};
    std::vector<std::int32_t> counts(3), offsets(4), row_token(dispatch::max_rows(4, 2, 3, 4)), inv(8);
    auto rows = dispatch::plan(ids.data(), 4, 2, 3, 4, counts.data(), offsets.data(), row_token.data(), inv.data());
    EXPECT_EQ(counts, (std::vector<std::int32_t>{3, 2, 2}));
    EXPECT_EQ(offsets, (std::vector<std::int32_t>{0, 4, 8, 12}));
    EXPECT_EQ(rows, 12);
    // Expert 0: tokens 0, 1, 3 then one pad row; expert 1: tokens 1, 3; expert 2: tokens 0, 2.
    std::vector<std::int32_t> want = {0, 1, 3, -1, 1, 3, -1, -1, 0, 2, -1, -1};
    row_token.resize(rows);
    EXPECT_EQ(row_token, want);
    EXPECT_EQ(inv, (std::vector<std::int32_t>{0, 8, 4, 1, 9, -1, 2, 5}));
}

TEST(Layer, CountsSumToTkAndPlanIsABijection) {
    for (int align : {1, 8}) {
        auto s = small_spec(777, 16, 3, 32, 16);
        s.align = align;
        auto r = run_small(s, false);
        const auto& t = r.tensors;
        EXPECT_EQ(std::accumulate(t.counts.begin(), t.counts.end(), 0ll), 777ll * 3);
        EXPECT_EQ(r.dropped, 0);
        std::set<std::int32_t> seen;
        for (std::int64_t a = 0; a < 777 * 3; ++a) {
            std::int32_t row = t.inv[a];
            ASSERT_GE(row, 0);
            EXPECT_TRUE(seen.insert(row).second) << "row used twice";
            EXPECT_EQ(t.row_token[row], a / 3) << "inverse map does not round-trip";
            int e = t.topk_ids[a];
            EXPECT_GE(row, t.offsets[e]);
            EXPECT_LT(row, t.offsets[e] + t.counts[e]);
        }
        for (int e = 0; e < 16; ++e) {
            EXPECT_EQ(t.offsets[e] % align, 0);
            for (int r2 = t.offsets[e] + 1; r2 < t.offsets[e] + t.counts[e]; ++r2)
                EXPECT_LT(t.row_token[r2 - 1], t.row_token[r2]) << "tokens ascend inside an expert";
        }
    }
}

TEST(Layer, CapacityDropsAreCountedAndSkipped) {
    auto s = small_spec(1000, 8, 2, 16, 8, "hot:20");
    s.capacity_factor = 1.0;
    for (auto pol : {DropPolicy::TokenOrder, DropPolicy::Probability}) {
        s.drop_policy = pol;
        auto r = run_small(s);
        EXPECT_EQ(r.capacity, 250);
        EXPECT_GT(r.dropped, 0);
        std::int64_t kept = std::accumulate(r.counts.begin(), r.counts.end(), 0ll);
        EXPECT_EQ(kept + r.dropped, 2000);
        for (auto c : r.counts) EXPECT_LE(c, 250);
        std::int64_t neg = std::count(r.tensors.inv.begin(), r.tensors.inv.end(), -1);
        EXPECT_EQ(neg, r.dropped);
        EXPECT_EQ(std::accumulate(r.demand.begin(), r.demand.end(), 0ll), 2000);
    }
}

// With w1 picking x through the gate and up halves and w2 undoing it, each expert is close to an identity
// map, so combine gives Σ_j w_j·x. Here we check the combine alone with Y = packed x.
TEST(Layer, IdentityExpertsCombineToWeightedX) {
    auto s = small_spec(300, 8, 2, 64, 32);
    auto r = run_small(s, false);
    const auto& t = r.tensors;
    std::vector<bf16_t> xp(r.rows * 64), out(300 * 64);
    dispatch::pack(t.x.data(), t.row_token.data(), r.rows, 64, xp.data());
    combine::gather(xp.data(), t.inv.data(), t.topk_w.data(), 300, 2, 64, out.data());
    for (int tok = 0; tok < 300; ++tok)
        for (int i = 0; i < 64; ++i) {
            float x = bf16_to_f32(t.x[tok * 64 + i]);
            float want = (t.topk_w[tok * 2] + t.topk_w[tok * 2 + 1]) * x;
            float got = bf16_to_f32(out[tok * 64 + i]);
            EXPECT_NEAR(got, want, 1e-6 + std::fabs(want) * kBf16Eps);
        }
}

// E = 1, k = 1: the layer is a dense SiLU-gated FFN on every token with weight 1.
TEST(Layer, OneExpertEqualsDenseFfn) {
    const int d = 24, F = 40;
    auto s = small_spec(37, 1, 1, d, F, "uniform");
    auto r = run_small(s);
    const auto& t = r.tensors;
    std::vector<bf16_t> w1(2 * F * d), w2(d * F);
    experts::make_w1(s.seed, 1, F, d, w1.data());
    experts::make_w2(s.seed, 1, d, F, w2.data());
    for (int tok = 0; tok < 37; ++tok) {
        std::vector<float> h(F);
        for (int f = 0; f < F; ++f) {
            double g = 0, u = 0;
            for (int i = 0; i < d; ++i) {
                g += double(bf16_to_f32(t.x[tok * d + i])) * bf16_to_f32(w1[f * d + i]);
                u += double(bf16_to_f32(t.x[tok * d + i])) * bf16_to_f32(w1[(F + f) * d + i]);
            }
            float gb = round_bf16(float(g)), ub = round_bf16(float(u));
            h[f] = round_bf16(gb / (1 + std::exp(-gb)) * ub);
        }
        for (int i = 0; i < d; ++i) {
            double y = 0;
            for (int f = 0; f < F; ++f) y += double(h[f]) * bf16_to_f32(w2[i * F + f]);
            float got = bf16_to_f32(t.out[tok * d + i]);
            EXPECT_NEAR(got, y, 2e-3 + 2 * std::fabs(y) * kBf16Eps) << tok << "," << i;
        }
    }
}

TEST(Layer, NoPackGathersTheSameOutputs) {
    auto s = small_spec(200, 8, 2, 32, 24);
    auto a = run_small(s);
    s.strategy = Strategy::NoPack;
    auto b = run_small(s);
    EXPECT_EQ(a.tensors.out, b.tensors.out);
    EXPECT_EQ(a.tensors.y_packed, b.tensors.y_packed);
}

TEST(Layer, PaddingRowsAreZeroAndDoNotChangeOutput) {
    auto s = small_spec(150, 8, 2, 16, 16);
    auto a = run_small(s);
    s.align = 16;
    auto b = run_small(s);
    EXPECT_EQ(a.tensors.out, b.tensors.out);
    for (std::int64_t r = 0; r < b.rows; ++r) {
        if (b.tensors.row_token[r] < 0) {
            for (int i = 0; i < 16; ++i) EXPECT_EQ(b.tensors.y_packed[r * 16 + i], 0);
        }
    }
}

TEST(Comm, TrafficRowsSumToWhatEachRankSends) {
    auto s = small_spec(1003, 16, 4, 8, 8, "zipf:1.0");
    auto r = run_small(s, false);
    const int G = 4;
    auto tr = comm::traffic(r.tensors.topk_ids.data(), 1003, 4, 16, G, 8, 2);
    std::int64_t total = 0;
    for (int src = 0; src < G; ++src) {
        std::int64_t row = 0, off = 0;
        for (int dst = 0; dst < G; ++dst) {
            row += tr.tokens[src * G + dst];
            if (dst != src) off += tr.tokens[src * G + dst];
            EXPECT_LE(tr.dedup[src * G + dst], tr.tokens[src * G + dst]);
        }
        std::int64_t tokens_on_src = 0;
        for (std::int64_t t = 0; t < 1003; ++t) tokens_on_src += comm::rank_of_token(t, 1003, G) == src;
        EXPECT_EQ(row, tokens_on_src * 4) << "every token of a rank sends k rows";
        EXPECT_EQ(off, tr.sent[src]);
        total += row;
    }
    EXPECT_EQ(total, 1003 * 4);
    EXPECT_DOUBLE_EQ(tr.seed_bytes, 2.0 * 1003 * 4 * 8 * 2);
    EXPECT_LE(tr.dedup_bytes, tr.routed_bytes);
    EXPECT_EQ(comm::rank_of_expert(15, 16, 4), 3);
    EXPECT_EQ(comm::rank_of_expert(4, 16, 4), 1);
}

TEST(Layer, SameSeedSameTensorsAnyThreadCount) {
    auto s = small_spec(333, 8, 2, 40, 24, "hot:3");
    LayerRunOptions o;
    o.keep_tensors = true;
    LayerRun a, b;
    o.threads = 1;
    cpu::run_layer(s, o, a);
    o.threads = 2;
    cpu::run_layer(s, o, b);
    EXPECT_EQ(a.tensors.topk_ids, b.tensors.topk_ids);
    EXPECT_EQ(a.tensors.out, b.tensors.out);
}
