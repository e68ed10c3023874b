// Device pieces shared by the persistent expert-FFN kernels (decode, mid): the per-block prefix of token chunks read
// from the device counts (no host copy of the plan), the lookup of a chunk's expert, the SiLU gate as the reference
// rounds it, the zeroing of padding rows, the persistent grid size and the programmatic (PDL) launch of the down GEMM.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <map>
#include <utility>

#include "kernels/common/bf16.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/context.cuh"
#include "kernels/cuda/experts_order.hpp"
#include "kernels/cuda/item_trace.cuh"  // global_ns

namespace moe::gpu::experts_detail {

// pre[e] = chunks of the experts before e (an expert of n tokens has ceil(n / chunk) chunks), pre[E] = all chunks.
// Every block computes the same table from counts; returns pre[E]. Block-wide barriers inside: all threads call it.
inline __device__ int chunk_prefix(const std::int32_t* counts, int experts, int chunk, int* pre, int* warp_sums) {
    const int nthreads = blockDim.x, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int per = (experts + nthreads - 1) / nthreads;
    const int b = tid * per, end = min(experts, b + per);
    int local = 0;
    for (int e = b; e < end; ++e) {
        const int c = (counts[e] + chunk - 1) / chunk;
        pre[e] = c;
        local += c;
    }
    int inc = local;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        const int v = __shfl_up_sync(0xffffffffu, inc, o);
        if (lane >= o) inc += v;
    }
    if (lane == 31) warp_sums[warp] = inc;
    __syncthreads();
    if (warp == 0) {
        const int ws = lane < nthreads / 32 ? warp_sums[lane] : 0;
        int winc = ws;
#pragma unroll
        for (int o = 1; o < 32; o <<= 1) {
            const int v = __shfl_up_sync(0xffffffffu, winc, o);
            if (lane >= o) winc += v;
        }
        if (lane < nthreads / 32) warp_sums[lane] = winc - ws;  // exclusive (warp_sums holds a word a warp)
    }
    __syncthreads();
    int run = warp_sums[warp] + inc - local;
    for (int e = b; e < end; ++e) {
        const int c = pre[e];
        pre[e] = run;
        run += c;
    }
    if (tid == nthreads - 1) pre[experts] = run;
    __syncthreads();
    return pre[experts];
}

// The expert of global chunk j: the largest e with pre[e]·scale <= j (it has tokens, since pre[e + 1]·scale > j).
inline __device__ int expert_of_chunk(const int* pre, int experts, std::int64_t j, int scale = 1) {
    return order::expert_of(pre, experts, j, scale);
}

__device__ __forceinline__ bf16_t silu_gate(float g_acc, float u_acc) {
    const float g = round_bf16(g_acc), u = round_bf16(u_acc);  // h1 is bf16 in the reference
    return f32_to_bf16(g / (1.0f + expf(-g)) * u);
}

// Padding rows of y are zeros (align > 1): block b clears those of experts b, b + grid, ...
inline __device__ void zero_padding_rows(const std::int32_t* counts, const std::int32_t* offsets, int experts,
                                         int hidden, bf16_t* y) {
    for (int e = blockIdx.x; e < experts; e += gridDim.x) {
        const std::int64_t p0 = std::int64_t(offsets[e]) + counts[e], p1 = offsets[e + 1];
        for (std::int64_t i = p0 * hidden + threadIdx.x; i < p1 * hidden; i += blockDim.x) y[i] = 0;
    }
}

// The dependent kernel's side of a programmatic launch (the down kernel after gate/up, the wgmma FFN after the kernel
// that zeroes its counters): everything before this overlapped the kernel before it, whose writes are read only after
// it has completed and they are visible. That kernel's side is launch_dependents().
__device__ __forceinline__ void wait_for_producer() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// A count one kernel publishes for another (wgmma's items done, mid's hand-off): loads and stores at GPU scope, the
// store a release (after the block's barrier and a fence, what the block wrote before it is visible with it).
__device__ __forceinline__ int load_acquire(const int* p) {
    int v;
    asm volatile("ld.acquire.gpu.global.b32 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
    return v;
}
__device__ __forceinline__ void store_release(int* p, int v) {
    asm volatile("st.release.gpu.global.b32 [%0], %1;\n" ::"l"(p), "r"(v) : "memory");
}

// ---- tensor-core and cp.async primitives (mid, fused) ----
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int kN>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(kN) : "memory");
}

// Four 8×8 b16 matrices from shared memory (addr: a shared-space address), one row address per lane.
__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], unsigned addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], const bf16_t* p) {
    ldmatrix_x4(r, static_cast<unsigned>(__cvta_generic_to_shared(p)));
}

// c += a·b for one m16n8k16 tile: bf16 in, fp32 accumulate.
__device__ __forceinline__ void mma_bf16(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Whether both GEMMs of the FFN can move 16-byte pieces of every row: d and F multiples of 8 and every base
// 16-byte aligned (cudaMalloc's are 256-byte aligned, and rows are offset by whole rows).
inline bool rows_in_16_byte_pieces(int hidden, int ffn, const void* xp, const void* x, const void* w1, const void* w2,
                                   const void* h) {
    return hidden % 8 == 0 && ffn % 8 == 0 &&
           (reinterpret_cast<std::uintptr_t>(xp) | reinterpret_cast<std::uintptr_t>(x) |
            reinterpret_cast<std::uintptr_t>(w1) | reinterpret_cast<std::uintptr_t>(w2) |
            reinterpret_cast<std::uintptr_t>(h)) %
                   16 ==
               0;
}

// Blocks for a persistent launch of `kernel` with `threads` per block: as many as fit on the device's SMs (or on the
// thread's SM budget, context.cuh) at once (cached per kernel and shared-memory size), at most `needed`.
template <class Kernel>
unsigned persistent_blocks(Kernel kernel, int threads, int smem, std::int64_t needed) {
    static thread_local std::map<std::pair<const void*, int>, std::pair<int, int>> cache;  // SMs, blocks an SM
    const auto key = std::make_pair(reinterpret_cast<const void*>(kernel), smem);
    auto it = cache.find(key);
    if (it == cache.end()) {
        int dev = 0, sms = 0, per_sm = 0;
        MOE_CUDA_CHECK(cudaGetDevice(&dev));
        MOE_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
        MOE_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem));
        it = cache.emplace(key, std::make_pair(sms, std::max(per_sm, 1))).first;
    }
    const int sms = sm_budget > 0 ? std::min(sm_budget, it->second.first) : it->second.first;
    return static_cast<unsigned>(
        std::max<std::int64_t>(1, std::min<std::int64_t>(std::int64_t(sms) * it->second.second, needed)));
}

// A knob that forces a choice: environment variable `name` when it holds one of `allowed`, else `fallback`.
inline int env_choice(const char* name, std::initializer_list<int> allowed, int fallback) {
    if (const char* env = std::getenv(name); env && *env) {
        const int v = std::atoi(env);
        for (int a : allowed)
            if (v == a) return v;
    }
    return fallback;
}

// Whether the down GEMMs (mid's down kernel, wgmma's down items) ask for their first weight tiles before they wait for
// h (MOELAB_EXPERTS_PRELOAD=0 turns it off, for the benchmark's side-by-side rows and the tests). Not decode: holding
// its first batch in registers across the wait took its down kernel from 70 to 214 registers a thread, 7 to 2 blocks
// an SM, and made it slower (kernels/bench/RESULTS.md).
inline int down_preload() {
    const char* env = std::getenv("MOELAB_EXPERTS_PRELOAD");
    return env && env[0] == '0' && !env[1] ? 0 : 1;
}

// Launches a kernel programmatically after the one before it on the same stream (the down kernel after gate/up, the
// wgmma FFN after its counters' reset): its prologue overlaps that kernel's tail, and it calls wait_for_producer before
// reading what that kernel wrote; an ordinary launch where that is not available (the wait is then a no-op).
template <class Kernel, class... Args>
void launch_after_producer(Kernel kernel, unsigned grid, int threads, int smem, cudaStream_t st, Args... args) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(grid);
    cfg.blockDim = dim3(threads);
    cfg.dynamicSmemBytes = std::size_t(smem);
    cfg.stream = st;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    if (cudaLaunchKernelEx(&cfg, kernel, args...) != cudaSuccess) {
        (void)cudaGetLastError();
        kernel<<<grid, threads, smem, st>>>(args...);
    }
}

}  // namespace moe::gpu::experts_detail
