// The two-phase counting sort shared by the scan dispatch, nopack and token-order capacity: tile histograms,
// a per-expert scan over tiles with the padded offsets, and stable ranks from warp-private counters.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cuda/check.cuh"

namespace moe::gpu::counting {

constexpr int kWarps = 8;                     // per block
constexpr int kThreads = kWarps * 32;         // 256
constexpr int kChunks = 8;                    // 32-assignment chunks per warp
constexpr int kTile = kThreads * kChunks;     // 2048 assignments per block, in (t, j) order
constexpr int kScanThreads = 1024;            // the one-block scan
constexpr int kMaxExperts = 6144;             // kWarps·E ints of shared memory must fit in 227 KB

inline int tiles(std::int64_t n) { return static_cast<int>((n + kTile - 1) / kTile); }

// Internal linkage: every .cu that includes this header gets its own copy of the kernels.
namespace {

__device__ __forceinline__ unsigned lanemask_lt() {
    unsigned m;
    asm("mov.u32 %0, %%lanemask_lt;" : "=r"(m));
    return m;
}

// Item c of warp w in a tile: chunks of 32 consecutive assignments, warps on consecutive runs of 256.
__device__ __forceinline__ std::int64_t item_index(int tile, int warp, int chunk, int lane) {
    return std::int64_t(tile) * kTile + warp * (32 * kChunks) + chunk * 32 + lane;
}

// Phase 1: hist[e·tiles + b] = assignments of expert e in tile b. Lanes of one expert add once, through their
// leader, so a hot expert does not serialise the block on one shared counter.
__global__ void __launch_bounds__(kThreads) tile_histogram_kernel(const std::int32_t* ids, std::int64_t n,
                                                                    int experts, int ntiles, std::int32_t* hist) {
    extern __shared__ std::int32_t cnt[];
    for (int e = threadIdx.x; e < experts; e += kThreads) cnt[e] = 0;
    __syncthreads();
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
#pragma unroll 4
    for (int c = 0; c < kChunks; ++c) {
        std::int64_t a = item_index(blockIdx.x, warp, c, lane);
        int e = a < n ? ids[a] : -1;
        unsigned peers = __match_any_sync(0xffffffffu, e);
        if (e >= 0 && (peers & lanemask_lt()) == 0) atomicAdd(&cnt[e], __popc(peers));
    }
    __syncthreads();
    for (int e = threadIdx.x; e < experts; e += kThreads) hist[std::int64_t(e) * ntiles + blockIdx.x] = cnt[e];
}

// One block of kScanThreads: offsets[e] = exclusive scan of counts padded to `align` (offsets[E] = rows), and
// row_token = -1 on padding rows and on rows past the end, which no assignment writes. counts must be visible
// to the whole block (written before a __syncthreads, or by an earlier kernel).
__device__ void block_offsets(const std::int32_t* counts, int experts, int align, std::int32_t* offsets,
                              std::int32_t* row_token, std::int64_t max_rows) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    __shared__ std::int32_t warp_sums[kScanThreads / 32];
    __shared__ std::int32_t carry;
    if (threadIdx.x == 0) carry = 0;
    __syncthreads();
    for (int e0 = 0; e0 < experts; e0 += kScanThreads) {
        int e = e0 + threadIdx.x;
        std::int32_t c = e < experts ? counts[e] : 0;
        std::int32_t v = (c + align - 1) / align * align, inc = v;
#pragma unroll
        for (int off = 1; off < 32; off <<= 1) {
            std::int32_t o = __shfl_up_sync(0xffffffffu, inc, off);
            if (lane >= off) inc += o;
        }
        if (lane == 31) warp_sums[warp] = inc;
        __syncthreads();
        if (warp == 0) {
            std::int32_t s = warp_sums[lane], si = s;
#pragma unroll
            for (int off = 1; off < 32; off <<= 1) {
                std::int32_t o = __shfl_up_sync(0xffffffffu, si, off);
                if (lane >= off) si += o;
            }
            warp_sums[lane] = si - s;
        }
        __syncthreads();
        std::int32_t base = carry + warp_sums[warp] + inc - v;
        if (e < experts) {
            offsets[e] = base;
            if (e == experts - 1) offsets[experts] = base + v;
            if (row_token)
                for (std::int32_t r = base + c; r < base + v; ++r) row_token[r] = -1;  // padding rows
        }
        __syncthreads();
        if (threadIdx.x == kScanThreads - 1) carry = base + v;
        __syncthreads();
    }
    if (row_token)
        for (std::int64_t r = carry + threadIdx.x; r < max_rows; r += kScanThreads) row_token[r] = -1;
}

// Phase 2, one block: each expert's tile counts become exclusive prefixes (warp per expert); the totals are the
// counts, and a block scan of the padded counts gives the offsets. Also writes -1 into row_token for padding rows
// and rows past the end, which no assignment writes. Null totals/counts/offsets/row_token are skipped.
__global__ void __launch_bounds__(kScanThreads)
    scan_kernel(std::int32_t* hist, int ntiles, int experts, int align, std::int32_t* totals, std::int32_t* counts,
                std::int32_t* offsets, std::int32_t* row_token, std::int64_t max_rows) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    for (int e = warp; e < experts; e += kScanThreads / 32) {
        std::int32_t* h = hist + std::int64_t(e) * ntiles;
        std::int32_t run = 0;
        for (int b0 = 0; b0 < ntiles; b0 += 32) {
            int b = b0 + lane;
            std::int32_t v = b < ntiles ? h[b] : 0, inc = v;
#pragma unroll
            for (int off = 1; off < 32; off <<= 1) {
                std::int32_t o = __shfl_up_sync(0xffffffffu, inc, off);
                if (lane >= off) inc += o;
            }
            if (b < ntiles) h[b] = run + inc - v;
            run += __shfl_sync(0xffffffffu, inc, 31);
        }
        if (lane == 0) {
            if (totals) totals[e] = run;
            if (counts) counts[e] = run;
        }
    }
    if (!offsets) return;
    __syncthreads();
    block_offsets(counts, experts, align, offsets, row_token, max_rows);
}

// Phase 3: the stable rank of every assignment inside its expert, then act(a, e, rank) (or act.skip(a) for a
// dropped one). Warp-private counters in shared memory keep (t, j) order: chunks in order inside a warp, and an
// exclusive scan over warps inside the block; tile_base adds the tiles before.
template <class Action>
__global__ void __launch_bounds__(kThreads)
    stable_rank_kernel(const std::int32_t* ids, std::int64_t n, int experts, int ntiles,
                       const std::int32_t* tile_base, Action act) {
    extern __shared__ std::int32_t cnt[];  // [kWarps][experts]
    for (int i = threadIdx.x; i < kWarps * experts; i += kThreads) cnt[i] = 0;
    __syncthreads();
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    std::int32_t* mine = cnt + warp * experts;
    int ex[kChunks], rk[kChunks];
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
        std::int64_t a = item_index(blockIdx.x, warp, c, lane);
        int e = a < n ? ids[a] : -1;
        unsigned peers = __match_any_sync(0xffffffffu, e);
        int below = __popc(peers & lanemask_lt());
        int before = e >= 0 ? mine[e] : 0;
        __syncwarp();
        if (e >= 0 && below == 0) mine[e] = before + __popc(peers);
        __syncwarp();
        ex[c] = e;
        rk[c] = before + below;
    }
    __syncthreads();
    for (int e = threadIdx.x; e < experts; e += kThreads) {
        std::int32_t run = 0;
        for (int w = 0; w < kWarps; ++w) {
            std::int32_t v = cnt[w * experts + e];
            cnt[w * experts + e] = run;
            run += v;
        }
    }
    __syncthreads();
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
        std::int64_t a = item_index(blockIdx.x, warp, c, lane);
        if (a >= n) continue;
        int e = ex[c];
        if (e < 0) {
            act.skip(a);
            continue;
        }
        act(a, e, tile_base[std::int64_t(e) * ntiles + blockIdx.x] + mine[e] + rk[c]);
    }
}

// Below kSmallMax assignments one block does all three phases: three launches cost more than the work. Each of
// its 32 warps owns a run of at most 8 chunks of 32 assignments, loaded into registers at once (a serial chain of
// loads would make this latency-bound); pass 1 counts per warp, the block turns those into warp prefixes, counts
// and offsets, and pass 2 walks the same chunks again to hand out stable ranks to act.
constexpr int kSmallChunks = 8;
constexpr std::int64_t kSmallMax = std::int64_t(kScanThreads) * kSmallChunks;  // 8192
constexpr int kSmallMaxExperts = 1280;  // 32·E ints of shared memory

template <class Action>
__global__ void __launch_bounds__(kScanThreads)
    small_plan_kernel(const std::int32_t* ids, std::int64_t n, int experts, int align, std::int32_t* counts,
                      std::int32_t* offsets, std::int32_t* row_token, std::int64_t max_rows, Action act) {
    extern __shared__ std::int32_t cnt[];  // [32][experts]
    constexpr int kW = kScanThreads / 32;
    for (int i = threadIdx.x; i < kW * experts; i += kScanThreads) cnt[i] = 0;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    std::int32_t* mine = cnt + warp * experts;
    const std::int64_t per = ((n + kW - 1) / kW + 31) / 32 * 32;  // ≤ 32·kSmallChunks
    const std::int64_t begin = std::min<std::int64_t>(n, warp * per), end = std::min<std::int64_t>(n, begin + per);
    int ev[kSmallChunks];
#pragma unroll
    for (int c = 0; c < kSmallChunks; ++c) {
        std::int64_t a = begin + c * 32 + lane;
        ev[c] = a < end ? ids[a] : -1;
    }
    __syncthreads();  // counters zeroed
#pragma unroll
    for (int c = 0; c < kSmallChunks; ++c) {
        const int e = ev[c];
        unsigned peers = __match_any_sync(0xffffffffu, e);
        if (e >= 0 && (peers & lanemask_lt()) == 0) mine[e] += __popc(peers);
        __syncwarp();
    }
    __syncthreads();
    for (int e = threadIdx.x; e < experts; e += kScanThreads) {
        std::int32_t run = 0;
        for (int w = 0; w < kW; ++w) {
            std::int32_t v = cnt[w * experts + e];
            cnt[w * experts + e] = run;
            run += v;
        }
        counts[e] = run;
    }
    __syncthreads();
    if (offsets) block_offsets(counts, experts, align, offsets, row_token, max_rows);  // ends with __syncthreads
#pragma unroll
    for (int c = 0; c < kSmallChunks; ++c) {
        const std::int64_t a = begin + c * 32 + lane;
        const int e = ev[c];
        unsigned peers = __match_any_sync(0xffffffffu, e);
        int below = __popc(peers & lanemask_lt());
        int before = e >= 0 ? mine[e] : 0;
        __syncwarp();
        if (e >= 0 && below == 0) mine[e] = before + __popc(peers);
        __syncwarp();
        if (a >= end) continue;
        if (e < 0)
            act.skip(a);
        else
            act(a, e, before + below);
    }
}

template <class Action>
inline std::size_t small_plan_smem(int experts) {
    std::size_t bytes = std::size_t(kScanThreads / 32) * experts * sizeof(std::int32_t);
    if (bytes > 48 * 1024)
        MOE_CUDA_CHECK(cudaFuncSetAttribute(small_plan_kernel<Action>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            static_cast<int>(bytes)));
    return bytes;
}

inline bool small_plan_fits(std::int64_t n, int experts) { return n <= kSmallMax && experts <= kSmallMaxExperts; }

// Shared memory of stable_rank_kernel; raises the kernel's limit past 48 KB when E needs it.
template <class Action>
inline std::size_t stable_rank_smem(int experts) {
    std::size_t bytes = std::size_t(kWarps) * experts * sizeof(std::int32_t);
    if (bytes > 48 * 1024)
        MOE_CUDA_CHECK(cudaFuncSetAttribute(stable_rank_kernel<Action>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            static_cast<int>(bytes)));
    return bytes;
}

}  // namespace
}  // namespace moe::gpu::counting
