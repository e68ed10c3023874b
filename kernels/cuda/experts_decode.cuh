// The expert FFN for few tokens per expert (decode): the weights stream through the tensor cores at memory speed.
// Roles are swapped against a usual GEMM: 16 weight rows are the M side of mma.sync m16n8k16 and up to 8·kNT tokens
// the N side, so a warp reads each weight byte once per chunk of tokens. One launch per GEMM covers every expert;
// counts and offsets are read on the device (no host copy of the plan, so it can sit inside a CUDA graph).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "kernels/common/bf16.hpp"

namespace moe::gpu {

// h[offsets[e] + m] = bf16(silu(bf16(x_m·w1g^T))·bf16(x_m·w1u^T)), then y[offsets[e] + m] = bf16(h_m·w2^T), for
// every kept row m < counts[e]. x rows are xp's (packed) or gathered from x through row_token when xp is null.
// h: [max_rows, F] scratch. Padding rows of y become zeros. max_rows: the host's bound on offsets[E] (sizes the
// grid only). chunk_tokens: from decode_chunk_tokens (launchers.hpp).
void decode_ffn(const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token, const std::int32_t* counts,
                const std::int32_t* offsets, std::int64_t max_rows, int experts, int hidden, int ffn, const bf16_t* w1,
                const bf16_t* w2, bf16_t* h, bf16_t* y, int chunk_tokens, cudaStream_t st);

}  // namespace moe::gpu
