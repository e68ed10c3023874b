// The benchmark's clock sampler (kernels/bench/clocks.hpp): what a row says about the SM clock and the board's power,
// and that NVML's samples are plausible while the GPU works.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "kernels/bench/clocks.hpp"
#include "kernels/cuda/launchers.hpp"
#include "tests/gpu/gpu_test.hpp"

using moe::bench::ClockStats;
using moe::bench::describe;

TEST(GpuClocks, TheDescriptionSaysWhatHeldTheClockDown) {
    EXPECT_EQ(describe(ClockStats{}), "") << "no samples: nothing to say";
    ClockStats s;
    s.samples = 40, s.mean_mhz = 1410.4, s.min_mhz = 1395, s.max_mhz = 1440, s.top_mhz = 1980;
    s.power_w = 693.2, s.limit_w = 700, s.reasons = moe::bench::kClockPowerCap | 0x1;  // 0x1: idle, not a limit
    EXPECT_EQ(describe(s), "SM 1,410 MHz (1,395-1,440) of 1,980, 693 W of 700, power cap");
    ClockStats t;
    t.samples = 3, t.mean_mhz = t.min_mhz = t.max_mhz = 1980, t.top_mhz = 1980;  // steady: no range, no power known
    t.reasons = moe::bench::kClockHwThermal;
    EXPECT_EQ(describe(t), "SM 1,980 MHz of 1,980, thermal");
}

TEST(GpuClocks, TheSamplerSeesTheClockWhileTheGpuWorks) {
    MOE_REQUIRE_GPU();
    moe::bench::ClockSampler clk;
    if (!clk.available()) GTEST_SKIP() << "NVML (libnvidia-ml.so.1, from the driver) is not there to sample";
    clk.start();
    const double tflops = moe::gpu::measure_gemm_tflops(4096, 40);  // tens of milliseconds of tensor-core work
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const ClockStats s = clk.stop();
    EXPECT_GT(tflops, 0);
    ASSERT_GE(s.samples, 10) << "one sample a millisecond";
    EXPECT_LE(s.min_mhz, s.mean_mhz);
    EXPECT_LE(s.mean_mhz, s.max_mhz);
    EXPECT_GT(s.min_mhz, 0);
    if (s.top_mhz > 0) {
        EXPECT_LE(s.max_mhz, s.top_mhz);
    }
    if (s.power_w > 0 && s.limit_w > 0) {
        EXPECT_LT(s.power_w, 1.5 * s.limit_w);
    }
    EXPECT_NE(describe(s).find("MHz"), std::string::npos) << describe(s);
    EXPECT_EQ(clk.stop().samples, 0) << "stopped twice: the second has nothing";
}
