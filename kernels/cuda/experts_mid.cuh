// The expert FFN for a few to a few hundred tokens per expert: a swap-AB grouped GEMM. 128 weight rows are the M side
// of each tile (gate/up: 64 gate rows and the matching 64 up rows, so SiLU(gate)·up is formed in the epilogue; down:
// 128 or 64 rows of w2), up to 32, 64 or 128 of an expert's tokens the N side, and K streams through a 3–8 stage
// cp.async ring in shared memory that feeds mma.sync through ldmatrix and runs on across item boundaries. One
// persistent launch per GEMM covers every expert; counts and offsets are read on the device (no host copy of the
// plan, so it can sit inside a CUDA graph), and the down GEMM is launched programmatically after gate/up, as
// decode's is.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common/bf16.hpp"

namespace moe::gpu {

// h[offsets[e] + m] = bf16(silu(bf16(x_m·w1g^T))·bf16(x_m·w1u^T)), then y[offsets[e] + m] = bf16(h_m·w2^T), for
// every kept row m < counts[e]. x rows are xp's (packed) or gathered from x through row_token when xp is null.
// h: [max_rows, F] scratch. Padding rows of y become zeros. max_rows: the host's bound on offsets[E] (sizes the
// grid only). tile_tokens: 32, 64 or 128 (mid_tile_tokens in launchers.hpp). sync: sync_ints ints of scratch for the
// hand-off between the two kernels (each gate/up block's count of items done, set by that kernel: no zeroing needed);
// null, or fewer ints than the gate/up grid's blocks, and the down kernel waits for the whole gate/up kernel.
void mid_ffn(const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token, const std::int32_t* counts,
             const std::int32_t* offsets, std::int64_t max_rows, int experts, int hidden, int ffn, const bf16_t* w1,
             const bf16_t* w2, bf16_t* h, bf16_t* y, int tile_tokens, int* sync, std::int64_t sync_ints,
             cudaStream_t st);

}  // namespace moe::gpu
