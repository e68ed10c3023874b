// Golden vectors and properties of the CPU routing reference: top-k ties, renormalise, capacity policies,
// the RNG's host determinism and the Gumbel-top-k sampler's statistics.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "kernels/api.hpp"
#include "kernels/common/error.hpp"
#include "kernels/common/rng.hpp"

using namespace moe;

TEST(Route, TopkTiesGoToLowerExpertId) {
    // One token, E=4, logits with a three-way tie.
    std::vector<float> logits = {1.0f, 2.0f, 2.0f, 2.0f};
    std::vector<std::int32_t> ids(2);
    std::vector<float> w(2);
    route::softmax_topk(logits.data(), 1, 4, 2, false, ids.data(), w.data());
    EXPECT_EQ(ids[0], 1);
    EXPECT_EQ(ids[1], 2);
    // softmax: e^2 / (e^1 + 3 e^2)
    double p = std::exp(2.0) / (std::exp(1.0) + 3 * std::exp(2.0));
    EXPECT_NEAR(w[0], p, 1e-6);
    EXPECT_NEAR(w[1], p, 1e-6);
}

TEST(Route, TopkRenormaliseSumsToOne) {
    std::vector<float> logits = {0.5f, -1.0f, 3.0f, 0.0f, 2.0f};
    std::vector<std::int32_t> ids(3);
    std::vector<float> w(3);
    route::softmax_topk(logits.data(), 1, 5, 3, true, ids.data(), w.data());
    EXPECT_EQ(ids[0], 2);
    EXPECT_EQ(ids[1], 4);
    EXPECT_EQ(ids[2], 0);
    double z = std::exp(3.0) + std::exp(2.0) + std::exp(0.5);
    EXPECT_NEAR(w[0], std::exp(3.0) / z, 1e-6);
    EXPECT_NEAR(w[1], std::exp(2.0) / z, 1e-6);
    EXPECT_NEAR(w[2], std::exp(0.5) / z, 1e-6);
}

TEST(Route, TopkEqualsEPicksEveryExpertInOrder) {
    std::vector<float> logits = {0.f, 0.f, 0.f};
    std::vector<std::int32_t> ids(3);
    std::vector<float> w(3);
    route::softmax_topk(logits.data(), 1, 3, 3, false, ids.data(), w.data());
    EXPECT_EQ(ids, (std::vector<std::int32_t>{0, 1, 2}));
    for (float v : w) EXPECT_NEAR(v, 1.0 / 3, 1e-6);
}

TEST(Capacity, FormulaIsCeilOfCfTkOverE) {
    EXPECT_EQ(route::capacity(0.0, 4096, 2, 16), 0);
    EXPECT_EQ(route::capacity(1.0, 4096, 2, 16), 512);
    EXPECT_EQ(route::capacity(1.25, 10, 1, 3), 5);  // ceil(12.5/3) = ceil(4.1667)
    EXPECT_EQ(route::capacity(1.0, 7, 1, 7), 1);
}

TEST(Capacity, TokenOrderKeepsTheFirstArrivals) {
    // T=5, k=1, E=2: expert 0 chosen by tokens 0,1,3,4; capacity 2 keeps tokens 0 and 1.
    std::vector<std::int32_t> ids = {0, 0, 1, 0, 0};
    std::vector<float> w = {0.1f, 0.2f, 0.9f, 0.8f, 0.7f};
    auto dropped = route::apply_capacity(ids.data(), w.data(), 5, 1, 2, 2, DropPolicy::TokenOrder);
    EXPECT_EQ(dropped, 2);
    EXPECT_EQ(ids, (std::vector<std::int32_t>{0, 0, 1, -1, -1}));
}

TEST(Capacity, ProbabilityKeepsTheHeaviestWithTiesToEarlier) {
    std::vector<std::int32_t> ids = {0, 0, 1, 0, 0};
    std::vector<float> w = {0.1f, 0.8f, 0.9f, 0.8f, 0.7f};
    auto dropped = route::apply_capacity(ids.data(), w.data(), 5, 1, 2, 2, DropPolicy::Probability);
    EXPECT_EQ(dropped, 2);
    // Weights 0.8 (t=1) and 0.8 (t=3) are kept; the tie order does not matter here, 0.1 and 0.7 go.
    EXPECT_EQ(ids, (std::vector<std::int32_t>{-1, 0, 1, 0, -1}));
    // A real tie at the boundary goes to the earlier assignment.
    std::vector<std::int32_t> ids2 = {0, 0, 0};
    std::vector<float> w2 = {0.5f, 0.5f, 0.5f};
    route::apply_capacity(ids2.data(), w2.data(), 3, 1, 1, 2, DropPolicy::Probability);
    EXPECT_EQ(ids2, (std::vector<std::int32_t>{0, 0, -1}));
}

TEST(Skew, ParseAndPopularity) {
    auto hot = route::parse_skew("hot:6.667");
    auto p = route::popularity(hot, 16);
    EXPECT_NEAR(p[0], 6.667 / (6.667 + 15), 1e-12);
    auto z = route::popularity(route::parse_skew("zipf:1"), 3);
    EXPECT_NEAR(z[0], 1.0 / (1 + 0.5 + 1.0 / 3), 1e-12);
    EXPECT_EQ(route::format_skew(route::parse_skew("zipf:1.2")), "zipf:1.2");
    for (const char* bad : {"", "gauss", "zipf", "zipf:", "zipf:-1", "hot:0", "hot:abc", "hot:1x"})
        EXPECT_THROW(route::parse_skew(bad), moe::Error) << bad;
}

TEST(Rng, DeterministicLogIsAccurate) {
    for (float x : {1e-30f, 1e-7f, 0.001f, 0.3f, 0.9999f, 1.0f, 1.5f, 2.0f, 1000.f, 3e30f}) {
        float a = det_log(x);
        double ref = std::log(double(x));
        EXPECT_NEAR(a, ref, 4e-7 * std::max(1.0, std::fabs(ref))) << x;
    }
}

TEST(Rng, SameIndexSameValueDifferentStreamsDiffer) {
    EXPECT_EQ(rng_hash(7, kStreamX, 123), rng_hash(7, kStreamX, 123));
    EXPECT_NE(rng_hash(7, kStreamX, 123), rng_hash(7, kStreamW1, 123));
    EXPECT_NE(rng_hash(7, kStreamX, 123), rng_hash(8, kStreamX, 123));
    float u = rng_uniform_open(1, kStreamGumbel, 5);
    EXPECT_GT(u, 0.0f);
    EXPECT_LT(u, 1.0f);
}

// The concept page's demo: E=16, top-1, one expert weighted 6.0 where the others are 0.9.
// The hot expert's share p = 6/(6+15·0.9); over T tokens its count is Binomial(T, p): within 4σ.
TEST(Route, HotExpertShareWithinFourSigma) {
    const int E = 16;
    const std::int64_t T = 4096;
    for (std::uint64_t seed : {0ull, 1ull, 2ull, 12345ull}) {
        auto lp = route::log_popularity(route::parse_skew("hot:6.666666667"), E);
        std::vector<float> logits(T * E), w(T);
        std::vector<std::int32_t> ids(T);
        route::popularity_logits(seed, lp.data(), T, E, logits.data());
        route::softmax_topk(logits.data(), T, E, 1, true, ids.data(), w.data());
        double p = 6.0 / (6.0 + 15 * 0.9);
        double hot = std::count(ids.begin(), ids.end(), 0);
        double sigma = std::sqrt(T * p * (1 - p));
        EXPECT_NEAR(hot, T * p, 4 * sigma) << "seed " << seed;
    }
}

// With k > 1 the Gumbel-top-k trick samples without replacement; under uniform popularity each expert
// receives T·k/E in expectation.
TEST(Route, UniformTopkIsBalancedInExpectation) {
    const int E = 8, k = 2;
    const std::int64_t T = 20000;
    auto lp = route::log_popularity(route::parse_skew("uniform"), E);
    std::vector<float> logits(T * E), w(T * k);
    std::vector<std::int32_t> ids(T * k);
    route::popularity_logits(3, lp.data(), T, E, logits.data());
    route::softmax_topk(logits.data(), T, E, k, true, ids.data(), w.data());
    double p = double(k) / E;
    for (int e = 0; e < E; ++e) {
        double c = std::count(ids.begin(), ids.end(), e);
        EXPECT_NEAR(c, T * p, 4 * std::sqrt(T * p * (1 - p))) << e;
    }
    for (std::int64_t t = 0; t < T; ++t) EXPECT_NE(ids[t * k], ids[t * k + 1]);
}

// The inclusion probabilities of Gumbel top-k sum to k (every token makes k distinct choices), are 1 at k = E, follow
// k/E under uniform popularity, and match the counts the router itself produces under a hot expert and zipf.
TEST(Route, TopkInclusionSumsToKAndMatchesTheRouter) {
    for (const char* skew : {"uniform", "zipf:1.2", "hot:20", "zipf:3"})
        for (auto [E, k] : {std::pair{16, 2}, {64, 8}, {8, 1}, {128, 4}}) {
            auto inc = route::topk_inclusion(route::parse_skew(skew), E, k);
            EXPECT_NEAR(std::accumulate(inc.begin(), inc.end(), 0.0), k, 1e-6) << skew << " E " << E << " k " << k;
            for (double q : inc) EXPECT_TRUE(q >= 0.0 && q <= 1.0) << q;
        }
    for (double q : route::topk_inclusion(route::parse_skew("uniform"), 16, 2)) EXPECT_NEAR(q, 2.0 / 16, 1e-9);
    for (double q : route::topk_inclusion(route::parse_skew("hot:3"), 4, 4)) EXPECT_EQ(q, 1.0);

    const std::int64_t T = 20000;
    for (const char* skew : {"hot:20", "zipf:1.2"}) {
        const int E = 16, k = 2;
        auto lp = route::log_popularity(route::parse_skew(skew), E);
        std::vector<float> logits(T * E), w(T * k);
        std::vector<std::int32_t> ids(T * k);
        route::popularity_logits(11, lp.data(), T, E, logits.data());
        route::softmax_topk(logits.data(), T, E, k, true, ids.data(), w.data());
        auto inc = route::topk_inclusion(route::parse_skew(skew), E, k);
        for (int e = 0; e < E; ++e) {
            const double c = std::count(ids.begin(), ids.end(), e), q = inc[e];
            EXPECT_NEAR(c, T * q, 4 * std::sqrt(T * q * (1 - q)) + 1) << skew << " expert " << e;
        }
    }
}

// The busiest-expert estimate auto reads on the device path: above the busiest count the router gives in most draws,
// and bounded by the tokens and the capacity.
TEST(Route, BusiestEstimateBoundsTheRoutersBusiestExpert) {
    const int E = 16, k = 2;
    const std::int64_t T = 64;  // 8 tokens per expert, where auto weighs mid's 32-token tile
    for (const char* skew : {"uniform", "hot:5", "hot:20"}) {
        const std::int64_t est = route::busiest_estimate(route::parse_skew(skew), E, k, T, 0);
        auto lp = route::log_popularity(route::parse_skew(skew), E);
        int above = 0, far_below = 0;
        for (std::uint64_t seed = 0; seed < 50; ++seed) {
            std::vector<float> logits(T * E), w(T * k);
            std::vector<std::int32_t> ids(T * k);
            route::popularity_logits(seed, lp.data(), T, E, logits.data());
            route::softmax_topk(logits.data(), T, E, k, true, ids.data(), w.data());
            std::int64_t busiest = 0;
            for (int e = 0; e < E; ++e)
                busiest = std::max<std::int64_t>(busiest, std::count(ids.begin(), ids.end(), e));
            above += busiest > est;
            far_below += busiest < est / 2;
        }
        EXPECT_LE(above, 10) << skew << ": estimate " << est;
        EXPECT_EQ(far_below, 0) << skew << ": estimate " << est;
    }
    EXPECT_GT(route::busiest_estimate(route::parse_skew("hot:20"), E, k, T, 0), 32);
    EXPECT_LE(route::busiest_estimate(route::parse_skew("uniform"), E, k, T, 0), 32);
    EXPECT_EQ(route::busiest_estimate(route::parse_skew("hot:1000"), E, k, T, 0), T);
    EXPECT_EQ(route::busiest_estimate(route::parse_skew("hot:20"), E, k, T, 10), 10);
    EXPECT_EQ(route::busiest_estimate(route::parse_skew("uniform"), E, k, 0, 0), 0);
}
