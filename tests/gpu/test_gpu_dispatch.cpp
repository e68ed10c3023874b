// The four GPU dispatch strategies against the CPU plan and pack: sort, scan and nopack reproduce the reference
// order exactly; atomic is checked as sets inside each expert plus exact counts. Padding on every strategy.
#include <algorithm>
#include <cstring>

#include "tests/gpu/gpu_test.hpp"

#if MOELAB_HAVE_CUDA
#include "kernels/cuda/launchers.hpp"

using namespace gpu_test;
using moe::gpu::DeviceBuffer;

namespace {

struct Plan {
    std::vector<std::int32_t> counts, offsets, row_token, inv;
    std::int64_t rows = 0;
};

void check_strategy(moe::Strategy st, const Case& c, const std::vector<std::int32_t>& ids,
                    const std::vector<moe::bf16_t>& hx, const DeviceBuffer<moe::bf16_t>& x, const Plan& want) {
    SCOPED_TRACE(std::string("strategy ") + moe::dispatch::strategy_name(st));
    const std::int64_t max_rows = moe::dispatch::max_rows(c.T, c.k, c.E, c.align);
    DeviceBuffer<std::int32_t> dids(ids.size()), counts(c.E), offsets(c.E + 1), row_token(max_rows), inv(ids.size());
    DeviceBuffer<moe::bf16_t> xp(st == moe::Strategy::NoPack ? 0 : max_rows * c.d);
    dids.upload(ids);
    counts.poison(), offsets.poison(), row_token.poison(), inv.poison();
    if (xp.size()) xp.poison();
    const std::size_t wsb = moe::gpu::dispatch_workspace_bytes(st, c.T, c.k, c.E);
    DeviceBuffer<std::uint8_t> ws(wsb);
    ws.poison();
    // Row tokens past the end must be -1: poison with another pattern so that "untouched" cannot pass.
    moe::gpu::fill_bytes(row_token.data(), 0x7F, row_token.bytes(), nullptr);
    moe::gpu::dispatch(st, x.data(), dids.data(), c.T, c.k, c.E, c.d, c.align, counts.data(), offsets.data(),
                       row_token.data(), inv.data(), xp.data(), ws.data(), wsb, nullptr);

    auto g_counts = counts.download(), g_offsets = offsets.download(), g_rt = row_token.download(),
         g_inv = inv.download();
    ASSERT_EQ(first_difference(g_counts, want.counts, c.E, "counts"), "");
    ASSERT_EQ(first_difference(g_offsets, want.offsets, c.E + 1, "offsets"), "");
    const std::int64_t rows = want.rows;
    for (std::int64_t r = rows; r < max_rows; ++r) ASSERT_EQ(g_rt[r], -1) << "row_token past the end, row " << r;

    if (st == moe::Strategy::Atomic) {
        // Sets inside each expert; padding rows -1; inv and row_token consistent and one-to-one.
        for (int e = 0; e < c.E; ++e) {
            std::int64_t r0 = want.offsets[e], n = want.counts[e];
            std::vector<std::int32_t> a(g_rt.begin() + r0, g_rt.begin() + r0 + n),
                b(want.row_token.begin() + r0, want.row_token.begin() + r0 + n);
            std::sort(a.begin(), a.end());
            ASSERT_EQ(a, b) << "tokens of expert " << e;
            for (std::int64_t r = r0 + n; r < want.offsets[e + 1]; ++r) ASSERT_EQ(g_rt[r], -1) << "padding row " << r;
        }
        std::vector<char> used(rows, 0);
        for (std::size_t a = 0; a < ids.size(); ++a) {
            if (ids[a] < 0) {
                ASSERT_EQ(g_inv[a], -1) << "dropped assignment " << a;
                continue;
            }
            std::int32_t r = g_inv[a];
            ASSERT_TRUE(r >= want.offsets[ids[a]] && r < want.offsets[ids[a]] + want.counts[ids[a]])
                << "assignment " << a << " landed outside its expert: row " << r;
            ASSERT_EQ(g_rt[r], std::int32_t(a / c.k)) << "row_token[inv[" << a << "]]";
            ASSERT_FALSE(used[r]) << "row " << r << " used twice";
            used[r] = 1;
        }
    } else {
        ASSERT_EQ(first_difference(g_rt, want.row_token, rows, "row_token"), "");
        ASSERT_EQ(first_difference(g_inv, want.inv, ids.size(), "inv"), "");
    }
    if (st == moe::Strategy::NoPack) return;
    // Packed rows: each row equals x of the row's token (this strategy's own row_token), padding rows are zero.
    auto g_xp = xp.download(std::size_t(rows) * c.d);
    std::vector<moe::bf16_t> zero(c.d, 0);
    std::int64_t bad = 0, first = -1;
    for (std::int64_t r = 0; r < rows; ++r) {
        const moe::bf16_t* src = g_rt[r] < 0 ? zero.data() : hx.data() + std::int64_t(g_rt[r]) * c.d;
        if (std::memcmp(g_xp.data() + r * c.d, src, sizeof(moe::bf16_t) * c.d) != 0) {
            if (first < 0) first = r;
            ++bad;
        }
    }
    EXPECT_EQ(bad, 0) << "packed rows differ from x[row_token]; first at row " << first;
}

}  // namespace

TEST(GpuDispatch, EveryStrategyMatchesTheReferencePlan) {
    MOE_REQUIRE_GPU();
    for (const Case& c : covering_cases()) {
        const std::uint64_t seed = fresh_seed();
        SCOPED_TRACE(describe(c) + " seed " + std::to_string(seed));
        HostRouting r = host_routing(seed, c);
        const std::int64_t max_rows = moe::dispatch::max_rows(c.T, c.k, c.E, c.align);
        Plan want;
        want.counts.resize(c.E);
        want.offsets.resize(c.E + 1);
        want.row_token.assign(max_rows, -1);
        want.inv.resize(r.ids.size());
        want.rows = moe::dispatch::plan(r.ids.data(), c.T, c.k, c.E, c.align, want.counts.data(), want.offsets.data(),
                                        want.row_token.data(), want.inv.data());
        std::vector<moe::bf16_t> hx(std::size_t(c.T) * c.d);
        moe::route::make_x(seed, c.T, c.d, hx.data());
        DeviceBuffer<moe::bf16_t> x(hx.size());
        moe::gpu::make_x(seed, c.T, c.d, x.data(), nullptr);
        for (auto st : {moe::Strategy::Sort, moe::Strategy::Atomic, moe::Strategy::Scan, moe::Strategy::NoPack})
            check_strategy(st, c, r.ids, hx, x, want);
    }
}

#else
TEST(GpuDispatch, Skipped) { GTEST_SKIP() << "no GPU to test on: " << moe::gpu::unavailable_reason(); }
#endif
