// CPU reference of decode attention (kernels/attention.hpp): QKV projection, GQA softmax attention over the
// read-only cache plus this token's fresh k, v, output projection. Plain fp32 loops; the GPU is checked against it.
#include "kernels/attention.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string_view>
#include <vector>

#include "kernels/common/error.hpp"
#include "kernels/common/rng.hpp"
#include "kernels/cpu/parallel.hpp"

namespace moe::attention {

namespace {
constexpr int kD = Spec::head_dim;
}

namespace gpu {
namespace {
// The pipelined kernel: faster on the whole GPU and on a green context's share of it (kernels/cuda/ATTENTION.md).
// MOELAB_ATTENTION_KERNEL=registers starts the process on the other one, for side-by-side runs of the CLI.
Kernel initial_kernel() {
    const char* env = std::getenv("MOELAB_ATTENTION_KERNEL");
    return env && std::string_view(env) == "registers" ? Kernel::Registers : Kernel::Pipelined;
}
std::atomic<int> g_kernel{static_cast<int>(initial_kernel())};
}
void set_kernel(Kernel k) { g_kernel.store(static_cast<int>(k)); }
Kernel kernel() { return static_cast<Kernel>(g_kernel.load()); }
const char* kernel_name(Kernel k) { return k == Kernel::Pipelined ? "pipelined" : "registers"; }
}  // namespace gpu

void validate(const Spec& s) {
    auto bad = [](const char* field, long long value, const char* allowed) {
        MOE_BAD_INPUT("attention: " << field << " = " << value << " is not allowed; " << allowed);
    };
    if (s.batch < 1 || s.batch > (1 << 24)) bad("batch", s.batch, "allowed: 1 .. 16777216 sequences");
    if (s.context < 1 || s.context > (1 << 24)) bad("context", s.context, "allowed: 1 .. 16777216 positions");
    if (s.q_heads < 1 || s.q_heads > 1024) bad("q_heads", s.q_heads, "allowed: 1 .. 1024");
    if (s.kv_groups < 1 || s.kv_groups > s.q_heads)
        bad("kv_groups", s.kv_groups, "allowed: 1 .. q_heads (GQA: several query heads share one KV head)");
    if (s.q_heads % s.kv_groups != 0) {
        MOE_BAD_INPUT("attention: q_heads = " << s.q_heads << " is not a multiple of kv_groups = " << s.kv_groups
                                              << "; every KV group must serve the same number of query heads");
    }
    if (s.hidden < 1 || s.hidden > 65536) bad("hidden", s.hidden, "allowed: 1 .. 65536");
    // Products that index memory stay far inside 64 bits, and batch·q_heads inside one CUDA grid.
    if (double(s.batch) * s.kv_groups * s.context * kD > std::ldexp(1.0, 46))
        MOE_BAD_INPUT("attention: batch " << s.batch << " × kv_groups " << s.kv_groups << " × context " << s.context
                                          << " × 128 is more than 2^46 cache elements; make one of them smaller");
    if (double(s.batch) * s.q_heads > std::ldexp(1.0, 30))
        MOE_BAD_INPUT("attention: batch " << s.batch << " × q_heads " << s.q_heads
                                          << " is more than 2^30 query rows; make one of them smaller");
}

std::int64_t qkv_cols(const Spec& s) { return std::int64_t(s.q_heads + 2 * s.kv_groups) * kD; }
std::int64_t kv_elems(const Spec& s) { return s.batch * s.kv_groups * std::int64_t(s.context - 1) * kD; }

double kv_bytes(const Spec& s) { return 4.0 * kD * double(s.batch) * s.kv_groups * s.context; }
double weight_bytes(const Spec& s) {
    return 2.0 * (double(qkv_cols(s)) * s.hidden + double(s.hidden) * s.q_heads * kD);
}
double flops(const Spec& s) {
    const double ba = double(s.batch);
    return 2.0 * ba * s.hidden * double(qkv_cols(s)) + 2.0 * ba * s.q_heads * kD * s.hidden +
           4.0 * ba * s.q_heads * double(s.context) * kD;
}

float wqkv_scale(const Spec& s) { return static_cast<float>(std::sqrt(3.0 / s.hidden)); }
float wo_scale(const Spec& s) { return static_cast<float>(std::sqrt(3.0 / (double(s.q_heads) * kD))); }
float kv_scale() { return 1.0f; }

namespace {
void fill(std::uint64_t seed, std::uint64_t stream, std::int64_t n, float scale, bf16_t* out) {
    moe::cpu::parallel_for(n, 0, 1 << 20, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i) out[i] = rng_bf16(seed, stream, std::uint64_t(i), scale);
    });
}
}  // namespace

void make_weights(std::uint64_t seed, int layer, const Spec& s, bf16_t* wqkv, bf16_t* wo) {
    validate(s);
    if (layer < 0 || layer >= kMaxLayers)
        MOE_BAD_INPUT("attention: layer " << layer << " is out of range; allowed: 0 .. " << kMaxLayers - 1);
    fill(seed, kStreamWeights + 2 * std::uint64_t(layer), qkv_cols(s) * s.hidden, wqkv_scale(s), wqkv);
    fill(seed, kStreamWeights + 2 * std::uint64_t(layer) + 1, std::int64_t(s.hidden) * s.q_heads * kD, wo_scale(s), wo);
}

void make_kv(std::uint64_t seed, const Spec& s, bf16_t* k, bf16_t* v) {
    validate(s);
    fill(seed, kStreamK, kv_elems(s), kv_scale(), k);
    fill(seed, kStreamV, kv_elems(s), kv_scale(), v);
}

namespace {

// Σ_i a[i]·b[i] in fp32 over eight interleaved partial sums, added pairwise: a fixed order on every machine.
float dot(const float* a, const float* b, int n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; ++l) acc[l] += a[i + l] * b[i + l];
    for (; i < n; ++i) acc[i & 7] += a[i] * b[i];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// c[r, o] = bf16(Σ_i a[r, i]·w[o, i]) for a [n, K] and w [m, K], threaded over blocks of 64 outputs.
void gemm_nt_bf16(const bf16_t* a, std::int64_t n, const bf16_t* w, std::int64_t m, int K, bf16_t* c, int threads) {
    std::vector<float> af(std::size_t(n) * K);
    for (std::size_t i = 0; i < af.size(); ++i) af[i] = bf16_to_f32(a[i]);
    constexpr std::int64_t kBlock = 64;
    moe::cpu::parallel_for((m + kBlock - 1) / kBlock, threads, 1, [&](std::int64_t b0, std::int64_t b1) {
        std::vector<float> wf(std::size_t(kBlock) * K);
        for (std::int64_t blk = b0; blk < b1; ++blk) {
            const std::int64_t o0 = blk * kBlock, o1 = std::min(m, o0 + kBlock);
            for (std::int64_t i = 0; i < (o1 - o0) * K; ++i) wf[i] = bf16_to_f32(w[o0 * K + i]);
            for (std::int64_t r = 0; r < n; ++r)
                for (std::int64_t o = o0; o < o1; ++o)
                    c[r * m + o] = f32_to_bf16(dot(&af[r * K], &wf[(o - o0) * K], K));
        }
    });
}

}  // namespace

void attend(const Spec& s, const bf16_t* qkv, const bf16_t* k, const bf16_t* v, bf16_t* attn, int threads) {
    validate(s);
    const int H = s.q_heads, G = s.kv_groups, per_group = H / G, past = s.context - 1;
    const std::int64_t cols = qkv_cols(s);
    const float scale = 1.0f / std::sqrt(float(kD));
    moe::cpu::parallel_for(s.batch * H, threads, 1, [&](std::int64_t i0, std::int64_t i1) {
        std::vector<float> score(std::size_t(s.context));
        float q[kD], row[kD], o[kD];
        for (std::int64_t i = i0; i < i1; ++i) {
            const std::int64_t b = i / H;
            const int h = static_cast<int>(i % H), g = h / per_group;
            const bf16_t* qkv_b = qkv + b * cols;
            const bf16_t* kc = k + (b * G + g) * std::int64_t(past) * kD;
            const bf16_t* vc = v + (b * G + g) * std::int64_t(past) * kD;
            // Position p < context − 1 comes from the cache, the last one is this token's fresh k and v.
            auto key = [&](int p) { return p < past ? kc + std::int64_t(p) * kD : qkv_b + std::int64_t(H + g) * kD; };
            auto value = [&](int p) {
                return p < past ? vc + std::int64_t(p) * kD : qkv_b + std::int64_t(H + G + g) * kD;
            };
            for (int d = 0; d < kD; ++d) q[d] = bf16_to_f32(qkv_b[std::int64_t(h) * kD + d]);
            float mx = -std::numeric_limits<float>::infinity();
            for (int p = 0; p < s.context; ++p) {
                const bf16_t* kr = key(p);
                for (int d = 0; d < kD; ++d) row[d] = bf16_to_f32(kr[d]);
                score[p] = dot(q, row, kD) * scale;
                mx = std::max(mx, score[p]);
            }
            float sum = 0;
            std::fill(o, o + kD, 0.0f);
            for (int p = 0; p < s.context; ++p) {
                const float e = std::exp(score[p] - mx);
                sum += e;
                const bf16_t* vr = value(p);
                for (int d = 0; d < kD; ++d) o[d] += e * bf16_to_f32(vr[d]);
            }
            bf16_t* dst = attn + (b * H + h) * kD;
            for (int d = 0; d < kD; ++d) dst[d] = f32_to_bf16(o[d] / sum);
        }
    });
}

void decode(const Spec& s, const bf16_t* x, const bf16_t* wqkv, const bf16_t* wo, const bf16_t* k, const bf16_t* v,
            bf16_t* out, int threads) {
    validate(s);
    const std::int64_t cols = qkv_cols(s), attn_cols = std::int64_t(s.q_heads) * kD;
    std::vector<bf16_t> qkv(std::size_t(s.batch * cols)), attn(std::size_t(s.batch * attn_cols));
    gemm_nt_bf16(x, s.batch, wqkv, cols, s.hidden, qkv.data(), threads);
    attend(s, qkv.data(), k, v, attn.data(), threads);
    gemm_nt_bf16(attn.data(), s.batch, wo, s.hidden, static_cast<int>(attn_cols), out, threads);
}

}  // namespace moe::attention
