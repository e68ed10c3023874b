// GPU combine against the CPU reference: the same fp32 products and sums in the same order, so the output must
// be bit-equal, on the covering set of shapes with and without drops.
#include "tests/gpu/gpu_test.hpp"

#if MOELAB_HAVE_CUDA
#include "kernels/common/rng.hpp"
#include "kernels/cuda/launchers.hpp"

using namespace gpu_test;
using moe::gpu::DeviceBuffer;

TEST(GpuCombine, IsBitEqualToTheReference) {
    MOE_REQUIRE_GPU();
    for (const Case& c : covering_cases()) {
        const std::uint64_t seed = fresh_seed();
        SCOPED_TRACE(describe(c) + " seed " + std::to_string(seed));
        HostRouting r = host_routing(seed, c);
        const std::int64_t max_rows = moe::dispatch::max_rows(c.T, c.k, c.E, c.align);
        std::vector<std::int32_t> counts(c.E), offsets(c.E + 1), row_token(max_rows, -1), inv(r.ids.size());
        const std::int64_t rows = moe::dispatch::plan(r.ids.data(), c.T, c.k, c.E, c.align, counts.data(),
                                                      offsets.data(), row_token.data(), inv.data());
        // Expert outputs: fresh random bf16 rows (the combine does not care where they came from).
        DeviceBuffer<moe::bf16_t> y(std::max<std::int64_t>(rows, 1) * c.d), out(std::size_t(c.T) * c.d);
        moe::gpu::make_bf16(seed, 77, rows * c.d, 2.0f, y.data(), nullptr);
        auto hy = y.download();
        std::vector<moe::bf16_t> want(std::size_t(c.T) * c.d);
        moe::combine::gather(hy.data(), inv.data(), r.w.data(), c.T, c.k, c.d, want.data());

        DeviceBuffer<std::int32_t> dinv(inv.size());
        DeviceBuffer<float> dw(r.w.size());
        dinv.upload(inv), dw.upload(r.w);
        out.poison();
        moe::gpu::combine(y.data(), dinv.data(), dw.data(), c.T, c.k, c.d, out.data(), nullptr);
        EXPECT_EQ(first_difference(out.download(), want, want.size(), "out"), "");
    }
}

#else
TEST(GpuCombine, Skipped) { GTEST_SKIP() << "no GPU to test on: " << moe::gpu::unavailable_reason(); }
#endif
