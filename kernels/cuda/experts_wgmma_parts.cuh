// Pieces of the wgmma expert FFN (experts_wgmma.cu) that are not the kernel's control flow: how an item is located and
// handed from the producer to the consumers and the storer (Slot), and how the epilogue converts the accumulators and
// stages them for the storer (out_pair, stage_round). Device code for sm_90a, included by experts_wgmma.cu only.
//
// Accumulators of wgmma.m64nNk16 (fp32), per thread of the warpgroup: warp w's lane l holds rows 16w + l/4 and
// 16w + l/4 + 8; for each n8 column block j, d[4j + 0, 1] are (row, 8j + 2·(l % 4) + 0, 1) and d[4j + 2, 3] the same
// columns of row + 8 (hopper.cuh).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "kernels/common/bf16.hpp"
#include "kernels/cuda/experts_common.cuh"

namespace moe::gpu::wgmma_parts {

using experts_detail::expert_of_chunk;
using experts_detail::silu_gate;

// An item's place: the expert, the weight tile, the token tile and which GEMM.
struct Item {
    int e, nt, mt;
    bool gated;
};

// Within an expert the items run in groups of `group` token tiles (0: all of them): weight tile by weight tile, token
// tile innermost, within a group.
__device__ __forceinline__ Item locate(std::int64_t it, std::int64_t gated_items, const int* pre, int experts,
                                       int nt_gated, int nt_down, int group) {
    Item w;
    w.gated = it < gated_items;
    const std::int64_t j = w.gated ? it : it - gated_items;
    const int ntiles = w.gated ? nt_gated : nt_down;
    w.e = expert_of_chunk(pre, experts, j, ntiles);
    const int ntt = pre[w.e + 1] - pre[w.e];
    int local = static_cast<int>(j - std::int64_t(pre[w.e]) * ntiles);
    const int gs = group > 0 && group < ntt ? group : ntt;
    const int g = local / (gs * ntiles), first = g * gs, in = min(gs, ntt - first);
    local -= g * gs * ntiles;
    w.nt = local / in;
    w.mt = first + local % in;
    return w;
}

// An item as the producer located it, handed to the consumers with its first stage and from them to the storer with
// the output tile: no lookup and no global read of the plan on the consumers' path.
struct Slot {
    std::int64_t it;  // the item's number; -1: no more
    int e, nt, mt;
    int ntok;  // its tokens (the tile's rows that are stored)
    int row0;  // its first row in xp, h and y
    int gated;
};

// Lane 0's read of a slot, for the whole warp.
__device__ __forceinline__ Slot warp_broadcast(const Slot& s, int lane) {
    Slot v{};
    if (lane == 0) v = s;
    v.it = __shfl_sync(~0u, v.it, 0);
    v.e = __shfl_sync(~0u, v.e, 0), v.nt = __shfl_sync(~0u, v.nt, 0), v.mt = __shfl_sync(~0u, v.mt, 0);
    v.ntok = __shfl_sync(~0u, v.ntok, 0), v.row0 = __shfl_sync(~0u, v.row0, 0), v.gated = __shfl_sync(~0u, v.gated, 0);
    return v;
}

constexpr bool kFastEpilogue = true;

// lo and hi rounded to bf16 (to nearest even, as f32_to_bf16 does) in one instruction: lo in the low half.
__device__ __forceinline__ unsigned pack_bf16x2(float lo, float hi) {
    unsigned d;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(d) : "f"(hi), "f"(lo));
    return d;
}

// SiLU(gate)·up as the reference computes it (gate and up rounded to bf16 first), with the fast exponential and
// division: within a few float ulps of silu_gate before the final rounding to bf16.
__device__ __forceinline__ float silu_gate_fast(float g_acc, float u_acc) {
    const unsigned gu = pack_bf16x2(g_acc, u_acc);
    const float g = __uint_as_float(gu << 16), u = __uint_as_float(gu & 0xffff0000u);
    return __fdividef(g, 1.0f + __expf(-g)) * u;  // SILU_EXPERIMENT
}

// This thread's two adjacent output values of n8 block j, row + 8·half, packed as bf16: h = SiLU(gate)·up for gate/up
// (gate column c and up column c + kBN/2 are in the same thread), or y. kFast: hardware conversions and the fast
// SiLU; else the reference's arithmetic (silu_gate and f32_to_bf16).
template <int kBN, bool kFast = kFastEpilogue>
__device__ __forceinline__ unsigned out_pair(const float (&acc)[kBN / 2], bool gated, int j, int half) {
    if (gated) {
        const int g = 4 * j + 2 * half, u = 4 * (j + kBN / 16) + 2 * half;
        if constexpr (kFast) return pack_bf16x2(silu_gate_fast(acc[g], acc[u]), silu_gate_fast(acc[g + 1], acc[u + 1]));
        return unsigned(silu_gate(acc[g], acc[u])) | (unsigned(silu_gate(acc[g + 1], acc[u + 1])) << 16);
    }
    const int q = 4 * j + 2 * half;
    if constexpr (kFast) return pack_bf16x2(acc[q], acc[q + 1]);
    return unsigned(f32_to_bf16(acc[q])) | (unsigned(f32_to_bf16(acc[q + 1])) << 16);
}

// Writes this thread's part of columns [c0, c0 + 64) of an output tile (h = SiLU(gate)·up for gate/up, or y) into
// shared memory at `out`, as one box of 64 columns × kBM rows with the 128-byte swizzle (what a TMA store of map_h or
// map_y reads): column c0 + c of row m at byte m·128 + ((c / 8) ^ (m % 8))·16 + (c % 8)·2. The 8 rows of one store are
// 8 different 16-byte pieces of the 128-byte line: no bank conflicts. Rows from ntok on are left out (the storer does
// not store them). Straight-line code for one GEMM, so the conversions of all 16 pairs can overlap.
template <int kBN, int c0, bool kGated>
__device__ __forceinline__ void stage_round(const float (&acc)[kBN / 2], unsigned out, int row, int col, int ntok) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
        const int m = row + 8 * half;
        if (m >= ntok) continue;  // past the expert's tokens: never stored
        const unsigned line = out + m * 128 + col * 2;
#pragma unroll
        for (int jl = 0; jl < 8; ++jl) {
            const unsigned v = out_pair<kBN>(acc, kGated, c0 / 8 + jl, half);
            asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(line + ((jl ^ (m % 8)) << 4)), "r"(v) : "memory");
        }
    }
}

// f(integral_constant<int, 0>), ..., f(integral_constant<int, N - 1>): a loop whose index is a compile-time constant.
template <int N, int I = 0, class F>
__device__ __forceinline__ void unroll(F&& f) {
    if constexpr (I < N) {
        f(std::integral_constant<int, I>{});
        unroll<N, I + 1>(f);
    }
}

}  // namespace moe::gpu::wgmma_parts
