// The roofline the app's panel measures (demos::measure_roofline): every sweep point timed and checked on this
// GPU, under the lines drawn from the same run's ceilings, with progress reported and a stop honoured.
#include <gtest/gtest.h>

#include <string>

#include "demos/roofline.hpp"
#include "kernels/common/error.hpp"
#include "tests/gpu/gpu_test.hpp"

TEST(GpuRoofline, TheAppsRooflineIsMeasuredCheckedAndUnderTheLines) {
    MOE_REQUIRE_GPU();
    if (gpu_test::quick())
        GTEST_SKIP() << "measures 1-2 GiB ceilings and an 8192^3 GEMM per point: not under the sanitizer";
    const demos::RooflineShape classroom{1024, 2816, 16, 2};
    std::vector<float> fractions;
    const demos::ExpertRoofline rl = demos::measure_roofline(
        classroom, [] { return false; }, [&](float f, const std::string&) { fractions.push_back(f); });
    EXPECT_EQ(rl.source, demos::lesson::Source::MeasuredGpu);
    EXPECT_EQ(rl.ceilings.source, demos::lesson::Source::MeasuredGpu);
    EXPECT_FALSE(rl.ceilings.device.empty());
    EXPECT_GT(rl.ceilings.read_gbps, 0);
    EXPECT_GT(rl.ceilings.gemm_tflops, 0);
    ASSERT_FALSE(rl.lines.empty());
    ASSERT_EQ(rl.points.size(), demos::roofline_sweep().size());
    for (std::size_t i = 0; i < rl.points.size(); ++i) {
        const demos::RooflinePoint& p = rl.points[i];
        SCOPED_TRACE("tokens per expert " + std::to_string(p.tokens_per_expert));
        EXPECT_NEAR(p.tokens_per_expert, demos::roofline_sweep()[i], 0.5);
        EXPECT_EQ(p.wrong, 0);
        EXPECT_FALSE(p.impl.empty());
        EXPECT_EQ(p.source, demos::lesson::Source::MeasuredGpu);
        EXPECT_GT(p.median_ms, 0);
        EXPECT_LE(p.median_ms, p.p95_ms);
        // Nothing beats the roofline by more than timing noise; the drawn line agrees with the point's own floor
        // (the same formula, the expected active experts against the routed ones, ceilings re-measured per point).
        EXPECT_GT(p.median_ms, 0.8 * p.floor_ms);
        const double line = demos::roofline_floor(classroom, rl.ceilings, p.tokens_per_expert).roof_ms();
        EXPECT_NEAR(p.floor_ms / line, 1.0, 0.25);
        // Beside each point, the probe of its bound: the weights read alone up to 64 tokens per expert, cuBLAS over
        // all rows from 512 (the classroom shape's ridge is about 180)
        EXPECT_EQ(p.probe, p.tokens_per_expert <= 64 ? "stream" : "dense");
        EXPECT_GT(p.probe_ms, 0.5 * p.floor_ms);
        // and above the ridge the same FFN with every expert the same tokens
        if (p.tokens_per_expert <= 64)
            EXPECT_EQ(p.balanced_ms, 0);
        else
            EXPECT_GT(p.balanced_ms, 0.8 * p.floor_ms);
    }
    ASSERT_FALSE(fractions.empty());
    EXPECT_FLOAT_EQ(fractions.back(), 1.0f);
}

TEST(GpuRoofline, AStopEndsTheMeasurementBetweenPoints) {
    MOE_REQUIRE_GPU();
    try {
        demos::measure_roofline({256, 512, 8, 2}, [] { return true; }, {});
        ADD_FAILURE() << "a stop before the first point did not stop it";
    } catch (const moe::Error& e) {
        EXPECT_EQ(std::string(e.what()).find("cancelled") != std::string::npos, true) << e.what();
    }
}
