// CPU reference for the SiLU-gated expert FFN: per expert, h1 = x·w1^T, h = silu(gate)·up, y = h·w2^T,
// bf16 in and between the two GEMMs, fp32 accumulate. The GEMM is tiled and threaded but stays a plain dot product.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/api.hpp"
#include "kernels/common/error.hpp"
#include "kernels/common/rng.hpp"
#include "kernels/cpu/parallel.hpp"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define MOE_HAVE_AVX2_PATH 1
#endif

namespace moe::experts {

void make_w1(std::uint64_t seed, int experts, int ffn, int hidden, bf16_t* w1) {
    float sc = w1_scale(hidden);
    std::int64_t n = std::int64_t(experts) * 2 * ffn * hidden;
    moe::cpu::parallel_for(n, 0, 1 << 20, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i) w1[i] = rng_bf16(seed, kStreamW1, i, sc);
    });
}

void make_w2(std::uint64_t seed, int experts, int hidden, int ffn, bf16_t* w2) {
    float sc = w2_scale(ffn);
    std::int64_t n = std::int64_t(experts) * hidden * ffn;
    moe::cpu::parallel_for(n, 0, 1 << 20, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i) w2[i] = rng_bf16(seed, kStreamW2, i, sc);
    });
}

namespace {

// out[r][o] = Σ_i a[r][i]·b[o][i] for a tile of up to 4 rows × 2 outputs.
void dot_tile_plain(const float* a, std::int64_t nr, const float* b, std::int64_t no, int K, float* out, int ldo) {
    for (std::int64_t r = 0; r < nr; ++r)
        for (std::int64_t o = 0; o < no; ++o) {
            float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            const float* x = a + r * K;
            const float* w = b + o * K;
            int i = 0;
            for (; i + 8 <= K; i += 8)
                for (int l = 0; l < 8; ++l) acc[l] += x[i + l] * w[i + l];
            float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
            for (; i < K; ++i) s += x[i] * w[i];
            out[r * ldo + o] = s;
        }
}

#ifdef MOE_HAVE_AVX2_PATH
__attribute__((target("avx2,fma"))) float hsum256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
    return _mm_cvtss_f32(lo);
}

// The same tile with 8-wide FMA; 4 rows × 2 outputs keeps 8 accumulators and 6 loads in registers.
__attribute__((target("avx2,fma"))) void dot_tile_avx2(const float* a, std::int64_t nr, const float* b,
                                                       std::int64_t no, int K, float* out, int ldo) {
    if (nr != 4 || no != 2 || K % 8 != 0) return dot_tile_plain(a, nr, b, no, K, out, ldo);
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    for (int i = 0; i < K; i += 8) {
        __m256 w0 = _mm256_loadu_ps(b + i), w1 = _mm256_loadu_ps(b + K + i);
        __m256 x0 = _mm256_loadu_ps(a + i), x1 = _mm256_loadu_ps(a + K + i);
        __m256 x2 = _mm256_loadu_ps(a + 2 * K + i), x3 = _mm256_loadu_ps(a + 3 * K + i);
        c00 = _mm256_fmadd_ps(x0, w0, c00);
        c01 = _mm256_fmadd_ps(x0, w1, c01);
        c10 = _mm256_fmadd_ps(x1, w0, c10);
        c11 = _mm256_fmadd_ps(x1, w1, c11);
        c20 = _mm256_fmadd_ps(x2, w0, c20);
        c21 = _mm256_fmadd_ps(x2, w1, c21);
        c30 = _mm256_fmadd_ps(x3, w0, c30);
        c31 = _mm256_fmadd_ps(x3, w1, c31);
    }
    out[0] = hsum256(c00), out[1] = hsum256(c01);
    out[ldo] = hsum256(c10), out[ldo + 1] = hsum256(c11);
    out[2 * ldo] = hsum256(c20), out[2 * ldo + 1] = hsum256(c21);
    out[3 * ldo] = hsum256(c30), out[3 * ldo + 1] = hsum256(c31);
}
#endif

using TileFn = void (*)(const float*, std::int64_t, const float*, std::int64_t, int, float*, int);

TileFn pick_tile() {
#ifdef MOE_HAVE_AVX2_PATH
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return dot_tile_avx2;
#endif
    return dot_tile_plain;
}

// C[n, m] = A[n, K]·B[m, K]^T, fp32, threaded over blocks of 64 output columns (a block of B stays in cache).
void gemm_nt(const float* A, std::int64_t n, const float* B, std::int64_t m, int K, float* C, int threads) {
    static const TileFn tile = pick_tile();
    constexpr std::int64_t kBlock = 64;
    std::int64_t blocks = (m + kBlock - 1) / kBlock;
    moe::cpu::parallel_for(blocks, threads, 1, [&](std::int64_t b0, std::int64_t b1) {
        for (std::int64_t blk = b0; blk < b1; ++blk) {
            std::int64_t o0 = blk * kBlock, o1 = std::min(m, o0 + kBlock);
            for (std::int64_t r = 0; r < n; r += 4) {
                std::int64_t nr = std::min<std::int64_t>(4, n - r);
                for (std::int64_t o = o0; o < o1; o += 2) {
                    std::int64_t no = std::min<std::int64_t>(2, o1 - o);
                    tile(A + r * K, nr, B + o * K, no, K, C + r * m + o, static_cast<int>(m));
                }
            }
        }
    });
}

void to_float(const bf16_t* src, std::int64_t n, float* dst) {
    for (std::int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
}

}  // namespace

void ffn(const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token, const std::int32_t* counts,
         const std::int32_t* offsets, int experts, int hidden, int ffn, const bf16_t* w1, const bf16_t* w2, bf16_t* y,
         int threads) {
    MOE_ASSERT(xp || (x && row_token), "experts::ffn needs packed rows or x with row_token");
    const std::int64_t d = hidden, F = ffn;
    std::vector<float> a, wf1, wf2, h1, h, out;
    for (int e = 0; e < experts; ++e) {
        std::int64_t r0 = offsets[e], n = counts[e], pad_end = offsets[e + 1];
        for (std::int64_t r = r0 + n; r < pad_end; ++r) std::memset(y + r * d, 0, sizeof(bf16_t) * d);
        if (n == 0) continue;  // an expert with no tokens costs nothing
        a.resize(n * d);
        for (std::int64_t i = 0; i < n; ++i) {
            const bf16_t* src = xp ? xp + (r0 + i) * d : x + std::int64_t(row_token[r0 + i]) * d;
            to_float(src, d, &a[i * d]);
        }
        wf1.resize(2 * F * d);
        to_float(w1 + std::int64_t(e) * 2 * F * d, 2 * F * d, wf1.data());
        wf2.resize(d * F);
        to_float(w2 + std::int64_t(e) * d * F, d * F, wf2.data());
        h1.resize(n * 2 * F);
        gemm_nt(a.data(), n, wf1.data(), 2 * F, static_cast<int>(d), h1.data(), threads);
        h.resize(n * F);
        for (std::int64_t i = 0; i < n; ++i)
            for (std::int64_t f = 0; f < F; ++f) {
                float g = round_bf16(h1[i * 2 * F + f]), u = round_bf16(h1[i * 2 * F + F + f]);
                h[i * F + f] = round_bf16(g / (1.0f + std::exp(-g)) * u);
            }
        out.resize(n * d);
        gemm_nt(h.data(), n, wf2.data(), d, static_cast<int>(F), out.data(), threads);
        for (std::int64_t i = 0; i < n * d; ++i) y[r0 * d + i] = f32_to_bf16(out[i]);
    }
}

}  // namespace moe::experts
