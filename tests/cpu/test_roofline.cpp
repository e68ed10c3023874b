// The expert FFN's roofline data (demos/roofline.hpp): the two floors against hand-computed values for the
// classroom shape, the ridge, the lines the app draws, the modeled fallback's provenance and the errors.
#include <gtest/gtest.h>

#include <cmath>

#include "demos/roofline.hpp"
#include "kernels/api.hpp"
#include "kernels/common/error.hpp"

namespace {

// The classroom shape (d = 1024, F = 2816, E = 16, top-2) under round ceilings, so the arithmetic is checkable by
// hand: one expert's weights are 3·2816·1024 bf16 = 17,301,504 bytes.
const demos::RooflineShape kClassroom{1024, 2816, 16, 2};

demos::RooflineCeilings round_ceilings() {
    demos::RooflineCeilings c;
    c.read_gbps = 2000;
    c.gemm_tflops = 500;
    return c;
}

}  // namespace

TEST(Roofline, FloorsMatchHandComputedValues) {
    const demos::RooflineCeilings c = round_ceilings();
    // 64 tokens per expert: all 16 experts active; 16 × 17,301,504 B / 2000 GB/s = 138.412032 µs of weights;
    // 2 · 1024 rows · 3·2816·1024 = 17.72 GFLOP / 500 TFLOP/s = 35.43348 µs of math: weight-bound.
    const demos::RooflineFloor f64 = demos::roofline_floor(kClassroom, c, 64);
    EXPECT_NEAR(f64.active_experts, 16.0, 1e-3);
    EXPECT_NEAR(f64.weight_ms, 0.138412032, 1e-9);
    EXPECT_NEAR(f64.math_ms, 0.0354334801920, 1e-12);
    EXPECT_TRUE(f64.weight_bound());
    EXPECT_DOUBLE_EQ(f64.roof_ms(), f64.weight_ms);
    // 512 tokens per expert: 8192 rows, 141.73 GFLOP / 500 TFLOP/s = 283.4678 µs: math-bound.
    const demos::RooflineFloor f512 = demos::roofline_floor(kClassroom, c, 512);
    EXPECT_NEAR(f512.math_ms, 0.283467841536, 1e-12);
    EXPECT_NEAR(f512.weight_ms, 0.138412032, 1e-9);
    EXPECT_FALSE(f512.weight_bound());
    EXPECT_DOUBLE_EQ(f512.roof_ms(), f512.math_ms);
    // 1 token per expert: T = 8 tokens pick 2 of 16 experts each, 16·(1 − (7/8)^8) = 10.5023 experts active, so
    // the weights read are 10.5023/16 of them: 90.85242 µs.
    const demos::RooflineFloor f1 = demos::roofline_floor(kClassroom, c, 1);
    EXPECT_NEAR(f1.active_experts, 10.502257347, 1e-8);
    EXPECT_NEAR(f1.weight_ms, 0.09085242375, 1e-10);
}

TEST(Roofline, RidgeIsWhereTheFloorsMeet) {
    const demos::RooflineCeilings c = round_ceilings();
    // 500 TFLOP/s ÷ 2000 GB/s = 250 FLOP per byte = 250 tokens per expert, for any d, F, E.
    EXPECT_DOUBLE_EQ(demos::ridge_tokens_per_expert(c), 250.0);
    const demos::RooflineFloor f = demos::roofline_floor(kClassroom, c, 250);
    EXPECT_NEAR(f.math_ms, 0.138412032, 1e-12);
    EXPECT_NEAR(f.math_ms, f.weight_ms, 1e-9);
    const demos::RooflineFloor g = demos::roofline_floor({7168, 2048, 256, 8}, c, 250);
    EXPECT_NEAR(g.math_ms / g.weight_ms, 1.0, 1e-9);
}

TEST(Roofline, ExpectedActiveExperts) {
    EXPECT_DOUBLE_EQ(demos::expected_active_experts(8, 8, 0.5), 8.0);  // top-k = E: every token reaches all
    EXPECT_DOUBLE_EQ(demos::expected_active_experts(16, 2, 0), 0.0);
    // E = 4, k = 1, 1 token per expert: T = 4, 4·(1 − (3/4)^4) = 2.734375.
    EXPECT_DOUBLE_EQ(demos::expected_active_experts(4, 1, 1), 2.734375);
    EXPECT_LT(demos::expected_active_experts(256, 8, 1), demos::expected_active_experts(256, 8, 2));
}

TEST(Roofline, LinesSpanTheSweepOnALogGrid) {
    const demos::ExpertRoofline rl = demos::roofline_lines(kClassroom, round_ceilings(), 1, 4096, 4);
    ASSERT_EQ(rl.lines.size(), 49u);  // 12 doublings × 4 + 1
    EXPECT_DOUBLE_EQ(rl.lines.front().tokens_per_expert, 1.0);
    EXPECT_DOUBLE_EQ(rl.lines.back().tokens_per_expert, 4096.0);
    EXPECT_NEAR(rl.lines[4].tokens_per_expert, 2.0, 1e-12);
    for (std::size_t i = 1; i < rl.lines.size(); ++i) {
        const auto &a = rl.lines[i - 1], &b = rl.lines[i];
        EXPECT_NEAR(b.tokens_per_expert / a.tokens_per_expert, std::exp2(0.25), 1e-12);
        EXPECT_NEAR(b.math_ms / a.math_ms, std::exp2(0.25), 1e-9);  // FLOPs grow with the tokens
        EXPECT_GE(b.weight_ms, a.weight_ms);                        // the weights never get cheaper
        EXPECT_GE(b.roof_ms(), a.roof_ms());
    }
    EXPECT_TRUE(rl.points.empty());
    // Flat weights once every expert is active: from 16 tokens per expert on, within 0.001%.
    EXPECT_NEAR(rl.lines[16].weight_ms / rl.lines.back().weight_ms, 1.0, 1e-5);
}

TEST(Roofline, ModeledUsesTheRecordedCeilingsAndSaysSo) {
    const demos::ExpertRoofline rl = demos::modeled_roofline(kClassroom);
    EXPECT_EQ(rl.source, demos::lesson::Source::Modeled);
    EXPECT_EQ(rl.ceilings.source, demos::lesson::Source::Modeled);
    EXPECT_DOUBLE_EQ(rl.ceilings.read_gbps, 4473);  // kernels/bench/RESULTS.md, the H200 run of 2026-11-29
    EXPECT_DOUBLE_EQ(rl.ceilings.gemm_tflops, 785);
    EXPECT_TRUE(rl.points.empty()) << "a modeled roofline invents no timed points";
    ASSERT_FALSE(rl.notes.empty());
    EXPECT_NE(rl.notes[0].find("RESULTS.md"), std::string::npos) << rl.notes[0];
    // RESULTS.md's classroom roofline at 64 tokens per expert: 61.9 µs, weight-bound.
    const demos::RooflineFloor f = demos::roofline_floor(kClassroom, rl.ceilings, 64);
    EXPECT_NEAR(f.roof_ms() * 1e3, 61.9, 0.05);
}

TEST(Roofline, BadShapesAndCeilingsAreNamed) {
    const demos::RooflineCeilings c = round_ceilings();
    auto message = [&](demos::RooflineShape s, demos::RooflineCeilings cc, double x) {
        try {
            demos::roofline_floor(s, cc, x);
        } catch (const moe::Error& e) {
            EXPECT_EQ(e.kind(), moe::ErrorKind::BadInput);
            return std::string(e.what());
        }
        return std::string("no error");
    };
    EXPECT_NE(message({1024, 2816, 4, 8}, c, 1).find("top_k 8 must be in 1..4"), std::string::npos);
    EXPECT_NE(message({0, 2816, 16, 2}, c, 1).find("hidden 0"), std::string::npos);
    demos::RooflineCeilings zero = c;
    zero.read_gbps = 0;
    EXPECT_NE(message(kClassroom, zero, 1).find("read bandwidth"), std::string::npos);
    EXPECT_NE(message(kClassroom, c, 0).find("tokens per expert 0"), std::string::npos);
    EXPECT_THROW(demos::roofline_lines(kClassroom, c, 8, 4), moe::Error);
}

TEST(Roofline, TheExperimentSweepBecomesOneExpertsRoofline) {
    demos::ExperimentResult x;
    x.scalars["peak_tflops_meas"] = {500, demos::lesson::Source::Modeled};
    x.scalars["mem_gbps_meas"] = {2000, demos::lesson::Source::Modeled};
    for (double n : {1.0, 8.0, 64.0}) {
        demos::CurvePoint p;
        p.x = n;
        p.time.median_ms = p.time.p95_ms = 0.01 * n;
        p.time.source = demos::lesson::Source::Modeled;
        x.curve.push_back(p);
    }
    const demos::ExpertRoofline rl = demos::roofline_of_experiment(x, 1024, 2816);
    EXPECT_EQ(rl.shape, (demos::RooflineShape{1024, 2816, 1, 1}));
    EXPECT_EQ(rl.ceilings.bandwidth, "copy");
    ASSERT_EQ(rl.points.size(), 3u);
    EXPECT_DOUBLE_EQ(rl.lines.front().tokens_per_expert, 1.0);
    EXPECT_DOUBLE_EQ(rl.lines.back().tokens_per_expert, 64.0);
    // One expert's weights, 17,301,504 B at 2000 GB/s: 8.650752 µs, the floor at 1 token.
    EXPECT_NEAR(rl.points[0].floor_ms, 0.008650752, 1e-12);
    EXPECT_NEAR(rl.points[0].pct_of_roofline(), 86.50752, 1e-6);
    EXPECT_TRUE(demos::roofline_of_experiment(demos::ExperimentResult{}, 1024, 2816).lines.empty());
}

TEST(Roofline, MeasuringNeedsAGpu) {
    if (!moe::gpu::devices().empty()) GTEST_SKIP() << "a GPU is here: the gpu tests measure the roofline";
    try {
        demos::measure_roofline(kClassroom, {}, {});
        ADD_FAILURE() << "measured a roofline without a GPU";
    } catch (const moe::Error& e) {
        EXPECT_EQ(e.kind(), moe::ErrorKind::NoDevice);
    }
}

// The benchmark's verdict against PERF.md's targets: counts at and above each bar, the short sizes named with their
// numbers, sizes without a peer left out of the ratio, and nothing for nothing.
TEST(Roofline, TargetsLineCountsAndNamesTheShortSizes) {
    EXPECT_EQ(demos::targets_line({}), "");
    EXPECT_EQ(demos::targets_line({{"classroom 8", 80.0, 1.2}, {"S1 1", 95.9, 1.82}}),
              "2 of 2 sizes at >= 80% of the roofline; 2 of 2 at >= 1.2x PyTorch");
    EXPECT_EQ(demos::targets_line({{"classroom 1", 71.66, 2.51}, {"S1 4096", 80.5, 1.139}, {"S3 512", 90.0, 0.0}}),
              "2 of 3 sizes at >= 80% of the roofline (short: classroom 1 71.7%); 1 of 2 at >= 1.2x PyTorch (short: "
              "S1 4096 1.14x)");
    // a bar of one's own; a size just short is not printed as if it were at the bar
    EXPECT_EQ(demos::targets_line({{"a 1", 50.0, 0.0}, {"a 8", 74.99, 0.0}, {"b 8", 75.0, 0.0}}, 75.0),
              "1 of 3 sizes at >= 75% of the roofline (short: a 1 50.0%, a 8 74.99%); no PyTorch peer timed");
    EXPECT_EQ(demos::targets_line({{"a 1", 90.0, 1.199}}),
              "1 of 1 sizes at >= 80% of the roofline; 0 of 1 at >= 1.2x "
              "PyTorch (short: a 1 1.199x)");
}
