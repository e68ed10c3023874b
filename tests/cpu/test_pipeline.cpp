// The ping-pong pipeline model held to MegaScale-Infer's closed forms (Eqs. 1-5) where they apply, and to
// the exact expression derived in demos/pipeline.cpp where they do not; plus the linear-form stage times.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "demos/pipeline.hpp"
#include "kernels/common/error.hpp"

namespace {

using demos::PipelineInput;
using demos::PipelineSummary;
using demos::Span;

constexpr double kTol = 1e-9;

PipelineSummary sim(double ta, double te, double tc, int L, int m, std::vector<Span>* spans = nullptr) {
    PipelineInput in;
    in.layers = L;
    in.micro_batches = m;
    in.ta_ms = ta;
    in.te_ms = te;
    in.tc_ms = tc;
    return demos::simulate_pipeline(in, spans);
}

double closed_form(double ta, double te, double tc, int L, int m) {
    return (ta + te + 2 * tc) + std::max(ta, te) * (m * L - 1);
}

// The exact total derived in demos/pipeline.cpp: the slowest server P works back to back inside a layer,
// and each layer boundary waits max(0, R − m·P) for micro-batch 0's round trip R.
double exact_total(double ta, double te, double tc, int L, int m) {
    const double R = ta + te + 2 * tc, P = std::max({ta, te, tc});
    return R + P * (m * L - 1) + (L - 1) * std::max(0.0, R - m * P);
}

std::vector<Span> lane(const std::vector<Span>& spans, const std::string& name) {
    std::vector<Span> out;
    for (const Span& s : spans)
        if (s.lane == name) out.push_back(s);
    std::sort(out.begin(), out.end(), [](const Span& a, const Span& b) { return a.start_ms < b.start_ms; });
    return out;
}

// Largest idle gap between consecutive spans of a lane, from its first span to its last.
double largest_gap(const std::vector<Span>& spans) {
    double gap = 0;
    for (std::size_t i = 1; i < spans.size(); ++i) gap = std::max(gap, spans[i].start_ms - spans[i - 1].end_ms);
    return gap;
}

const int kLayers[] = {1, 2, 4, 8};
const double kRatios[] = {0.0, 0.25, 0.5, 1.0};  // Tc/Tf
constexpr double kTf = 0.7;                       // not a power of two, so rounding is exercised

// (a) Ta = Te and m ≥ 2(1+Tc/Tf): the simulation equals the closed form.
TEST(Pipeline, ClosedFormExactWhenBalancedAndHidden) {
    int checked = 0;
    for (int L : kLayers)
        for (int m = 1; m <= 6; ++m)
            for (double r : kRatios) {
                if (m < 2 * (1 + r)) continue;
                const double tc = r * kTf;
                const PipelineSummary s = sim(kTf, kTf, tc, L, m);
                SCOPED_TRACE("L=" + std::to_string(L) + " m=" + std::to_string(m) + " r=" + std::to_string(r));
                EXPECT_TRUE(s.present);
                EXPECT_NEAR(s.total_ms, closed_form(kTf, kTf, tc, L, m), kTol);
                EXPECT_NEAR(s.closed_form_ms, closed_form(kTf, kTf, tc, L, m), kTol);
                EXPECT_TRUE(s.comm_hidden);
                ++checked;
            }
    EXPECT_GT(checked, 40);
}

// (b) Hidden exactly when m ≥ 2(1+Tc/Tf): then the expert pool never idles from its first span to its
// last; otherwise, with L ≥ 2, it idles at each layer boundary and the total exceeds the closed form.
TEST(Pipeline, CommunicationHiddenExactlyAtPaperBound) {
    for (int L : kLayers)
        for (int m = 1; m <= 6; ++m)
            for (double r : kRatios) {
                SCOPED_TRACE("L=" + std::to_string(L) + " m=" + std::to_string(m) + " r=" + std::to_string(r));
                std::vector<Span> spans;
                const PipelineSummary s = sim(kTf, kTf, r * kTf, L, m, &spans);
                const bool paper_hidden = m >= 2 * (1 + r);
                EXPECT_EQ(s.comm_hidden, paper_hidden);
                EXPECT_DOUBLE_EQ(s.min_micro_batches, 2 * (1 + r));
                const double gap = largest_gap(lane(spans, "experts"));
                if (paper_hidden) {
                    EXPECT_NEAR(gap, 0.0, kTol);
                    EXPECT_NEAR(largest_gap(lane(spans, "attention")), 0.0, kTol);
                } else if (L >= 2) {
                    // The pools wait R − m·Tf at each boundary for micro-batch 0's round trip.
                    const double wait = 2 * kTf + 2 * r * kTf - m * kTf;
                    EXPECT_NEAR(gap, wait, kTol);
                    EXPECT_GT(s.total_ms, s.closed_form_ms + 1e-6);
                    EXPECT_NEAR(s.total_ms - s.closed_form_ms, (L - 1) * wait, kTol);
                } else {
                    // One layer has no boundary to wait at: the closed form holds even unhidden.
                    EXPECT_NEAR(s.total_ms, s.closed_form_ms, kTol);
                }
            }
}

// The derived expression holds everywhere, including Ta ≠ Te and Tc > Tf (links as the bottleneck).
TEST(Pipeline, ExactTotalOverRandomRegimes) {
    std::mt19937 rng(7);
    std::uniform_real_distribution<double> t(0.05, 2.0);
    for (int trial = 0; trial < 400; ++trial) {
        const double ta = t(rng), te = t(rng), tc = t(rng) * (trial % 3 == 0 ? 0.2 : 1.0);
        const int L = 1 + trial % 5, m = 1 + (trial / 5) % 7;
        SCOPED_TRACE("ta=" + std::to_string(ta) + " te=" + std::to_string(te) + " tc=" + std::to_string(tc) +
                     " L=" + std::to_string(L) + " m=" + std::to_string(m));
        const PipelineSummary s = sim(ta, te, tc, L, m);
        EXPECT_NEAR(s.total_ms, exact_total(ta, te, tc, L, m), kTol);
        // Never faster than the paper's closed form; equal to it whenever the paper's conditions hold.
        EXPECT_GE(s.total_ms, s.closed_form_ms - kTol);
        if (s.comm_hidden) {
            EXPECT_NEAR(s.total_ms, s.closed_form_ms, kTol);
        }
        if (tc > std::max(ta, te) && m * L >= 2) {
            EXPECT_FALSE(s.comm_hidden);
            EXPECT_GT(s.total_ms, s.closed_form_ms + 1e-6);
        }
    }
}

// For Ta ≠ Te the paper's m ≥ 2(1+Tc/Tf) is sufficient but not necessary: m·Tf ≥ Ta+Te+2Tc suffices.
TEST(Pipeline, PaperBoundIsConservativeWhenUnbalanced) {
    const double ta = 1.0, te = 0.5, tc = 0.25;  // Tf = 1, paper asks m ≥ 2.5, the round trip is 2
    const PipelineSummary s = sim(ta, te, tc, 4, 2);
    EXPECT_FALSE(s.comm_hidden);
    EXPECT_NEAR(s.total_ms, s.closed_form_ms, kTol);
}

// (c) Eq. 4: (Ta+Te+2Tc) + m·Tf·(L−1) ≤ per-micro-batch latency ≤ m·Tf·L, for Ta = Te. The lower bound
// holds in every regime; the upper one only when communication is hidden (otherwise each layer takes the
// round trip R > m·Tf).
TEST(Pipeline, PerMicroBatchLatencyBounds) {
    for (int L : kLayers)
        for (int m = 1; m <= 6; ++m)
            for (double r : kRatios) {
                SCOPED_TRACE("L=" + std::to_string(L) + " m=" + std::to_string(m) + " r=" + std::to_string(r));
                const double tc = r * kTf;
                std::vector<Span> spans;
                const PipelineSummary s = sim(kTf, kTf, tc, L, m, &spans);
                const double lower = (2 * kTf + 2 * tc) + m * kTf * (L - 1);
                const double upper = m * kTf * L;
                for (int i = 0; i < m; ++i) {
                    double first = 1e300, last = -1;
                    for (const Span& sp : spans) {
                        if (sp.micro_batch != i) continue;
                        first = std::min(first, sp.start_ms);
                        last = std::max(last, sp.end_ms);
                    }
                    const double latency = last - first;
                    EXPECT_GE(latency, lower - kTol);
                    if (s.comm_hidden) {
                        EXPECT_LE(latency, upper + kTol);
                    } else if (L >= 2) {
                        EXPECT_GT(latency, upper);
                    }
                }
            }
}

// (d) One step at a time per lane, every dependency respected, every step present exactly once.
TEST(Pipeline, SpansRespectLanesAndDependencies) {
    std::mt19937 rng(11);
    std::uniform_real_distribution<double> t(0.0, 1.5);
    for (int trial = 0; trial < 120; ++trial) {
        const int L = 1 + trial % 4, m = 1 + trial % 6;
        std::vector<Span> spans;
        const PipelineSummary s = sim(t(rng), t(rng), t(rng), L, m, &spans);
        ASSERT_EQ(spans.size(), static_cast<std::size_t>(4 * L * m));
        for (const char* name : {"attention", "a2e", "experts", "e2a"}) {
            const std::vector<Span> l = lane(spans, name);
            ASSERT_EQ(l.size(), static_cast<std::size_t>(L * m));
            for (std::size_t i = 1; i < l.size(); ++i) EXPECT_GE(l[i].start_ms, l[i - 1].end_ms - kTol) << name;
        }
        std::map<std::tuple<std::string, int, int>, Span> by;
        for (const Span& sp : spans) {
            EXPECT_EQ(sp.provenance, demos::Provenance::Modeled);
            EXPECT_LE(sp.start_ms, sp.end_ms);
            EXPECT_LE(sp.end_ms, s.total_ms + kTol);
            EXPECT_TRUE(by.emplace(std::make_tuple(sp.lane, sp.layer, sp.micro_batch), sp).second);
        }
        for (int l = 0; l < L; ++l)
            for (int i = 0; i < m; ++i) {
                auto at = [&](const char* n) { return by.at(std::make_tuple(std::string(n), l, i)); };
                EXPECT_GE(at("a2e").start_ms, at("attention").end_ms - kTol);
                EXPECT_GE(at("experts").start_ms, at("a2e").end_ms - kTol);
                EXPECT_GE(at("e2a").start_ms, at("experts").end_ms - kTol);
                if (l + 1 < L) {
                    EXPECT_GE(by.at(std::make_tuple(std::string("attention"), l + 1, i)).start_ms,
                              at("e2a").end_ms - kTol);
                }
            }
        double last_e2a = 0;
        for (const Span& sp : lane(spans, "e2a"))
            if (sp.layer == L - 1) last_e2a = std::max(last_e2a, sp.end_ms);
        EXPECT_NEAR(s.total_ms, last_e2a, kTol);
    }
}

// Figure 4: with enough micro-batches the attention pool takes them round-robin, layer after layer.
TEST(Pipeline, PingPongOrderAndLabels) {
    std::vector<Span> spans;
    sim(1.0, 1.0, 0.5, 3, 3, &spans);
    const std::vector<Span> a = lane(spans, "attention");
    ASSERT_EQ(a.size(), 9u);
    for (int j = 0; j < 9; ++j) {
        EXPECT_EQ(a[j].layer, j / 3);
        EXPECT_EQ(a[j].micro_batch, j % 3);
        EXPECT_NEAR(a[j].start_ms, j * 1.0, kTol);
    }
    EXPECT_EQ(a[4].label, "A l1 mb1");
    EXPECT_EQ(lane(spans, "a2e")[0].label, "A2E l0 mb0");
    EXPECT_EQ(lane(spans, "experts")[2].label, "E l0 mb2");
    EXPECT_EQ(lane(spans, "e2a")[1].label, "E2A l0 mb1");
    // Micro-batch 0 is back from its first round trip (1 + 0.5 + 1 + 0.5) before the pool finishes mb2.
    EXPECT_NEAR(lane(spans, "e2a")[0].end_ms, 3.0, kTol);
}

// Spans are appended, not replaced, so a caller can collect several runs into one timeline.
TEST(Pipeline, AppendsToSpans) {
    std::vector<Span> spans(2);
    sim(1, 1, 0, 1, 2, &spans);
    EXPECT_EQ(spans.size(), 2u + 8u);
}

// (e) One micro-batch has nothing to overlap with: every layer costs the full round trip.
TEST(Pipeline, SingleMicroBatchIsSerial) {
    const double cases[][3] = {{1, 1, 0}, {1, 1, 0.3}, {0.4, 1.3, 0.2}, {2, 0.5, 3}, {0.25, 0.25, 1}};
    for (const auto& c : cases)
        for (int L : kLayers) {
            const PipelineSummary s = sim(c[0], c[1], c[2], L, 1);
            EXPECT_NEAR(s.total_ms, L * (c[0] + c[1] + 2 * c[2]), kTol);
            EXPECT_FALSE(s.comm_hidden);
        }
}

// (f) Utilisations are busy time over the total, within [0, 1]; the bottleneck pool nears 1 when hidden.
TEST(Pipeline, UtilisationsInUnitInterval) {
    std::mt19937 rng(3);
    std::uniform_real_distribution<double> t(0.0, 2.0);
    for (int trial = 0; trial < 200; ++trial) {
        const double ta = t(rng), te = t(rng), tc = t(rng);
        const int L = 1 + trial % 8, m = 1 + trial % 6;
        const PipelineSummary s = sim(ta, te, tc, L, m);
        EXPECT_GE(s.attention_util, 0.0);
        EXPECT_LE(s.attention_util, 1.0 + kTol);
        EXPECT_GE(s.expert_util, 0.0);
        EXPECT_LE(s.expert_util, 1.0 + kTol);
        if (s.total_ms > 0) {
            EXPECT_NEAR(s.attention_util, m * L * ta / s.total_ms, kTol);
            EXPECT_NEAR(s.expert_util, m * L * te / s.total_ms, kTol);
        }
    }
    const PipelineSummary s = sim(1, 1, 0.25, 8, 4);
    EXPECT_NEAR(s.attention_util, 32.0 / s.closed_form_ms, kTol);
    EXPECT_GT(s.attention_util, 0.9);
}

TEST(Pipeline, DegenerateAndBadInputs) {
    const PipelineSummary z = sim(0, 0, 0, 3, 2);
    EXPECT_EQ(z.total_ms, 0.0);
    EXPECT_EQ(z.attention_util, 0.0);
    EXPECT_TRUE(z.comm_hidden);
    const PipelineSummary c = sim(0, 0, 0.5, 2, 8);
    EXPECT_TRUE(std::isinf(c.min_micro_batches));
    EXPECT_FALSE(c.comm_hidden);
    EXPECT_NEAR(c.total_ms, exact_total(0, 0, 0.5, 2, 8), kTol);

    auto bad = [](double ta, double te, double tc, int L, int m) {
        try {
            sim(ta, te, tc, L, m);
        } catch (const moe::Error& e) {
            return e.kind() == moe::ErrorKind::BadInput;
        }
        return false;
    };
    EXPECT_TRUE(bad(1, 1, 0, 0, 1));
    EXPECT_TRUE(bad(1, 1, 0, 1, 0));
    EXPECT_TRUE(bad(-1, 1, 0, 1, 1));
    EXPECT_TRUE(bad(1, 1, NAN, 1, 1));
    EXPECT_TRUE(bad(1, 1, 0, 100000, 100));
}

// (g) The linear forms on a hand-computed example: B = 4096, m = 4, n_a = 2, E = 16, K = 2, h = 1024,
// bf16, 400 GB/s. ba = 4096/8 = 512, be = 4096·2/64 = 128.
//   Ta = 0.05·512 + 120 = 145.6 µs,  Te = 0.08·128 + 90 = 100.24 µs,
//   Tc = max(512·1024·2·2, 128·1024·2) B / 400e9 B/s = 2 097 152 / 4e11 s = 5.24288 µs.
TEST(PipelineInput, LinearFormsByHand) {
    demos::Scenario s;
    s.tokens = 4096;
    s.micro_batches = 4;
    s.attention_replicas = 2;
    s.experts = 16;
    s.top_k = 2;
    s.hidden = 1024;
    s.dtype = "bf16";
    s.link_gbps = 400;
    s.layers = 3;
    s.k1 = 0.05, s.k2 = 120, s.k3 = 0.08, s.k4 = 90;
    s.ta_ms = s.te_ms = s.tc_ms = -1;
    const PipelineInput in = demos::pipeline_input(s);
    EXPECT_EQ(in.layers, 3);
    EXPECT_EQ(in.micro_batches, 4);
    EXPECT_NEAR(in.ta_ms, 0.1456, 1e-12);
    EXPECT_NEAR(in.te_ms, 0.10024, 1e-12);
    EXPECT_NEAR(in.tc_ms, 0.00524288, 1e-12);

    // The receive side wins when n_a > E (receive/send = be/(ba·K) = n_a/E).
    // n_a = 32, E = 16: ba = 32, be = 128; sides 32·1024·2·2 = 131 072 and 128·1024·2 = 262 144 bytes.
    demos::Scenario r = s;
    r.attention_replicas = 32;
    EXPECT_NEAR(demos::pipeline_input(r).tc_ms, 262144.0 / 4e11 * 1e3, 1e-15);

    // Bytes per element follow the dtype: fp8 halves the transfer, fp32 doubles it.
    demos::Scenario f8 = s, f32 = s;
    f8.dtype = "fp8";
    f32.dtype = "fp32";
    EXPECT_NEAR(demos::pipeline_input(f8).tc_ms, 0.00262144, 1e-12);
    EXPECT_NEAR(demos::pipeline_input(f32).tc_ms, 0.01048576, 1e-12);

    // Direct times override the linear forms one by one.
    demos::Scenario d = s;
    d.ta_ms = 2.5;
    d.tc_ms = 0.0;
    const PipelineInput di = demos::pipeline_input(d);
    EXPECT_EQ(di.ta_ms, 2.5);
    EXPECT_NEAR(di.te_ms, 0.10024, 1e-12);
    EXPECT_EQ(di.tc_ms, 0.0);
    d.te_ms = 1.25;
    d.tc_ms = 0.5;
    EXPECT_EQ(demos::pipeline_input(d).te_ms, 1.25);
    EXPECT_EQ(demos::pipeline_input(d).tc_ms, 0.5);
}

TEST(PipelineInput, RejectsBadScenario) {
    demos::Scenario s;
    s.attention_replicas = 0;
    EXPECT_THROW(demos::pipeline_input(s), moe::Error);
    s.attention_replicas = 1;
    s.link_gbps = 0;
    EXPECT_THROW(demos::pipeline_input(s), moe::Error);
}

}  // namespace
