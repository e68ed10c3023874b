// The order in which the wgmma expert FFN's blocks take their items (experts_wgmma.cu), host and device code so that
// the CPU tests can check it: every item exactly once, and every down item after all of its expert's gate/up items.
#pragma once
#include <cstdint>

#include "kernels/common/hd.hpp"

namespace moe::gpu::order {

// The expert whose items hold item j, given the prefix `pre` of item counts per expert in units of `scale` items
// (experts_common.cuh's expert_of_chunk calls it on the device).
MOE_HD int expert_of(const int* pre, int experts, std::int64_t j, int scale) {
    int lo = 0, hi = experts - 1;
    while (lo < hi) {
        const int mid = (lo + hi + 1) >> 1;
        if (std::int64_t(pre[mid]) * scale <= j)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

// The order the items are taken in (one launch for both GEMMs): gate/up items, then down items, except that the down
// items of the last, partial wave (D mod the grid) move in among the gate/up items, spaced out after every gate/up
// item of their experts (the first experts'), one grid of items later. The down phase is then whole waves, which
// start as the short gate/up items end, so they end as close together as those began: the last, partial wave of
// long down items was the tail (the classroom shape at 512 tokens per expert: 296 down items of 30 µs on 132 SMs,
// 25 µs from the median SM's last end to the last one). Every down item still comes after all of its expert's gate/up
// items, so every one of them is running or done when it is taken.
struct Order {
    std::int64_t gated = 0, down = 0;   // items of each GEMM
    std::int64_t early = 0;             // down items among the gate/up ones
    std::int64_t after = 0, every = 1;  // early down item j comes after gate/up item after + j·every
};

// forced >= 0: that many early down items with no margin (tests); -1: D mod grid, a grid of margin.
MOE_HD Order make_order(std::int64_t gated, std::int64_t down, const int* pre, int experts, int nt_down, int nt_gated,
                        int grid, int forced) {
    Order o;
    o.gated = gated, o.down = down;
    const std::int64_t early = forced >= 0 ? (std::int64_t(forced) < down ? std::int64_t(forced) : down) : down % grid;
    if (early <= 0) return o;
    const int e_last = expert_of(pre, experts, early - 1, nt_down);  // the last early item's expert
    const std::int64_t after = std::int64_t(pre[e_last + 1]) * nt_gated - 1 + (forced >= 0 ? 0 : grid);
    if (after + early > gated) return o;  // too few gate/up items after theirs: keep the plain order
    o.early = early, o.after = after;
    o.every = (gated - 1 - after) / early > 1 ? (gated - 1 - after) / early : 1;
    return o;
}

// Item number p in that order: which GEMM and its index among that GEMM's items.
MOE_HD void order_item(const Order& o, std::int64_t p, bool& gated, std::int64_t& j) {
    if (o.early == 0 || p <= o.after) {
        gated = p < o.gated;
        j = gated ? p : p - o.gated;
        return;
    }
    if (p >= o.gated + o.early) {
        gated = false, j = p - o.gated;
        return;
    }
    const std::int64_t q = p - o.after - 1, blk = q / (o.every + 1);
    if (q % (o.every + 1) == 0 && blk < o.early) {
        gated = false, j = blk;
        return;
    }
    gated = true, j = p - (blk + 1 < o.early ? blk + 1 : o.early);
}

}  // namespace moe::gpu::order
