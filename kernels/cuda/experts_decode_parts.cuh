// Device pieces of the decode expert FFN shared by its two-launch kernels (experts_decode.cu) and its one-launch
// kernel (experts_decode_one.cu): the weights' streaming loads, the 32-wide k step on mma.sync, a warp's rows times a
// chunk of tokens, and the reduction of the warps that split one item's K.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common/bf16.hpp"
#include "kernels/cuda/experts_common.cuh"

namespace moe::gpu::decode_detail {

constexpr int kThreads = 128;  // 4 warps per block; each warp takes its own items
constexpr int kWarps = kThreads / 32;

// Weights are read once per chunk: stream them past L1. Token rows are re-read by the neighbouring warps (same
// expert, next rows of the weights): those go through L1.
// kPf: also ask L2 to fetch the whole 256-byte block on a miss (a warp reads 64 bytes of each of its rows per load
// and the rest of the block in the next loads: one DRAM burst instead of four).
template <int kPf = 0>
__device__ __forceinline__ uint4 ld_stream(const bf16_t* p) {
    uint4 v;
    if constexpr (kPf)
        asm("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];\n"
            : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
            : "l"(p));
    else
        asm("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
            : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
            : "l"(p));
    return v;
}
__device__ __forceinline__ uint4 ld_cached(const bf16_t* p) { return __ldg(reinterpret_cast<const uint4*>(p)); }
// Token rows that another block wrote in the same launch (the one-launch kernel's h): read at L2, past the read-only
// path and L1, after the acquire that saw them done.
__device__ __forceinline__ uint4 ld_fresh(const bf16_t* p) {
    uint4 v;
    asm volatile("ld.global.cg.v4.u32 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p)
                 : "memory");
    return v;
}
template <bool kFresh>
__device__ __forceinline__ uint4 ld_token(const bf16_t* p) {
    if constexpr (kFresh) return ld_fresh(p);
    return ld_cached(p);
}

// Eight elements row[k, k + 8) with zeros past K. kVec: K % 8 == 0 and rows 16-byte aligned, so a piece is all in or
// all out; otherwise element by element (odd shapes).
// kFresh: a row written in the same launch (ld_fresh; element by element through volatile loads).
template <bool kVec, bool kFresh = false>
__device__ __forceinline__ uint4 ld_part(const bf16_t* row, int k, int K) {
    if constexpr (kVec) {
        return k + 8 <= K ? ld_token<kFresh>(row + k) : make_uint4(0, 0, 0, 0);
    } else {
        const volatile bf16_t* vrow = row;  // volatile: not cached in L1 (kFresh)
        unsigned w[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const unsigned lo = k + 2 * i < K ? (kFresh ? vrow[k + 2 * i] : row[k + 2 * i]) : 0u;
            const unsigned hi = k + 2 * i + 1 < K ? (kFresh ? vrow[k + 2 * i + 1] : row[k + 2 * i + 1]) : 0u;
            w[i] = lo | (hi << 16);
        }
        return make_uint4(w[0], w[1], w[2], w[3]);
    }
}

__device__ __forceinline__ void mma_bf16(float (&c)[4], unsigned a0, unsigned a1, unsigned a2, unsigned a3, unsigned b0,
                                         unsigned b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// One 32-wide k step as two m16n8k16 products. Thread (g = lane/4, t = lane%4) holds physical k [8t, 8t + 8) of
// weight rows g (lo) and g + 8 (hi) and of token g (x). Logical k {2t, 2t+1, 2t+8, 2t+9} of the first product are
// physical {8t, 8t+1, 8t+2, 8t+3}, of the second {8t+4, ..., 8t+7}: the same map on both sides, so the sum over k
// is unchanged. Accumulators: c0, c1 = (row g, tokens 2t, 2t+1), c2, c3 = (row g + 8, tokens 2t, 2t+1).
__device__ __forceinline__ void mma_step(float (&c)[4], const uint4& lo, const uint4& hi, const uint4& x) {
    mma_bf16(c, lo.x, hi.x, lo.y, hi.y, x.x, x.y);
    mma_bf16(c, lo.z, hi.z, lo.w, hi.w, x.z, x.w);
}

// acc[j] += (rows lo/hi of the weights)·(token rows b[j])^T over k in [kb, ke) (kb a multiple of 32; ke too, or
// K), for token tiles j < live; K bounds the loads.
// kFlavor (weights' loads): bit 0 the L2 256-byte prefetch, bit 1 twice as many 32-wide steps in flight. Measured
// on the H200 (kernels/bench/RESULTS.md): the prefetch took S1 at 1 token per expert from 69% to 89% of the weight
// roofline; the deeper unroll helps 8-token chunks (S3: 74% → 95%) and not 16-token ones, so flavor 3 runs the
// 8-token chunks and flavor 1 the rest. Flavors 0 and 2 (no prefetch) and a shared-memory cp.async ring were slower
// at every size and are gone.
// kFresh: the token rows were written in this launch (ld_token).
template <int kNT, bool kVec, int kFlavor, bool kFresh = false>
__device__ __forceinline__ void warp_rows_by_tokens(const bf16_t* a_lo, const bf16_t* a_hi,
                                                    const bf16_t* const (&b)[kNT], int live, int kb, int ke, int K,
                                                    float (&acc)[kNT][4]) {
    // 32-wide steps whose loads are all issued before the first product
    constexpr int kU = (kNT <= 2 ? 4 : 2) * (kFlavor & 2 ? 2 : 1);
    constexpr int kPf = kFlavor & 1;
    const int t8 = (threadIdx.x & 3) * 8;
    int k0 = kb;
    if constexpr (kVec) {
        for (; k0 + 32 * kU <= ke; k0 += 32 * kU) {
            uint4 lo[kU], hi[kU], xv[kU][kNT];
#pragma unroll
            for (int u = 0; u < kU; ++u) {
                lo[u] = ld_stream<kPf>(a_lo + k0 + 32 * u + t8);
                hi[u] = ld_stream<kPf>(a_hi + k0 + 32 * u + t8);
            }
#pragma unroll
            for (int u = 0; u < kU; ++u)
#pragma unroll
                for (int j = 0; j < kNT; ++j)
                    xv[u][j] = j < live ? ld_token<kFresh>(b[j] + k0 + 32 * u + t8) : make_uint4(0, 0, 0, 0);
#pragma unroll
            for (int u = 0; u < kU; ++u)
#pragma unroll
                for (int j = 0; j < kNT; ++j)
                    if (j < live) mma_step(acc[j], lo[u], hi[u], xv[u][j]);
        }
        for (; k0 + 32 <= ke; k0 += 32) {
            const uint4 lo = ld_stream<kPf>(a_lo + k0 + t8), hi = ld_stream<kPf>(a_hi + k0 + t8);
#pragma unroll
            for (int j = 0; j < kNT; ++j)
                if (j < live) mma_step(acc[j], lo, hi, ld_token<kFresh>(b[j] + k0 + t8));
        }
    }
    for (; k0 < ke; k0 += 32) {  // the last partial step (vector path), or every step of an odd shape
        const uint4 lo = ld_part<kVec>(a_lo, k0 + t8, K), hi = ld_part<kVec>(a_hi, k0 + t8, K);
#pragma unroll
        for (int j = 0; j < kNT; ++j)
            if (j < live) mma_step(acc[j], lo, hi, ld_part<kVec, kFresh>(b[j], k0 + t8, K));
    }
}

// A traced kernel's blocks an SM: as many as the untraced one gets (ptxas, sm_90), so that the timeline is the same
// schedule's (the stamps' code would otherwise take registers and blocks).
constexpr int traced_min_blocks(int nt, bool traced) {
    return !traced ? 0 : nt == 1 ? 7 : nt == 2 ? 5 : nt == 4 ? 4 : 2;
}

// Sums the accumulators of the `split` warps of each group into the group's first warp (part 0); red holds
// kWarps·kNT·4·32 floats. Contains block-wide barriers: every thread of the block calls it, with the same split.
template <int kNT>
__device__ __forceinline__ void group_reduce(float (&acc)[kNT][4], float* red, int split) {
    if (split == 1) return;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, part = warp % split;
    constexpr int kPerWarp = kNT * 4 * 32;
    if (part != 0) {
#pragma unroll
        for (int jj = 0; jj < kNT; ++jj)
#pragma unroll
            for (int c = 0; c < 4; ++c) red[warp * kPerWarp + (jj * 4 + c) * 32 + lane] = acc[jj][c];
    }
    __syncthreads();
    if (part == 0) {
        for (int q = 1; q < split; ++q) {
#pragma unroll
            for (int jj = 0; jj < kNT; ++jj)
#pragma unroll
                for (int c = 0; c < 4; ++c) acc[jj][c] += red[(warp + q) * kPerWarp + (jj * 4 + c) * 32 + lane];
        }
    }
    __syncthreads();  // red is free for the next item
}

// The shared-memory layout of both kernels: the chunk prefix table, then the reduction buffer (16-byte aligned).
__host__ __device__ constexpr int decode_red_offset(int experts) { return ((experts + 1) * 4 + 15) / 16 * 16; }
template <int kNT>
__host__ __device__ constexpr int decode_smem_bytes(int experts) {
    return decode_red_offset(experts) + kWarps * kNT * 4 * 32 * 4;
}

// The FFN in one launch (experts_decode_one.cu): false, with nothing run, where sync has fewer than 1 + the chunks'
// bound ints. flavor and vec as decode_ffn chose them.
bool launch_decode_one(const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token, const std::int32_t* counts,
                       const std::int32_t* offsets, std::int64_t max_rows, int experts, int hidden, int ffn,
                       const bf16_t* w1, const bf16_t* w2, bf16_t* h, bf16_t* y, int chunk_tokens, int flavor, bool vec,
                       int* sync, std::int64_t sync_ints, cudaStream_t st);

}  // namespace moe::gpu::decode_detail
