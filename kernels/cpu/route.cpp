// CPU reference for routing: inputs from the counter-based RNG, popularity and gate logits, softmax + top-k,
// and capacity drops. Plain loops; this is the truth the GPU kernels and the lessons are checked against.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "kernels/api.hpp"
#include "kernels/common/error.hpp"
#include "kernels/common/rng.hpp"
#include "kernels/cpu/parallel.hpp"

namespace moe {

float x_scale() { return 1.0f; }
float gate_scale(int hidden) { return static_cast<float>(std::sqrt(3.0 / hidden)); }
float w1_scale(int hidden) { return static_cast<float>(std::sqrt(3.0 / hidden)); }
float w2_scale(int ffn) { return static_cast<float>(std::sqrt(3.0 / ffn)); }

namespace route {

Skew parse_skew(const std::string& text) {
    auto bad = [&](const std::string& why) {
        MOE_BAD_INPUT("--skew '" << text << "': " << why
                                 << "; allowed: uniform, zipf:S with S > 0 (e.g. zipf:1.2), hot:R with R > 0 "
                                    "(one expert R times as popular as each other, e.g. hot:6.667)");
    };
    if (text == "uniform") return Skew{SkewFamily::Uniform, 0.0};
    auto colon = text.find(':');
    if (colon == std::string::npos) bad("unknown skew family");
    std::string fam = text.substr(0, colon), num = text.substr(colon + 1);
    Skew s;
    if (fam == "zipf")
        s.family = SkewFamily::Zipf;
    else if (fam == "hot")
        s.family = SkewFamily::Hot;
    else
        bad("unknown skew family '" + fam + "'");
    try {
        std::size_t used = 0;
        s.param = std::stod(num, &used);
        if (used != num.size()) bad("'" + num + "' is not a number");
    } catch (const std::logic_error&) {
        bad("'" + num + "' is not a number");
    }
    if (!(s.param > 0) || !std::isfinite(s.param) || s.param > 1e6) bad("the strength must be in (0, 1e6]");
    return s;
}

std::string format_skew(const Skew& s) {
    char buf[64];
    switch (s.family) {
        case SkewFamily::Uniform:
            return "uniform";
        case SkewFamily::Zipf:
            std::snprintf(buf, sizeof buf, "zipf:%g", s.param);
            return buf;
        case SkewFamily::Hot:
            std::snprintf(buf, sizeof buf, "hot:%g", s.param);
            return buf;
    }
    return "uniform";
}

std::vector<double> popularity(const Skew& s, int experts) {
    std::vector<double> p(experts, 1.0);
    for (int e = 0; e < experts; ++e) {
        if (s.family == SkewFamily::Zipf) p[e] = 1.0 / std::pow(e + 1.0, s.param);
        if (s.family == SkewFamily::Hot && e == 0) p[e] = s.param;
    }
    double sum = std::accumulate(p.begin(), p.end(), 0.0);
    for (auto& v : p) v /= sum;
    return p;
}

std::vector<float> log_popularity(const Skew& s, int experts) {
    auto p = popularity(s, experts);
    std::vector<float> lp(experts);
    for (int e = 0; e < experts; ++e) lp[e] = static_cast<float>(std::log(p[e]));
    return lp;
}

namespace {

// Expert e is in a token's top k when fewer than k others beat log p_e + G_e. With x = exp(-G_e), which is Exp(1)
// for a standard Gumbel G_e, another expert j beats it with probability q_j = 1 - exp(-x·p_j/p_e), independently
// given x: the number that beat it is Poisson-binomial, summed by a DP over j (0..k-1 winners). The integral over x
// runs in t = log x (density e^t·exp(-e^t), smooth in t whatever the popularities), trapezoids of 1/32 over
// [-24, 4], outside which the weight is below 4e-11.
double inclusion_of(const std::vector<double>& p, int e, int k) {
    const int experts = int(p.size());
    if (k >= experts) return 1.0;
    constexpr double kLo = -24.0, kStep = 1.0 / 32;
    constexpr int kPoints = 28 * 32;  // t up to 4
    std::vector<double> dp(k);
    double sum = 0.0;
    for (int i = 0; i <= kPoints; ++i) {
        const double x = std::exp(kLo + i * kStep), weight = x * std::exp(-x) * (i == 0 || i == kPoints ? 0.5 : 1.0);
        std::fill(dp.begin(), dp.end(), 0.0);
        dp[0] = 1.0;
        for (int j = 0; j < experts; ++j) {
            if (j == e) continue;
            const double q = -std::expm1(-x * p[j] / p[e]);
            for (int c = k - 1; c > 0; --c) dp[c] = dp[c] * (1.0 - q) + dp[c - 1] * q;
            dp[0] *= 1.0 - q;
        }
        sum += weight * std::accumulate(dp.begin(), dp.end(), 0.0);
    }
    return std::min(1.0, sum * kStep);
}

}  // namespace

std::vector<double> topk_inclusion(const Skew& s, int experts, int k) {
    const std::vector<double> p = popularity(s, experts);
    std::vector<double> inc(std::max(experts, 0), 0.0);
    if (k <= 0) return inc;
    for (int e = 0; e < experts; ++e) inc[e] = inclusion_of(p, e, k);
    return inc;
}

std::int64_t busiest_estimate(const Skew& s, int experts, int k, std::int64_t tokens, std::int64_t cap) {
    if (experts <= 0 || k <= 0 || tokens <= 0) return 0;
    // The most popular expert is the likeliest pick: only its inclusion is needed.
    const std::vector<double> p = popularity(s, experts);
    const int hot = int(std::max_element(p.begin(), p.end()) - p.begin());
    const double q = inclusion_of(p, hot, k), mean = double(tokens) * q;
    const double worst = mean + 2.0 * std::sqrt(mean * (1.0 - q));
    const std::int64_t b = std::min<std::int64_t>(tokens, std::int64_t(std::ceil(worst)));
    return cap > 0 ? std::min(b, cap) : b;
}

void make_x(std::uint64_t seed, std::int64_t tokens, int hidden, bf16_t* x) {
    float sc = x_scale();
    moe::cpu::parallel_for(tokens, 0, 256, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b * hidden; i < e * hidden; ++i) x[i] = rng_bf16(seed, kStreamX, i, sc);
    });
}

void make_gate(std::uint64_t seed, int experts, int hidden, bf16_t* wg) {
    float sc = gate_scale(hidden);
    for (std::int64_t i = 0; i < std::int64_t(experts) * hidden; ++i) wg[i] = rng_bf16(seed, kStreamGate, i, sc);
}

void popularity_logits(std::uint64_t seed, const float* logp, std::int64_t tokens, int experts, float* logits) {
    moe::cpu::parallel_for(tokens, 0, 512, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t t = b; t < e; ++t)
            for (int x = 0; x < experts; ++x) {
                std::int64_t i = t * experts + x;
                logits[i] = add_rn(logp[x], rng_gumbel(seed, i));
            }
    });
}

void gate_logits(const bf16_t* x, const bf16_t* wg, const float* logp, std::int64_t tokens, int hidden, int experts,
                 float* logits) {
    std::vector<float> w(std::size_t(experts) * hidden);
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = bf16_to_f32(wg[i]);
    moe::cpu::parallel_for(tokens, 0, 64, [&](std::int64_t b, std::int64_t end) {
        std::vector<float> xr(hidden);
        for (std::int64_t t = b; t < end; ++t) {
            for (int i = 0; i < hidden; ++i) xr[i] = bf16_to_f32(x[t * hidden + i]);
            for (int e = 0; e < experts; ++e) {
                const float* we = &w[std::size_t(e) * hidden];
                float acc = 0.f;
                for (int i = 0; i < hidden; ++i) acc += xr[i] * we[i];
                logits[t * experts + e] = acc + logp[e];
            }
        }
    });
}

void softmax_topk(const float* logits, std::int64_t tokens, int experts, int k, bool renormalize, std::int32_t* ids,
                  float* weights) {
    MOE_ASSERT(k >= 1 && k <= experts, "top-k " << k << " must be in [1, " << experts << "]");
    moe::cpu::parallel_for(tokens, 0, 256, [&](std::int64_t b, std::int64_t end) {
        std::vector<int> order(experts);
        for (std::int64_t t = b; t < end; ++t) {
            const float* l = logits + t * experts;
            float mx = l[0];
            for (int e = 1; e < experts; ++e) mx = std::max(mx, l[e]);
            float sum = 0.f;
            for (int e = 0; e < experts; ++e) sum += std::exp(l[e] - mx);
            std::iota(order.begin(), order.end(), 0);
            // Larger logit first; equal logits go to the lower expert id.
            std::partial_sort(order.begin(), order.begin() + k, order.end(),
                              [l](int a, int c) { return l[a] > l[c] || (l[a] == l[c] && a < c); });
            float wsum = 0.f;
            for (int j = 0; j < k; ++j) {
                int e = order[j];
                ids[t * k + j] = e;
                weights[t * k + j] = std::exp(l[e] - mx) / sum;
                wsum += weights[t * k + j];
            }
            if (renormalize)
                for (int j = 0; j < k; ++j) weights[t * k + j] /= wsum;
        }
    });
}

std::int64_t capacity(double cf, std::int64_t tokens, int k, int experts) {
    if (cf <= 0) return 0;
    return static_cast<std::int64_t>(std::ceil(cf * double(tokens) * k / experts - 1e-9));
}

std::int64_t apply_capacity(std::int32_t* ids, const float* weights, std::int64_t tokens, int k, int experts,
                            std::int64_t cap, DropPolicy policy) {
    if (cap <= 0) return 0;
    std::int64_t n = tokens * k, dropped = 0;
    if (policy == DropPolicy::TokenOrder) {
        std::vector<std::int64_t> used(experts, 0);
        for (std::int64_t a = 0; a < n; ++a) {
            int e = ids[a];
            if (e < 0) continue;
            if (used[e] < cap) {
                ++used[e];
            } else {
                ids[a] = -1;
                ++dropped;
            }
        }
        return dropped;
    }
    // By probability: each expert keeps its `cap` heaviest assignments, ties to the earlier (t, j).
    std::vector<std::vector<std::int64_t>> per(experts);
    for (std::int64_t a = 0; a < n; ++a)
        if (ids[a] >= 0) per[ids[a]].push_back(a);
    for (auto& list : per) {
        if (std::int64_t(list.size()) <= cap) continue;
        std::stable_sort(list.begin(), list.end(),
                         [weights](std::int64_t a, std::int64_t b) { return weights[a] > weights[b]; });
        for (std::size_t i = cap; i < list.size(); ++i) {
            ids[list[i]] = -1;
            ++dropped;
        }
    }
    return dropped;
}

}  // namespace route
}  // namespace moe
