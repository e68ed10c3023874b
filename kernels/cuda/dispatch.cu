// Dispatch (packing) on the GPU, four strategies by name: sort (CUB radix sort, then gather), atomic (per-expert
// cursors), scan (two-phase counting sort, then a token-major scatter of 16-byte vectors) and nopack (plan only).
#include <cuda_runtime.h>

#include <cub/device/device_radix_sort.cuh>
#include <cstdint>

#include "kernels/api.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/context.cuh"
#include "kernels/cuda/counting.cuh"
#include "kernels/cuda/launchers.hpp"
#include "kernels/cuda/workspace.hpp"

namespace moe::gpu {

namespace {

constexpr int kCopyWarps = 8;   // warps per block of the copy kernels
constexpr int kCopyUnroll = 4;  // vectors in flight per lane

template <class V>
__device__ __forceinline__ V zero_vec();
template <>
__device__ __forceinline__ uint4 zero_vec<uint4>() {
    return make_uint4(0, 0, 0, 0);
}
template <>
__device__ __forceinline__ unsigned short zero_vec<unsigned short>() {
    return 0;
}

// Token-major scatter: each warp copies one chunk (32·kCopyUnroll vectors) of one token's row, read once and
// written to the token's k packed rows (the floor's T·d·b + T·k·d·b). Chunks rather than whole rows keep enough
// warps in flight when T is small. The E warps after them zero each expert's padding rows.
template <class V>
__global__ void __launch_bounds__(kCopyWarps * 32)
    scatter_tokens_kernel(const bf16_t* x, const std::int32_t* inv, std::int64_t tokens, int k, int hidden,
                          int chunks, const std::int32_t* counts, const std::int32_t* offsets, int experts,
                          bf16_t* xp) {
    const std::int64_t w = std::int64_t(blockIdx.x) * kCopyWarps + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    const int nv = hidden * int(sizeof(bf16_t)) / int(sizeof(V));
    const std::int64_t copy_warps = tokens * chunks;
    if (w < copy_warps) {
        const std::int64_t t = w / chunks;
        const int c0 = static_cast<int>(w % chunks) * 32 * kCopyUnroll;
        const V* src = reinterpret_cast<const V*>(x + t * hidden);
        V v[kCopyUnroll];
#pragma unroll
        for (int u = 0; u < kCopyUnroll; ++u) {
            int i = c0 + u * 32 + lane;
            if (i < nv) v[u] = __ldg(src + i);
        }
        for (int j = 0; j < k; ++j) {
            std::int32_t r = __ldg(inv + t * k + j);
            if (r < 0) continue;
            V* dst = reinterpret_cast<V*>(xp + std::int64_t(r) * hidden);
#pragma unroll
            for (int u = 0; u < kCopyUnroll; ++u) {
                int i = c0 + u * 32 + lane;
                if (i < nv) dst[i] = v[u];
            }
        }
    } else if (w < copy_warps + experts) {
        const int e = static_cast<int>(w - copy_warps);
        for (std::int64_t r = offsets[e] + counts[e]; r < offsets[e + 1]; ++r) {
            V* dst = reinterpret_cast<V*>(xp + r * hidden);
            for (int i = lane; i < nv; i += 32) dst[i] = zero_vec<V>();
        }
    }
}

// Row-major gather (the sort strategy): warp per packed row reads x[row_token[r]], or writes zeros for padding.
template <class V>
__global__ void __launch_bounds__(kCopyWarps * 32)
    gather_rows_kernel(const bf16_t* x, const std::int32_t* row_token, const std::int32_t* offsets, int experts,
                       std::int64_t max_rows, int hidden, bf16_t* xp) {
    const std::int64_t r = std::int64_t(blockIdx.x) * kCopyWarps + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (r >= max_rows || r >= offsets[experts]) return;
    const int nv = hidden * int(sizeof(bf16_t)) / int(sizeof(V));
    const std::int32_t t = row_token[r];
    V* dst = reinterpret_cast<V*>(xp + r * hidden);
    if (t < 0) {
        for (int i = lane; i < nv; i += 32) dst[i] = zero_vec<V>();
        return;
    }
    const V* src = reinterpret_cast<const V*>(x + std::int64_t(t) * hidden);
    for (int c0 = 0; c0 < nv; c0 += 32 * kCopyUnroll) {
        V v[kCopyUnroll];
#pragma unroll
        for (int u = 0; u < kCopyUnroll; ++u) {
            int i = c0 + u * 32 + lane;
            if (i < nv) v[u] = __ldg(src + i);
        }
#pragma unroll
        for (int u = 0; u < kCopyUnroll; ++u) {
            int i = c0 + u * 32 + lane;
            if (i < nv) dst[i] = v[u];
        }
    }
}

// ---- sort ----
__global__ void sort_keys_kernel(const std::int32_t* ids, std::int64_t n, int experts, std::uint32_t* keys,
                                 std::int32_t* vals) {
    std::int64_t a = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (a >= n) return;
    int e = ids[a];
    keys[a] = static_cast<std::uint32_t>(e < 0 ? experts : e);  // dropped assignments sort last
    vals[a] = static_cast<std::int32_t>(a);
}

// The first sorted position of each expert's run.
__global__ void run_starts_kernel(const std::uint32_t* keys, std::int64_t n, std::int32_t* starts) {
    std::int64_t p = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (p >= n) return;
    if (p == 0 || keys[p - 1] != keys[p]) starts[keys[p]] = static_cast<std::int32_t>(p);
}

__global__ void sorted_assign_kernel(const std::uint32_t* keys, const std::int32_t* vals, std::int64_t n, int k,
                                     int experts, const std::int32_t* starts, const std::int32_t* offsets,
                                     std::int32_t* row_token, std::int32_t* inv) {
    std::int64_t p = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (p >= n) return;
    std::uint32_t e = keys[p];
    std::int32_t a = vals[p];
    if (e >= std::uint32_t(experts)) {
        inv[a] = -1;
        return;
    }
    std::int32_t r = offsets[e] + static_cast<std::int32_t>(p - starts[e]);
    row_token[r] = a / k;
    inv[a] = r;
}

// ---- atomic ----
__global__ void atomic_histogram_kernel(const std::int32_t* ids, std::int64_t n, std::int32_t* hist) {
    std::int64_t a = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (a < n && ids[a] >= 0) atomicAdd(&hist[ids[a]], 1);
}

__global__ void atomic_assign_kernel(const std::int32_t* ids, std::int64_t n, int k, const std::int32_t* offsets,
                                     std::int32_t* cursor, std::int32_t* row_token, std::int32_t* inv) {
    std::int64_t a = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (a >= n) return;
    int e = ids[a];
    if (e < 0) {
        inv[a] = -1;
        return;
    }
    std::int32_t r = offsets[e] + atomicAdd(&cursor[e], 1);  // order inside an expert is whoever came first
    row_token[r] = static_cast<std::int32_t>(a / k);
    inv[a] = r;
}

// ---- scan / nopack ----
struct WritePlan {
    const std::int32_t* offsets;
    std::int32_t* row_token;
    std::int32_t* inv;
    int k;
    __device__ void operator()(std::int64_t a, int e, std::int32_t rank) const {
        std::int32_t r = offsets[e] + rank;
        row_token[r] = static_cast<std::int32_t>(a / k);
        inv[a] = r;
    }
    __device__ void skip(std::int64_t a) const { inv[a] = -1; }
};

struct DispatchLayout {
    std::int32_t* hist = nullptr;    // scan, nopack, sort: [E·tiles]; atomic: the cursors [E]
    std::int32_t* starts = nullptr;  // sort
    std::uint32_t* keys_in = nullptr;
    std::uint32_t* keys_out = nullptr;
    std::int32_t* vals_in = nullptr;
    std::int32_t* vals_out = nullptr;
    void* sort_temp = nullptr;
    std::size_t sort_bytes = 0;
};

int bits_for(int v) {
    int b = 0;
    while ((1ll << b) <= v) ++b;
    return b;
}

DispatchLayout carve_dispatch(Strategy st, std::int64_t n, int experts, void* base, std::size_t bytes,
                              std::size_t* total) {
    DispatchLayout l;
    Carver c(base, bytes);
    l.hist = c.take<std::int32_t>(std::size_t(experts) * counting::tiles(n) + experts);
    if (st == Strategy::Sort) {
        l.starts = c.take<std::int32_t>(experts + 1);
        l.keys_in = c.take<std::uint32_t>(n);
        l.keys_out = c.take<std::uint32_t>(n);
        l.vals_in = c.take<std::int32_t>(n);
        l.vals_out = c.take<std::int32_t>(n);
        MOE_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, l.sort_bytes, l.keys_in, l.keys_out, l.vals_in,
                                                       l.vals_out, static_cast<int>(n), 0, bits_for(experts)));
        l.sort_temp = c.take<std::uint8_t>(l.sort_bytes);
    }
    if (total) *total = c.used();
    return l;
}

template <class V>
void launch_scatter(const bf16_t* x, const std::int32_t* inv, std::int64_t tokens, int k, int hidden,
                    const std::int32_t* counts, const std::int32_t* offsets, int experts, bf16_t* xp,
                    cudaStream_t st) {
    const int nv = hidden * int(sizeof(bf16_t)) / int(sizeof(V));
    const int chunks = (nv + 32 * kCopyUnroll - 1) / (32 * kCopyUnroll);
    scatter_tokens_kernel<V><<<grid_for(tokens * chunks + experts, kCopyWarps), kCopyWarps * 32, 0, st>>>(
        x, inv, tokens, k, hidden, chunks, counts, offsets, experts, xp);
    MOE_CUDA_LAUNCH_CHECK("scatter_tokens_kernel");
}

template <class V>
void launch_gather(const bf16_t* x, const std::int32_t* row_token, const std::int32_t* offsets, int experts,
                   std::int64_t max_rows, int hidden, bf16_t* xp, cudaStream_t st) {
    gather_rows_kernel<V><<<grid_for(max_rows, kCopyWarps), kCopyWarps * 32, 0, st>>>(x, row_token, offsets, experts,
                                                                                      max_rows, hidden, xp);
    MOE_CUDA_LAUNCH_CHECK("gather_rows_kernel");
}

}  // namespace

std::size_t dispatch_workspace_bytes(Strategy st, std::int64_t tokens, int k, int experts) {
    std::size_t total = 0;
    carve_dispatch(st, std::max<std::int64_t>(tokens * k, 1), experts, nullptr, 0, &total);
    return total;
}

void dispatch(Strategy st, const bf16_t* x, const std::int32_t* ids, std::int64_t tokens, int k, int experts,
              int hidden, int align, std::int32_t* counts, std::int32_t* offsets, std::int32_t* row_token,
              std::int32_t* inv, bf16_t* xp, void* ws, std::size_t ws_bytes, Stream s) {
    using namespace counting;
    MOE_ASSERT(experts >= 1 && experts <= kMaxExperts, "experts " << experts << " must be in [1, " << kMaxExperts << "]");
    MOE_ASSERT(align >= 1, "align must be >= 1");
    MOE_ASSERT(st == Strategy::NoPack || xp, "dispatch: strategy " << dispatch::strategy_name(st) << " needs xp");
    const std::int64_t n = tokens * k;
    const std::int64_t max_rows = dispatch::max_rows(tokens, k, experts, align);
    MOE_ASSERT(max_rows < (std::int64_t(1) << 31), "dispatch: " << max_rows << " rows exceed the int32 range");
    cudaStream_t stream = to_cuda(s);
    if (n == 0) {
        MOE_CUDA_CHECK(cudaMemsetAsync(counts, 0, sizeof(std::int32_t) * experts, stream));
        MOE_CUDA_CHECK(cudaMemsetAsync(offsets, 0, sizeof(std::int32_t) * (experts + 1), stream));
        if (max_rows) MOE_CUDA_CHECK(cudaMemsetAsync(row_token, 0xFF, sizeof(std::int32_t) * max_rows, stream));
        return;
    }
    DispatchLayout l = carve_dispatch(st, n, experts, ws, ws_bytes, nullptr);
    const int nt = tiles(n);
    const bool vec16 = hidden % 8 == 0;  // rows of whole 16-byte vectors (cudaMalloc bases are 256-aligned)

    if (st == Strategy::Atomic) {
        MOE_CUDA_CHECK(cudaMemsetAsync(l.hist, 0, sizeof(std::int32_t) * experts, stream));
        atomic_histogram_kernel<<<grid_for(n, 256), 256, 0, stream>>>(ids, n, l.hist);
        MOE_CUDA_LAUNCH_CHECK("atomic_histogram_kernel");
        // One "tile": the scan turns the histogram into counts and offsets and leaves the cursors at zero.
        scan_kernel<<<1, kScanThreads, 0, stream>>>(l.hist, 1, experts, align, nullptr, counts, offsets, row_token,
                                                    max_rows);
        MOE_CUDA_LAUNCH_CHECK("scan_kernel");
        atomic_assign_kernel<<<grid_for(n, 256), 256, 0, stream>>>(ids, n, k, offsets, l.hist, row_token, inv);
        MOE_CUDA_LAUNCH_CHECK("atomic_assign_kernel");
    } else if (st != Strategy::Sort && small_plan_fits(n, experts)) {
        WritePlan act{offsets, row_token, inv, k};
        std::size_t smem = small_plan_smem<WritePlan>(experts);
        small_plan_kernel<<<1, kScanThreads, smem, stream>>>(ids, n, experts, align, counts, offsets, row_token,
                                                             max_rows, act);
        MOE_CUDA_LAUNCH_CHECK("small_plan_kernel<WritePlan>");
    } else {
        tile_histogram_kernel<<<nt, kThreads, experts * sizeof(std::int32_t), stream>>>(ids, n, experts, nt, l.hist);
        MOE_CUDA_LAUNCH_CHECK("tile_histogram_kernel");
        scan_kernel<<<1, kScanThreads, 0, stream>>>(l.hist, nt, experts, align, nullptr, counts, offsets, row_token,
                                                    max_rows);
        MOE_CUDA_LAUNCH_CHECK("scan_kernel");
        if (st == Strategy::Sort) {
            sort_keys_kernel<<<grid_for(n, 256), 256, 0, stream>>>(ids, n, experts, l.keys_in, l.vals_in);
            MOE_CUDA_LAUNCH_CHECK("sort_keys_kernel");
            MOE_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(l.sort_temp, l.sort_bytes, l.keys_in, l.keys_out,
                                                           l.vals_in, l.vals_out, static_cast<int>(n), 0,
                                                           bits_for(experts), stream));
            run_starts_kernel<<<grid_for(n, 256), 256, 0, stream>>>(l.keys_out, n, l.starts);
            MOE_CUDA_LAUNCH_CHECK("run_starts_kernel");
            sorted_assign_kernel<<<grid_for(n, 256), 256, 0, stream>>>(l.keys_out, l.vals_out, n, k, experts,
                                                                       l.starts, offsets, row_token, inv);
            MOE_CUDA_LAUNCH_CHECK("sorted_assign_kernel");
        } else {
            WritePlan act{offsets, row_token, inv, k};
            std::size_t smem = stable_rank_smem<WritePlan>(experts);
            stable_rank_kernel<<<nt, kThreads, smem, stream>>>(ids, n, experts, nt, l.hist, act);
            MOE_CUDA_LAUNCH_CHECK("stable_rank_kernel<WritePlan>");
        }
    }

    if (st == Strategy::NoPack) return;
    if (st == Strategy::Sort) {
        if (vec16)
            launch_gather<uint4>(x, row_token, offsets, experts, max_rows, hidden, xp, stream);
        else
            launch_gather<unsigned short>(x, row_token, offsets, experts, max_rows, hidden, xp, stream);
    } else {
        if (vec16)
            launch_scatter<uint4>(x, inv, tokens, k, hidden, counts, offsets, experts, xp, stream);
        else
            launch_scatter<unsigned short>(x, inv, tokens, k, hidden, counts, offsets, experts, xp, stream);
    }
}

}  // namespace moe::gpu
