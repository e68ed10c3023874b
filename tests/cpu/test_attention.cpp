// The CPU reference of decode attention against a naive double-precision computation, softmax sanity (one
// position gives v, equal scores average, a dominant score picks its row without overflow) and shape checks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/api.hpp"
#include "kernels/attention.hpp"
#include "kernels/common/error.hpp"
#include "kernels/common/rng.hpp"

using namespace moe;
namespace att = moe::attention;

namespace {

constexpr int kD = att::Spec::head_dim;

att::Spec spec(std::int64_t ba, int s, int H, int G, int d) {
    att::Spec sp;
    sp.batch = ba, sp.context = s, sp.q_heads = H, sp.kv_groups = G, sp.hidden = d;
    return sp;
}

std::vector<bf16_t> random_bf16(std::size_t n, float scale, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-scale, scale);
    std::vector<bf16_t> v(n);
    for (auto& e : v) e = f32_to_bf16(u(rng));
    return v;
}

// Attention in double, straight from the definition: softmax of q·k/sqrt(128) over every position, then Σ p·v.
std::vector<double> naive_attend(const att::Spec& s, const std::vector<bf16_t>& qkv, const std::vector<bf16_t>& k,
                                 const std::vector<bf16_t>& v) {
    const int H = s.q_heads, G = s.kv_groups, past = s.context - 1;
    const std::int64_t cols = att::qkv_cols(s);
    std::vector<double> out(std::size_t(s.batch) * H * kD);
    for (std::int64_t b = 0; b < s.batch; ++b)
        for (int h = 0; h < H; ++h) {
            const int g = h / (H / G);
            std::vector<double> sc(s.context);
            auto kv_at = [&](const std::vector<bf16_t>& cache, int fresh_col, int p, int d) {
                return p < past ? bf16_to_f32(cache[((b * G + g) * past + p) * kD + d])
                                : bf16_to_f32(qkv[b * cols + std::int64_t(fresh_col) * kD + d]);
            };
            double mx = -1e300;
            for (int p = 0; p < s.context; ++p) {
                double acc = 0;
                for (int d = 0; d < kD; ++d)
                    acc += double(bf16_to_f32(qkv[b * cols + h * kD + d])) * kv_at(k, H + g, p, d);
                sc[p] = acc / std::sqrt(double(kD));
                mx = std::max(mx, sc[p]);
            }
            double z = 0;
            for (int p = 0; p < s.context; ++p) z += std::exp(sc[p] - mx);
            for (int d = 0; d < kD; ++d) {
                double o = 0;
                for (int p = 0; p < s.context; ++p) o += std::exp(sc[p] - mx) / z * kv_at(v, H + G + g, p, d);
                out[(b * H + h) * kD + d] = o;
            }
        }
    return out;
}

// bf16(a·w^T) with the dot product in double.
std::vector<bf16_t> naive_gemm(const std::vector<bf16_t>& a, std::int64_t n, const std::vector<bf16_t>& w,
                               std::int64_t m, std::int64_t K) {
    std::vector<bf16_t> c(std::size_t(n * m));
    for (std::int64_t r = 0; r < n; ++r)
        for (std::int64_t o = 0; o < m; ++o) {
            double acc = 0;
            for (std::int64_t i = 0; i < K; ++i) acc += double(bf16_to_f32(a[r * K + i])) * bf16_to_f32(w[o * K + i]);
            c[r * m + o] = f32_to_bf16(float(acc));
        }
    return c;
}

double rms(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x * x;
    return std::sqrt(s / double(v.size()));
}

// Counts the elements of got outside atol + rtol·|want| and reports the first.
std::string outside(const std::vector<bf16_t>& got, const std::vector<double>& want, double atol, double rtol) {
    std::size_t bad = 0, first = 0;
    for (std::size_t i = 0; i < want.size(); ++i)
        if (!(std::fabs(bf16_to_f32(got[i]) - want[i]) <= atol + rtol * std::fabs(want[i])))
            if (!bad++) first = i;
    if (!bad) return "";
    return std::to_string(bad) + " of " + std::to_string(want.size()) + " outside; first at " + std::to_string(first) +
           ": got " + std::to_string(bf16_to_f32(got[first])) + ", want " + std::to_string(want[first]);
}

}  // namespace

TEST(Attention, AttendMatchesDoublePrecision) {
    // GQA ratios 1, 2, 4 and 3; a single position (no cache); odd context lengths.
    for (auto sp : {spec(3, 1, 4, 2, 64), spec(2, 7, 8, 8, 64), spec(1, 33, 8, 2, 64), spec(2, 130, 6, 2, 64)}) {
        SCOPED_TRACE("ba=" + std::to_string(sp.batch) + " s=" + std::to_string(sp.context) +
                     " H=" + std::to_string(sp.q_heads) + " G=" + std::to_string(sp.kv_groups));
        // x scale 2 makes the scores spread over several units, so the softmax is far from uniform.
        auto qkv = random_bf16(std::size_t(sp.batch * att::qkv_cols(sp)), 2.0f, 11);
        auto k = random_bf16(std::size_t(att::kv_elems(sp)), 1.0f, 12), v = random_bf16(k.size(), 1.0f, 13);
        std::vector<bf16_t> got(std::size_t(sp.batch) * sp.q_heads * kD);
        att::attend(sp, qkv.data(), k.data(), v.data(), got.data(), 2);
        auto want = naive_attend(sp, qkv, k, v);
        // fp32 sums are ~1e-6 relative off the exact value; the bf16 rounding adds at most half an ulp (2^-8).
        EXPECT_EQ(outside(got, want, 1e-5 * rms(want), 1.0 / 256 + 1e-5), "");
    }
}

TEST(Attention, DecodeMatchesDoublePrecision) {
    for (auto sp : {spec(1, 1, 4, 4, 96), spec(3, 9, 8, 2, 64), spec(2, 40, 6, 3, 100)}) {
        SCOPED_TRACE("ba=" + std::to_string(sp.batch) + " s=" + std::to_string(sp.context) +
                     " d=" + std::to_string(sp.hidden));
        const std::uint64_t seed = 1234 + sp.context;
        std::vector<bf16_t> x(std::size_t(sp.batch * sp.hidden)), wqkv(std::size_t(att::qkv_cols(sp) * sp.hidden)),
            wo(std::size_t(sp.hidden) * sp.q_heads * kD), k(std::size_t(att::kv_elems(sp))), v(k.size());
        route::make_x(seed, sp.batch, sp.hidden, x.data());
        att::make_weights(seed, 3, sp, wqkv.data(), wo.data());
        att::make_kv(seed, sp, k.data(), v.data());
        std::vector<bf16_t> out(x.size());
        att::decode(sp, x.data(), wqkv.data(), wo.data(), k.data(), v.data(), out.data(), 2);

        // The same chain in double, rounded to bf16 at the same three points.
        auto qkv = naive_gemm(x, sp.batch, wqkv, att::qkv_cols(sp), sp.hidden);
        auto a = naive_attend(sp, qkv, k, v);
        std::vector<bf16_t> ab(a.size());
        for (std::size_t i = 0; i < a.size(); ++i) ab[i] = f32_to_bf16(float(a[i]));
        auto o = naive_gemm(ab, sp.batch, wo, sp.hidden, std::int64_t(sp.q_heads) * kD);
        std::vector<double> want(o.size());
        for (std::size_t i = 0; i < o.size(); ++i) want[i] = bf16_to_f32(o[i]);
        // A bf16 rounding of qkv or attn may land one ulp apart (fp32 against double sums); each such flip moves
        // `out` by far less than an ulp of its typical size, so two ulps of the element and of the rms bound it.
        EXPECT_EQ(outside(out, want, 2 * kBf16Eps * rms(want), 2 * kBf16Eps), "");
    }
}

TEST(Attention, ResultDoesNotDependOnThreads) {
    auto sp = spec(5, 21, 8, 2, 128);
    std::vector<bf16_t> x(std::size_t(sp.batch * sp.hidden)), wqkv(std::size_t(att::qkv_cols(sp) * sp.hidden)),
        wo(std::size_t(sp.hidden) * sp.q_heads * kD), k(std::size_t(att::kv_elems(sp))), v(k.size());
    route::make_x(7, sp.batch, sp.hidden, x.data());
    att::make_weights(7, 0, sp, wqkv.data(), wo.data());
    att::make_kv(7, sp, k.data(), v.data());
    std::vector<bf16_t> one(x.size()), three(x.size());
    att::decode(sp, x.data(), wqkv.data(), wo.data(), k.data(), v.data(), one.data(), 1);
    att::decode(sp, x.data(), wqkv.data(), wo.data(), k.data(), v.data(), three.data(), 3);
    EXPECT_EQ(one, three);
}

TEST(Attention, SinglePositionReturnsTheFreshValue) {
    // context = 1: no cache, p = 1 on the token itself, so attn is exactly its v (bf16 in, bf16 out).
    auto sp = spec(3, 1, 8, 2, 64);
    auto qkv = random_bf16(std::size_t(sp.batch * att::qkv_cols(sp)), 3.0f, 21);
    std::vector<bf16_t> attn(std::size_t(sp.batch) * sp.q_heads * kD);
    EXPECT_EQ(att::kv_elems(sp), 0);
    att::attend(sp, qkv.data(), nullptr, nullptr, attn.data(), 1);
    const std::int64_t cols = att::qkv_cols(sp);
    for (std::int64_t b = 0; b < sp.batch; ++b)
        for (int h = 0; h < sp.q_heads; ++h) {
            const int g = h / (sp.q_heads / sp.kv_groups);
            for (int d = 0; d < kD; ++d)
                ASSERT_EQ(attn[(b * sp.q_heads + h) * kD + d], qkv[b * cols + (sp.q_heads + sp.kv_groups + g) * kD + d])
                    << "b=" << b << " h=" << h << " d=" << d;
        }
}

TEST(Attention, EqualScoresAverageTheValues) {
    // q = 0 gives every position the score 0: attn is the plain mean of the values, cache and fresh.
    auto sp = spec(2, 5, 4, 2, 64);
    auto qkv = random_bf16(std::size_t(sp.batch * att::qkv_cols(sp)), 1.0f, 31);
    const std::int64_t cols = att::qkv_cols(sp);
    for (std::int64_t b = 0; b < sp.batch; ++b)
        for (int i = 0; i < sp.q_heads * kD; ++i) qkv[b * cols + i] = 0;
    auto k = random_bf16(std::size_t(att::kv_elems(sp)), 1.0f, 32), v = random_bf16(k.size(), 1.0f, 33);
    std::vector<bf16_t> attn(std::size_t(sp.batch) * sp.q_heads * kD);
    att::attend(sp, qkv.data(), k.data(), v.data(), attn.data(), 1);
    const int past = sp.context - 1;
    for (std::int64_t b = 0; b < sp.batch; ++b)
        for (int h = 0; h < sp.q_heads; ++h) {
            const int g = h / (sp.q_heads / sp.kv_groups);
            for (int d = 0; d < kD; ++d) {
                double mean = bf16_to_f32(qkv[b * cols + (sp.q_heads + sp.kv_groups + g) * kD + d]);
                for (int p = 0; p < past; ++p) mean += bf16_to_f32(v[((b * sp.kv_groups + g) * past + p) * kD + d]);
                mean /= sp.context;
                const float got = bf16_to_f32(attn[(b * sp.q_heads + h) * kD + d]);
                ASSERT_NEAR(got, mean, std::fabs(mean) / 256 + 1e-6) << "b=" << b << " h=" << h << " d=" << d;
            }
        }
}

TEST(Attention, DominantScorePicksItsRowWithoutOverflow) {
    // One score near 440, the others 0: exp() of it alone would overflow fp32, the running max must be taken
    // out first. The result is that position's v exactly (e^-440 underflows to 0 beside it).
    auto sp = spec(1, 9, 2, 1, 64);
    const std::int64_t cols = att::qkv_cols(sp);
    std::vector<bf16_t> qkv(std::size_t(cols), 0), k(std::size_t(att::kv_elems(sp)), 0);
    auto v = random_bf16(k.size(), 1.0f, 41);
    qkv[0] = f32_to_bf16(100.0f);        // head 0: q = 100·e0
    qkv[kD + 1] = f32_to_bf16(100.0f);   // head 1: q = 100·e1
    k[4 * kD + 0] = f32_to_bf16(50.0f);  // position 4 matches head 0
    k[6 * kD + 1] = f32_to_bf16(50.0f);  // position 6 matches head 1
    std::vector<bf16_t> attn(std::size_t(sp.q_heads) * kD);
    att::attend(sp, qkv.data(), k.data(), v.data(), attn.data(), 1);
    for (int d = 0; d < kD; ++d) {
        ASSERT_EQ(attn[d], v[4 * kD + d]) << "head 0, d=" << d;
        ASSERT_EQ(attn[kD + d], v[6 * kD + d]) << "head 1, d=" << d;
    }
}

TEST(Attention, GeneratedInputsAreDeterministicAndPerLayer) {
    auto sp = spec(2, 4, 4, 2, 32);
    std::vector<bf16_t> q0(std::size_t(att::qkv_cols(sp) * sp.hidden)), o0(std::size_t(sp.hidden) * sp.q_heads * kD);
    auto q0b = q0, o0b = o0, q1 = q0, o1 = o0;
    att::make_weights(5, 0, sp, q0.data(), o0.data());
    att::make_weights(5, 0, sp, q0b.data(), o0b.data());
    att::make_weights(5, 1, sp, q1.data(), o1.data());
    EXPECT_EQ(q0, q0b);
    EXPECT_EQ(o0, o0b);
    EXPECT_NE(q0, q1);
    EXPECT_NE(o0, o1);
    const float lim = att::wqkv_scale(sp);
    for (bf16_t e : q0) ASSERT_LE(std::fabs(bf16_to_f32(e)), lim * 1.004f);
    std::vector<bf16_t> k(std::size_t(att::kv_elems(sp))), v(k.size());
    att::make_kv(5, sp, k.data(), v.data());
    EXPECT_NE(k, v);
    for (bf16_t e : k) ASSERT_LE(std::fabs(bf16_to_f32(e)), att::kv_scale());
}

TEST(Attention, BadShapesAreRejectedWithTheirName) {
    auto expect_bad = [](const att::Spec& sp, const char* needle) {
        try {
            att::validate(sp);
            ADD_FAILURE() << "accepted a spec that should fail on " << needle;
        } catch (const Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::BadInput);
            EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
        }
    };
    expect_bad(spec(0, 8, 4, 2, 64), "batch");
    expect_bad(spec(1, 0, 4, 2, 64), "context");
    expect_bad(spec(1, 8, 0, 1, 64), "q_heads");
    expect_bad(spec(1, 8, 4, 0, 64), "kv_groups");
    expect_bad(spec(1, 8, 4, 8, 64), "kv_groups");
    expect_bad(spec(1, 8, 6, 4, 64), "multiple of kv_groups");
    expect_bad(spec(1, 8, 4, 2, 0), "hidden");
    expect_bad(spec(1 << 24, 1 << 24, 4, 2, 64), "cache elements");
    expect_bad(spec(1 << 24, 8, 1024, 1024, 64), "query rows");
    auto sp = spec(1, 8, 4, 2, 64);
    std::vector<bf16_t> w(std::size_t(att::qkv_cols(sp) * 64)), wo(std::size_t(64) * 4 * kD);
    EXPECT_THROW(att::make_weights(1, -1, sp, w.data(), wo.data()), Error);
    std::vector<bf16_t> x(64), out(64);
    EXPECT_THROW(att::decode(spec(1, 8, 6, 4, 64), x.data(), w.data(), wo.data(), nullptr, nullptr, out.data(), 1),
                 Error);
}

TEST(Attention, CountsGrowWithBatchTimesContext) {
    auto a = spec(4, 1000, 16, 4, 1024), b = spec(8, 1000, 16, 4, 1024), c = spec(4, 2000, 16, 4, 1024);
    EXPECT_DOUBLE_EQ(att::kv_bytes(a), 4.0 * 128 * 4 * 4 * 1000);
    EXPECT_DOUBLE_EQ(att::kv_bytes(b), 2 * att::kv_bytes(a));
    EXPECT_DOUBLE_EQ(att::kv_bytes(c), 2 * att::kv_bytes(a));
    EXPECT_DOUBLE_EQ(att::weight_bytes(a), 2.0 * ((16 + 8) * 128 * 1024 + 1024 * 16 * 128));
    EXPECT_DOUBLE_EQ(att::flops(a), 2.0 * 4 * 1024 * (24 * 128) + 2.0 * 4 * 2048 * 1024 + 4.0 * 4 * 16 * 1000 * 128);
}
