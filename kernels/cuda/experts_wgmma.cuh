// The expert FFN on Hopper's asynchronous tensor cores, for some tens of tokens per expert up to prefill: a
// warp-specialised grouped GEMM (a TMA producer warp, 1 or 2 wgmma consumer warpgroups of 64 tokens each, a ring
// of shared-memory stages between them on mbarriers, and a storer warp that TMA-stores full output tiles). One
// persistent launch covers both GEMMs of every expert, items taken from a counter; counts and offsets are read on the
// device (no host copy of the plan), SiLU(gate)·up is formed in the gate/up epilogue, and an expert's down items start
// as soon as its h is complete. sm_90 only; packed rows, or x's rows gathered through row_token (nopack).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common/bf16.hpp"

namespace moe::gpu {

// Whether wgmma_ffn can run: a device of compute capability 9.0 (the kernels are built for sm_90a), the driver's
// tensor-map encoder, packed rows xp or x with row_token, d and F multiples of 8 and 16-byte aligned bases (TMA's
// strides and addresses).
bool wgmma_ffn_supported(int hidden, int ffn, const void* xp, const void* x, const void* row_token, const void* w1,
                         const void* w2, const void* h);

// Whether a call's stages can hold two k steps (one TMA request of two k tiles for the tokens and one for the
// weights), where its output tiles are stored from registers with 128-row weight tiles: packed rows, and d and F
// multiples of 128 (the boxes hold no K tail). The engine's choice (experts_auto_choice) reads it too.
inline bool wgmma_two_k_steps(int hidden, int ffn, bool packed) {
    return packed && hidden % 128 == 0 && ffn % 128 == 0;
}

// h[offsets[e] + m] = bf16(silu(bf16(x_m·w1g^T))·bf16(x_m·w1u^T)), then y[offsets[e] + m] = bf16(h_m·w2^T), for
// every kept row m < counts[e] of the packed rows xp (or, with xp null, of x's rows row_token[offsets[e] + m],
// which the producer warp gathers with cp.async: no packed copy of x), in one launch. h: [max_rows, F] scratch;
// sched: experts + 2 ints of scratch (the item counter and each expert's gate/up items done; zeroed here, on the
// stream). Padding rows of y become zeros. Call only where wgmma_ffn_supported.
//
// The tiling follows the mean tokens per expert: 64 tokens per tile (one consumer warpgroup) up to 48, else 128
// (two); full output tiles go through shared memory and TMA from 128 on (below, most tiles are partial and the
// register stores are as fast). Environment knobs force a tiling, for the benchmark's side-by-side variants:
// MOELAB_WGMMA_TILE=64|128 (tokens per tile), MOELAB_WGMMA_BN=128|256 (weight rows per tile; default 128 for
// d <= 2048 up to 96 tokens per expert, else 256), MOELAB_WGMMA_FUSED=0|1 (0: two launches, gate/up then down),
// MOELAB_WGMMA_EPI=0|1 (1: staged output tiles), MOELAB_WGMMA_SKIP=0 (a consumer warpgroup with no tokens in its
// rows still issues its MMAs) and MOELAB_WGMMA_GROUP=0|1|2|4|8|16|32 (an expert's items in groups of that many token
// tiles, 0: all; default 1 from 3072 tokens per expert, else 0), MOELAB_WGMMA_BOX=0 (a partial token tile is read in
// a box of the whole tile, not of its tokens rounded up to 16 rows), MOELAB_WGMMA_KS=1|2|3 (k steps a stage where two
// or three would run), MOELAB_WGMMA_AHEAD=n (the next item is taken n stages before an item's last) and
// MOELAB_WGMMA_OWN=0 (a block's first item is the counter's, not its own number). MOELAB_TRACE_ITEMS=<file> writes
// every item's timeline of the last call (kernels/bench/trace_items.py reads it).
void wgmma_ffn(const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token, const std::int32_t* counts,
               const std::int32_t* offsets, std::int64_t max_rows, int experts, int hidden, int ffn, const bf16_t* w1,
               const bf16_t* w2, bf16_t* h, bf16_t* y, int* sched, double tokens_per_expert, cudaStream_t st);

}  // namespace moe::gpu
