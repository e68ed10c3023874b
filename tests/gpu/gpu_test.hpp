// Shared helpers of the GPU tests: skip without a device, fresh seeds, host routing from the CPU reference,
// and comparisons (exact, or abs + |ref|·eps for bf16) that report the first mismatch.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/api.hpp"

// Every GPU test starts with this: no device → skipped, with the reason.
#define MOE_REQUIRE_GPU()                                                                  \
    do {                                                                                   \
        if (moe::gpu::devices().empty())                                                   \
            GTEST_SKIP() << "no GPU to test on: " << moe::gpu::unavailable_reason();       \
    } while (0)

namespace gpu_test {

// MOELAB_GPU_TEST_QUICK=1 keeps only the small shapes (the compute-sanitizer runs).
inline bool quick() {
    const char* q = std::getenv("MOELAB_GPU_TEST_QUICK");
    return q && *q && *q != '0';
}

// A fresh seed per test run, printed on failure; MOELAB_TEST_SEED reproduces one.
inline std::uint64_t fresh_seed() {
    static std::uint64_t base = []() -> std::uint64_t {
        const char* s = std::getenv("MOELAB_TEST_SEED");
        if (s && *s) return std::strtoull(s, nullptr, 10);
        return (std::uint64_t(std::random_device{}()) << 32) ^ std::random_device{}();
    }();
    static std::uint64_t n = 0;
    return base + 1000003ull * n++;
}

struct Case {
    std::int64_t T;
    int E, k, d;
    const char* skew;
    double cf = 0.0;
    moe::DropPolicy policy = moe::DropPolicy::TokenOrder;
    int align = 1;
    int F = 128;
};

inline std::string describe(const Case& c) {
    std::ostringstream os;
    os << "T=" << c.T << " E=" << c.E << " k=" << c.k << " d=" << c.d << " F=" << c.F << " skew=" << c.skew
       << " cf=" << c.cf << " policy=" << (c.policy == moe::DropPolicy::TokenOrder ? "token" : "probability")
       << " align=" << c.align;
    return os.str();
}

// The covering set: every T, E, k, d and skew family of the issue appears, with and without drops, without the
// full cross product at large sizes. Quick mode keeps T·d ≤ 2^20 (both plan paths, small rows).
inline std::vector<Case> covering_cases() {
    using P = moe::DropPolicy;
    std::vector<Case> all = {
        {1, 1, 1, 128, "uniform"},
        {1, 8, 8, 2048, "hot:20", 1.0, P::Probability},
        {7, 8, 2, 2048, "zipf:1.2", 0.0, P::TokenOrder, 4},
        {7, 16, 8, 7168, "hot:20", 1.0, P::TokenOrder},
        {256, 64, 8, 128, "hot:20", 1.25, P::Probability, 16},
        {256, 256, 2, 2048, "zipf:1.2", 0.0},
        {300, 8, 2, 100, "zipf:1.2", 0.0, P::TokenOrder, 3},  // hidden not a multiple of 8: the scalar paths
        {4096, 8, 1, 7168, "uniform", 0.5, P::TokenOrder},
        {4096, 16, 2, 2048, "hot:20", 0.0, P::TokenOrder, 8},
        {4096, 256, 8, 128, "zipf:1.2", 1.0, P::Probability},
        {16384, 1, 1, 128, "uniform"},
        {16384, 64, 8, 2048, "uniform"},
        {16384, 256, 8, 7168, "hot:20", 1.0, P::TokenOrder},
        {16384, 16, 2, 2048, "zipf:1.2", 0.8, P::Probability, 16},
        {8192, 16, 8, 128, "hot:20", 0.9, P::TokenOrder, 2},  // past the one-block plan, small rows
    };
    if (!quick()) return all;
    std::vector<Case> small;
    for (auto& c : all)
        if (c.T * c.d <= (1 << 20)) small.push_back(c);
    return small;
}

// Routing from the CPU reference: popularity logits, softmax + top-k, then capacity.
struct HostRouting {
    std::vector<float> logits, w;
    std::vector<std::int32_t> routed, ids;  // before and after drops
    std::int64_t cap = 0;
};

inline HostRouting host_routing(std::uint64_t seed, const Case& c, bool renormalize = true) {
    HostRouting r;
    auto skew = moe::route::parse_skew(c.skew);
    auto logp = moe::route::log_popularity(skew, c.E);
    r.logits.resize(std::size_t(c.T) * c.E);
    moe::route::popularity_logits(seed, logp.data(), c.T, c.E, r.logits.data());
    r.routed.resize(std::size_t(c.T) * c.k);
    r.w.resize(std::size_t(c.T) * c.k);
    moe::route::softmax_topk(r.logits.data(), c.T, c.E, c.k, renormalize, r.routed.data(), r.w.data());
    r.ids = r.routed;
    r.cap = moe::route::capacity(c.cf, c.T, c.k, c.E);
    moe::route::apply_capacity(r.ids.data(), r.w.data(), c.T, c.k, c.E, r.cap, c.policy);
    return r;
}

// Exact comparison of the first n elements; an empty string means equal.
template <class T>
std::string first_difference(const std::vector<T>& got, const std::vector<T>& want, std::size_t n, const char* what) {
    if (got.size() < n || want.size() < n) return std::string(what) + ": too few elements";
    std::size_t bad = 0, first = n;
    for (std::size_t i = 0; i < n; ++i)
        if (!(got[i] == want[i])) {
            if (first == n) first = i;
            ++bad;
        }
    if (!bad) return "";
    std::ostringstream os;
    os << what << ": " << bad << " of " << n << " differ; first at " << first << ": got " << +got[first]
       << ", want " << +want[first];
    return os.str();
}

inline float rms(const std::vector<float>& v) {
    double s = 0;
    for (float x : v) s += double(x) * x;
    return v.empty() ? 0.f : float(std::sqrt(s / v.size()));
}

// |got − want| ≤ atol + rtol·|want| for every element; NaN never passes (poisoned outputs are NaN).
// `extra`, when given, adds a per-element allowance (e.g. the propagated rounding of an intermediate).
inline std::string first_outside(const std::vector<float>& got, const std::vector<float>& want, float atol,
                                 float rtol, const char* what, const std::vector<float>* extra = nullptr) {
    if (got.size() != want.size() || (extra && extra->size() != want.size()))
        return std::string(what) + ": sizes differ";
    std::size_t bad = 0, first = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        float tol = atol + rtol * std::fabs(want[i]) + (extra ? (*extra)[i] : 0.f);
        if (!(std::fabs(got[i] - want[i]) <= tol)) {
            if (!bad) first = i;
            ++bad;
        }
    }
    if (!bad) return "";
    std::ostringstream os;
    os << what << ": " << bad << " of " << got.size() << " outside " << atol << " + " << rtol << "·|ref|"
       << (extra ? " + the element's own allowance (" + std::to_string((*extra)[first]) + ")" : std::string())
       << "; first at " << first << ": got " << got[first] << ", want " << want[first];
    return os.str();
}

inline std::vector<float> to_float(const std::vector<moe::bf16_t>& v, std::size_t n) {
    std::vector<float> f(n);
    for (std::size_t i = 0; i < n; ++i) f[i] = moe::bf16_to_f32(v[i]);
    return f;
}

// bf16 outputs of GEMMs: one bf16 ulp of the element plus one of the tensor's typical magnitude (at least
// min_scale).
inline std::string bf16_close(const std::vector<moe::bf16_t>& got, const std::vector<moe::bf16_t>& want, std::size_t n,
                              const char* what, float min_scale = 0) {
    auto g = to_float(got, n), w = to_float(want, n);
    const float scale = std::max(rms(w), min_scale);
    return first_outside(g, w, 2 * moe::kBf16Eps * scale, 2 * moe::kBf16Eps, what);
}

// The combined output (each token's weighted sum of its k expert rows, weights summing to at most 1) against the
// reference: every term carries the expert rows' error, about 2·eps·rms(y), while the sum itself can be much smaller
// than its terms (k = 8 rows that partly cancel), so the absolute allowance scales with the rows' rms, not the
// output's. y_ref: the reference's expert rows.
inline std::string combined_close(const std::vector<moe::bf16_t>& got, const std::vector<moe::bf16_t>& want,
                                  const std::vector<moe::bf16_t>& y_ref, const char* what) {
    return bf16_close(got, want, want.size(), what, rms(to_float(y_ref, y_ref.size())));
}

}  // namespace gpu_test
