// Capacity and drops on the GPU, with the reference's semantics. Token order: the stable rank of each assignment
// inside its expert (the counting sort of counting.cuh) against C. Probability: a radix sort by (expert, weight ↓).
#include <cuda_runtime.h>

#include <cub/device/device_radix_sort.cuh>
#include <cstdint>

#include "kernels/api.hpp"
#include "kernels/common/bf16.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/context.cuh"
#include "kernels/cuda/counting.cuh"
#include "kernels/cuda/launchers.hpp"
#include "kernels/cuda/workspace.hpp"

namespace moe::gpu {

namespace {

struct DropPastCapacity {
    std::int32_t* ids;
    std::int64_t cap;
    __device__ void operator()(std::int64_t a, int, std::int32_t rank) const {
        if (rank >= cap) ids[a] = -1;
    }
    __device__ void skip(std::int64_t) const {}
};

// Key: expert in the high word, then the weight's bits inverted so that heavier sorts first. The radix sort is
// stable and the values start in (t, j) order, so equal weights keep the lower (t, j) first, as the reference does.
__global__ void probability_keys_kernel(const std::int32_t* ids, const float* weights, std::int64_t n, int experts,
                                        std::uint64_t* keys, std::int32_t* vals) {
    std::int64_t a = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (a >= n) return;
    int e = ids[a];
    std::uint64_t hi = std::uint64_t(e < 0 ? experts : e) << 32;
    keys[a] = hi | std::uint64_t(~float_bits(weights[a]));  // weights are probabilities, >= 0: bits order as values
    vals[a] = static_cast<std::int32_t>(a);
}

__global__ void probability_drop_kernel(const std::uint64_t* keys, const std::int32_t* vals, std::int64_t n,
                                        int experts, const std::int32_t* starts, std::int64_t cap, std::int32_t* ids) {
    std::int64_t p = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (p >= n) return;
    int e = static_cast<int>(keys[p] >> 32);
    if (e < experts && p - starts[e] >= cap) ids[vals[p]] = -1;
}

int bits_for(int v) {
    int b = 0;
    while ((1ll << b) <= v) ++b;
    return b;
}

struct CapacityLayout {
    std::int32_t* hist = nullptr;
    std::uint64_t* keys_in = nullptr;
    std::uint64_t* keys_out = nullptr;
    std::int32_t* vals_in = nullptr;
    std::int32_t* vals_out = nullptr;
    std::int32_t* starts = nullptr;
    void* sort_temp = nullptr;
    std::size_t sort_bytes = 0;
};

CapacityLayout carve_capacity(std::int64_t n, int experts, void* base, std::size_t bytes, std::size_t* total) {
    CapacityLayout l;
    Carver c(base, bytes);
    l.hist = c.take<std::int32_t>(std::size_t(experts) * counting::tiles(n));
    l.starts = c.take<std::int32_t>(experts + 1);
    l.keys_in = c.take<std::uint64_t>(n);
    l.keys_out = c.take<std::uint64_t>(n);
    l.vals_in = c.take<std::int32_t>(n);
    l.vals_out = c.take<std::int32_t>(n);
    MOE_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, l.sort_bytes, l.keys_in, l.keys_out, l.vals_in,
                                                   l.vals_out, static_cast<int>(n), 0, 32 + bits_for(experts)));
    l.sort_temp = c.take<std::uint8_t>(l.sort_bytes);
    if (total) *total = c.used();
    return l;
}

}  // namespace

std::size_t capacity_workspace_bytes(std::int64_t tokens, int k, int experts) {
    std::size_t total = 0;
    carve_capacity(std::max<std::int64_t>(tokens * k, 1), experts, nullptr, 0, &total);
    return total;
}

void capacity(std::int32_t* ids, const float* weights, std::int64_t tokens, int k, int experts, std::int64_t cap,
              DropPolicy policy, std::int32_t* demand, void* ws, std::size_t ws_bytes, Stream s) {
    using namespace counting;
    MOE_ASSERT(experts >= 1 && experts <= kMaxExperts, "experts " << experts << " must be in [1, " << kMaxExperts << "]");
    const std::int64_t n = tokens * k;
    MOE_ASSERT(n < (std::int64_t(1) << 31), "capacity: T·k = " << n << " assignments exceed the int32 range");
    cudaStream_t st = to_cuda(s);
    if (n == 0) {
        MOE_CUDA_CHECK(cudaMemsetAsync(demand, 0, sizeof(std::int32_t) * experts, st));
        return;
    }
    CapacityLayout l = carve_capacity(n, experts, ws, ws_bytes, nullptr);
    const int nt = tiles(n);
    if ((cap <= 0 || policy == DropPolicy::TokenOrder) && small_plan_fits(n, experts)) {
        // One block: demand and, with a capacity, the token-order drops.
        DropPastCapacity act{ids, cap > 0 ? cap : std::int64_t(1) << 40};
        std::size_t smem = small_plan_smem<DropPastCapacity>(experts);
        small_plan_kernel<<<1, kScanThreads, smem, st>>>(ids, n, experts, 1, demand, nullptr, nullptr, 0, act);
        MOE_CUDA_LAUNCH_CHECK("small_plan_kernel<DropPastCapacity>");
        return;
    }
    // Demand (and, for probability, the start of each expert's run in the sorted order) before any drop.
    tile_histogram_kernel<<<nt, kThreads, experts * sizeof(std::int32_t), st>>>(ids, n, experts, nt, l.hist);
    MOE_CUDA_LAUNCH_CHECK("tile_histogram_kernel");
    const bool by_prob = cap > 0 && policy == DropPolicy::Probability;
    scan_kernel<<<1, kScanThreads, 0, st>>>(l.hist, nt, experts, 1, nullptr, demand, by_prob ? l.starts : nullptr,
                                            nullptr, 0);
    MOE_CUDA_LAUNCH_CHECK("scan_kernel");
    if (cap <= 0) return;

    if (policy == DropPolicy::TokenOrder) {
        DropPastCapacity act{ids, cap};
        std::size_t smem = stable_rank_smem<DropPastCapacity>(experts);
        stable_rank_kernel<<<nt, kThreads, smem, st>>>(ids, n, experts, nt, l.hist, act);
        MOE_CUDA_LAUNCH_CHECK("stable_rank_kernel<DropPastCapacity>");
        return;
    }
    probability_keys_kernel<<<grid_for(n, 256), 256, 0, st>>>(ids, weights, n, experts, l.keys_in, l.vals_in);
    MOE_CUDA_LAUNCH_CHECK("probability_keys_kernel");
    MOE_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(l.sort_temp, l.sort_bytes, l.keys_in, l.keys_out, l.vals_in,
                                                   l.vals_out, static_cast<int>(n), 0, 32 + bits_for(experts), st));
    probability_drop_kernel<<<grid_for(n, 256), 256, 0, st>>>(l.keys_out, l.vals_out, n, experts, l.starts, cap, ids);
    MOE_CUDA_LAUNCH_CHECK("probability_drop_kernel");
}

}  // namespace moe::gpu
