// The order in which the wgmma expert FFN's blocks take their items (kernels/cuda/experts_order.hpp): every item
// exactly once, every down item after all of its expert's gate/up items (else a block could wait for h that no block
// will write), and the down phase left as whole waves of the grid.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/experts_order.hpp"

namespace {

using moe::gpu::order::expert_of;
using moe::gpu::order::make_order;
using moe::gpu::order::Order;
using moe::gpu::order::order_item;

struct Plan {
    std::vector<int> pre;  // token tiles before each expert
    int experts = 0, nt_gated = 0, nt_down = 0;
    std::int64_t gated() const { return std::int64_t(pre.back()) * nt_gated; }
    std::int64_t down() const { return std::int64_t(pre.back()) * nt_down; }
};

Plan random_plan(std::mt19937& rng) {
    Plan p;
    p.experts = std::uniform_int_distribution<int>(1, 40)(rng);
    p.nt_gated = std::uniform_int_distribution<int>(1, 24)(rng);
    p.nt_down = std::uniform_int_distribution<int>(1, 30)(rng);
    p.pre.assign(1, 0);
    for (int e = 0; e < p.experts; ++e)  // some experts empty, some with many token tiles
        p.pre.push_back(p.pre.back() + (rng() % 4 == 0 ? 0 : int(rng() % 9)));
    return p;
}

// Checks the order's two promises and returns how many down items it moved among the gate/up ones.
std::int64_t check(const Plan& p, int grid, int forced) {
    const Order o = make_order(p.gated(), p.down(), p.pre.data(), p.experts, p.nt_down, p.nt_gated, grid, forced);
    const std::int64_t total = p.gated() + p.down();
    std::vector<std::int64_t> at_gated(p.gated(), -1), at_down(p.down(), -1);
    for (std::int64_t pos = 0; pos < total; ++pos) {
        bool g = false;
        std::int64_t j = -1;
        order_item(o, pos, g, j);
        auto& at = g ? at_gated : at_down;
        EXPECT_TRUE(j >= 0 && j < std::int64_t(at.size())) << "position " << pos << " gives item " << j;
        if (j < 0 || j >= std::int64_t(at.size())) return -1;
        EXPECT_EQ(at[j], -1) << (g ? "gate/up" : "down") << " item " << j << " twice";
        at[j] = pos;
    }
    std::vector<std::int64_t> last_gated(p.experts, -1);
    for (std::int64_t j = 0; j < p.gated(); ++j) {
        const int e = expert_of(p.pre.data(), p.experts, j, p.nt_gated);
        last_gated[e] = std::max(last_gated[e], at_gated[j]);
    }
    for (std::int64_t j = 0; j < p.down(); ++j) {
        const int e = expert_of(p.pre.data(), p.experts, j, p.nt_down);
        EXPECT_GT(at_down[j], last_gated[e]) << "down item " << j << " of expert " << e << " before its gate/up";
    }
    return o.early;
}

}  // namespace

TEST(ExpertsOrder, EveryItemOnceAndEveryDownItemAfterItsGateUp) {
    std::mt19937 rng(20261130);
    int moved = 0;
    for (int trial = 0; trial < 300; ++trial) {
        const Plan p = random_plan(rng);
        SCOPED_TRACE("trial " + std::to_string(trial) + ": " + std::to_string(p.experts) + " experts, " +
                     std::to_string(p.pre.back()) + " token tiles");
        for (int grid : {1, 7, 132})
            for (int forced : {-1, 0, 1, 3, 8}) {
                const std::int64_t early = check(p, grid, forced);
                ASSERT_GE(early, 0);
                moved += early > 0;
                if (forced == 0) {
                    EXPECT_EQ(early, 0);
                }
                if (forced < 0 && early > 0) {
                    EXPECT_EQ((p.down() - early) % grid, 0) << "the down phase: whole waves";
                }
            }
    }
    EXPECT_GT(moved, 100) << "the random plans should exercise the moved items";
}

TEST(ExpertsOrder, TheClassroomShapesLastPartialWaveMovesIn) {
    // 16 experts of about 4.6 token tiles of 128 (512 tokens per expert): 22 gate/up and 4 down items a tile, one
    // block on each of 132 SMs. 74 tiles: 1,628 gate/up items and 296 down items, 2 whole waves and 32 more.
    Plan p;
    p.experts = 16, p.nt_gated = 22, p.nt_down = 4;
    p.pre = {0};
    for (int e = 0; e < 16; ++e) p.pre.push_back(p.pre.back() + (e < 10 ? 5 : 4));
    ASSERT_EQ(p.down(), 296);
    EXPECT_EQ(check(p, 132, -1), 32);
    EXPECT_EQ(check(p, 296, -1), 0) << "no partial wave: nothing moves";
}
