// Kernels of the expert-parallel layer with their launchers: inputs over a slice of the global RNG index range,
// and the segment copy that regroups received rows (source-major ↔ local-expert-major) around the expert FFNs.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "kernels/common/rng.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/nccl/ep_kernels.hpp"

namespace moe::nccl {

namespace {

constexpr int kWarps = 8;  // rows per block of the segment copy

unsigned capped_grid(std::int64_t items, int per_block) {
    std::int64_t g = (items + per_block - 1) / per_block;
    return static_cast<unsigned>(std::clamp<std::int64_t>(g, 1, 65536));  // grid-stride loops cover the rest
}

__global__ void make_bf16_range_kernel(std::uint64_t seed, std::uint64_t stream_id, std::int64_t first, std::int64_t n,
                                       float scale, bf16_t* out) {
    const std::int64_t stride = std::int64_t(gridDim.x) * blockDim.x;
    for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
        out[i] = rng_bf16(seed, stream_id, std::uint64_t(first + i), scale);
}

// Same arithmetic as the cuda backend's popularity_logits_kernel, with the global index offset by the first token.
__global__ void popularity_logits_range_kernel(std::uint64_t seed, const float* logp, std::int64_t first_token,
                                               std::int64_t tokens, int experts, float* logits) {
    const std::int64_t n = tokens * experts, base = first_token * experts;
    const std::int64_t stride = std::int64_t(gridDim.x) * blockDim.x;
    for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
        logits[i] = add_rn(logp[i % experts], rng_gumbel(seed, std::uint64_t(base + i)));
}

// One warp per destination row; the segment is found by binary search (a few dozen segments at most per rank).
template <class V>
__global__ void __launch_bounds__(kWarps * 32)
    copy_segments_kernel(const bf16_t* src, bf16_t* dst, int hidden, const std::int32_t* dst_start,
                         const std::int32_t* src_start, int nseg, std::int64_t rows, std::int32_t* row_tag) {
    const std::int64_t row = std::int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (row >= rows) return;
    int lo = 0, hi = nseg - 1;  // the last j with dst_start[j] <= row
    while (lo < hi) {
        int mid = (lo + hi + 1) >> 1;
        if (dst_start[mid] <= row)
            lo = mid;
        else
            hi = mid - 1;
    }
    const std::int32_t s0 = src_start[lo];
    if (row_tag && lane == 0) row_tag[row] = s0 < 0 ? -1 : lo;
    const int nv = hidden * int(sizeof(bf16_t)) / int(sizeof(V));
    V* d = reinterpret_cast<V*>(dst + row * hidden);
    if (s0 < 0) {
        V z;
        unsigned char* zb = reinterpret_cast<unsigned char*>(&z);
        for (int b = 0; b < int(sizeof(V)); ++b) zb[b] = 0;
        for (int i = lane; i < nv; i += 32) d[i] = z;
        return;
    }
    const V* s = reinterpret_cast<const V*>(src + (std::int64_t(s0) + (row - dst_start[lo])) * hidden);
    for (int i = lane; i < nv; i += 32) d[i] = s[i];
}

// Per-block histogram in shared memory, then one atomic per expert and block.
__global__ void count_experts_kernel(const std::int32_t* ids, std::int64_t n, int experts, std::int32_t* counts) {
    extern __shared__ std::int32_t hist[];
    for (int e = threadIdx.x; e < experts; e += blockDim.x) hist[e] = 0;
    __syncthreads();
    const std::int64_t stride = std::int64_t(gridDim.x) * blockDim.x;
    for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
        const int e = ids[i];
        if (e >= 0 && e < experts) atomicAdd(&hist[e], 1);
    }
    __syncthreads();
    for (int e = threadIdx.x; e < experts; e += blockDim.x)
        if (hist[e]) atomicAdd(&counts[e], hist[e]);
}

__device__ __forceinline__ unsigned long long global_ns() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}

__global__ void gate_kernel(const volatile unsigned* flag, unsigned epoch, unsigned long long timeout_ns) {
    const unsigned long long t0 = global_ns();
    while (*flag < epoch && global_ns() - t0 < timeout_ns) __nanosleep(256);
}

}  // namespace

void gate(const volatile unsigned* flag, unsigned epoch, double timeout_s, Stream s) {
    gate_kernel<<<1, 1, 0, static_cast<cudaStream_t>(s)>>>(flag, epoch,
                                                           static_cast<unsigned long long>(timeout_s * 1e9));
    MOE_CUDA_LAUNCH_CHECK("gate_kernel");
}

void count_experts(const std::int32_t* ids, std::int64_t n, int experts, std::int32_t* counts, Stream s) {
    cudaStream_t st = static_cast<cudaStream_t>(s);
    MOE_CUDA_CHECK(cudaMemsetAsync(counts, 0, sizeof(std::int32_t) * experts, st));
    if (n <= 0) return;
    const unsigned grid = std::min<unsigned>(capped_grid(n, 256), 256);
    count_experts_kernel<<<grid, 256, sizeof(std::int32_t) * experts, st>>>(ids, n, experts, counts);
    MOE_CUDA_LAUNCH_CHECK("count_experts_kernel");
}

void make_bf16_range(std::uint64_t seed, std::uint64_t stream_id, std::int64_t first, std::int64_t n, float scale,
                     bf16_t* out, Stream s) {
    if (n <= 0) return;
    make_bf16_range_kernel<<<capped_grid(n, 256), 256, 0, static_cast<cudaStream_t>(s)>>>(seed, stream_id, first, n,
                                                                                          scale, out);
    MOE_CUDA_LAUNCH_CHECK("make_bf16_range_kernel");
}

void popularity_logits_range(std::uint64_t seed, const float* logp, std::int64_t first_token, std::int64_t tokens,
                             int experts, float* logits, Stream s) {
    if (tokens <= 0) return;
    MOE_ASSERT(experts >= 1, "experts must be >= 1");
    popularity_logits_range_kernel<<<capped_grid(tokens * experts, 256), 256, 0, static_cast<cudaStream_t>(s)>>>(
        seed, logp, first_token, tokens, experts, logits);
    MOE_CUDA_LAUNCH_CHECK("popularity_logits_range_kernel");
}

void copy_segments(const bf16_t* src, bf16_t* dst, int hidden, const std::int32_t* dst_start,
                   const std::int32_t* src_start, int nseg, std::int64_t rows, std::int32_t* row_tag, Stream s) {
    if (rows <= 0) return;
    MOE_ASSERT(nseg >= 1, "copy_segments: " << rows << " rows but no segment");
    const unsigned grid = static_cast<unsigned>((rows + kWarps - 1) / kWarps);
    cudaStream_t st = static_cast<cudaStream_t>(s);
    // Rows of whole 16-byte vectors when d is a multiple of 8 (cudaMalloc bases are 256-byte aligned).
    if (hidden % 8 == 0)
        copy_segments_kernel<uint4>
            <<<grid, kWarps * 32, 0, st>>>(src, dst, hidden, dst_start, src_start, nseg, rows, row_tag);
    else
        copy_segments_kernel<unsigned short>
            <<<grid, kWarps * 32, 0, st>>>(src, dst, hidden, dst_start, src_start, nseg, rows, row_tag);
    MOE_CUDA_LAUNCH_CHECK("copy_segments_kernel");
}

}  // namespace moe::nccl
